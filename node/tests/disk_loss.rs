//! Disk loss on a real ensemble (issue 13): three voters started with the `ensemble` binary.
//! Writes are committed by two of them while the third is down; then one of the two loses its
//! data dir (wiped, or put back as an older copy with `currentEpoch` removed, as the README
//! tells the operator of a restored copy to do) and the other goes down. The server that lost
//! its state and the one that was away make a majority, and under ZooKeeper's rules they
//! elect a leader without the writes. Here neither serves until a server that holds them
//! is back; then every acknowledged write is there, on the server that lost its disk too.
//!
//! Ports: base 19700 (client base+i, quorum base+10+i, election base+20+i), below Linux's
//! ephemeral range.

mod trio;

use ensemble_client::{Client, ClientError};
use ensemble_proto::proto::{Acl, CreateMode, KeeperError};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use trio::Numbered;

const WRITES: usize = 40;

impl Numbered {
    /// Wait until each of `alive` has a mode and exactly one of them leads; returns it.
    fn wait_ready(&self, alive: &[u16], limit: Duration) -> u16 {
        self.wait_one_leader(alive, limit).0
    }

    /// The version-2 directories of server `i`'s dataDir and dataLogDir.
    fn state_dirs(&self, i: u16) -> [PathBuf; 2] {
        [
            self.dir.join(format!("data_{i}/version-2")),
            self.dir.join(format!("logs_{i}/version-2")),
        ]
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

async fn connect(hosts: &str) -> Client {
    Client::connect(hosts, Duration::from_secs(10))
        .await
        .unwrap()
}

/// How the server that loses its state loses it.
#[derive(Clone, Copy, Debug)]
enum Loss {
    /// Its dataDir and dataLogDir are emptied (a new drive).
    Wiped,
    /// Its dirs are replaced by a copy taken before the writes, `currentEpoch` removed.
    OlderCopy,
}

async fn run(tag: &str, base: u16, loss: Loss) {
    let c = Numbered::new(
        &format!("diskloss-{tag}"),
        base,
        3,
        false,
        300,
        "snapCount=15\n",
    );
    // a fresh ensemble forms with every voter there
    for i in 1..=3 {
        c.start(i);
    }
    let leader = c.wait_ready(&[1, 2, 3], Duration::from_secs(30));
    let followers: Vec<u16> = (1..=3).filter(|i| *i != leader).collect();
    let (keeper, away) = (followers[0], followers[1]);
    // the server that will lose its state: the one that, with the leader, commits the writes
    let loser = keeper;
    let client = connect(&c.hosts(&[leader])).await;
    client
        .create("/before", b"x", Acl::open_unsafe(), CreateMode::Persistent)
        .await
        .unwrap();
    client.sync("/").await.unwrap();

    // a copy of the loser's state, taken (with the loser stopped) before the writes
    let backup = c.dir.join("backup");
    c.stop(loser);
    for (k, d) in c.state_dirs(loser).iter().enumerate() {
        copy_dir(d, &backup.join(k.to_string()));
    }
    c.start(loser);
    c.wait_ready(&[1, 2, 3], Duration::from_secs(30));

    // the writes, committed by the leader and the loser while `away` is down
    c.stop(away);
    let client = connect(&c.hosts(&[leader])).await;
    for k in 0..WRITES {
        client
            .create(
                &format!("/acked-{k}"),
                b"v",
                Acl::open_unsafe(),
                CreateMode::Persistent,
            )
            .await
            .unwrap_or_else(|e| panic!("write {k}: {e}"));
    }
    drop(client);

    // the loser loses its state, the leader goes down, the one that was away comes back
    c.stop(loser);
    c.stop(leader);
    for (k, d) in c.state_dirs(loser).iter().enumerate() {
        std::fs::remove_dir_all(d).unwrap();
        if let Loss::OlderCopy = loss {
            copy_dir(&backup.join(k.to_string()), d);
        }
    }
    if let Loss::OlderCopy = loss {
        // what the operator of a restored copy does (README, "Disk loss")
        std::fs::remove_file(c.state_dirs(loser)[0].join("currentEpoch")).unwrap();
    }
    c.start(loser);
    c.start(away);
    // a majority is up, but one of its two lost what it acknowledged: neither serves
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(6) {
        assert_eq!(
            (c.mode(loser), c.mode(away)),
            (None, None),
            "a server that lost its state was counted in a quorum ({loss:?})\n{}",
            c.log(away)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // and the one without currentEpoch says on its terminal why it waits
    let said = "waiting for all 3 voters of a new ensemble; see ensemble.trustEmptyDataDirs";
    let t0 = Instant::now();
    while !c.log(loser).contains(said) {
        assert!(
            t0.elapsed() < Duration::from_secs(15),
            "server {loser} never said why it waits:\n{}",
            c.log(loser)
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // a server that holds the writes comes back: the ensemble forms, the loser resyncs
    c.start(leader);
    c.wait_ready(&[1, 2, 3], Duration::from_secs(30));
    for i in [loser, away, leader] {
        let reader = connect(&c.hosts(&[i])).await;
        reader.sync("/").await.unwrap();
        let children = reader.get_children("/", false).await.unwrap();
        for k in 0..WRITES {
            assert!(
                children.contains(&format!("acked-{k}")),
                "server {i} lacks acknowledged write {k} after {loss:?}: {children:?}"
            );
        }
        assert!(children.contains(&"before".to_string()));
    }
    // the server that lost its state holds them on its own disk again
    c.stop(leader);
    c.stop(away);
    c.start(away);
    let modes = c.wait_ready(&[loser, away], Duration::from_secs(30));
    let reader = connect(&c.hosts(&[loser])).await;
    match reader.get_data("/acked-0", false).await {
        Ok(_) => {}
        Err(ClientError::Keeper(KeeperError::NoNode)) => {
            panic!("server {loser} lost the writes again (leader now {modes})")
        }
        Err(e) => panic!("read from {loser}: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wiped_voter_is_not_counted_until_it_resyncs() {
    run("wiped", 19700, Loss::Wiped).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_voter_put_back_older_is_not_counted_until_it_resyncs() {
    run("older", 19740, Loss::OlderCopy).await;
}
