//! `-Dzookeeper.DigestAuthenticationProvider.superDigest` through SERVER_JVMFLAGS, as
//! zkServer.sh passes it: a client that did `addauth digest super:<password>` passes every ACL
//! check; a wrong password, or a server without the setting, does not.
//!
//! Ports: 23320 and 23321 (this worktree's range).

use ensemble_client::{Client, ClientError};
use ensemble_core::acl::digest_id;
use ensemble_proto::proto::{Acl, CreateMode, Id, KeeperError, perms};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_ensemble");

struct Node {
    dir: PathBuf,
    port: u16,
    child: Child,
}

impl Node {
    fn start(tag: &str, port: u16, server_jvmflags: Option<&str>) -> Node {
        let dir = std::env::temp_dir().join(format!("ens-super-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let cfg = format!(
            "tickTime=500\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\n\
             preAllocSize=1024\nforceSync=no\n",
            dir.join("data").display()
        );
        let path = dir.join("zoo.cfg");
        std::fs::write(&path, cfg).expect("zoo.cfg");
        let log = std::fs::File::create(dir.join("node.log")).expect("log");
        let mut cmd = Command::new(BIN);
        cmd.arg("run")
            .arg(&path)
            .env_remove("JVMFLAGS")
            .env_remove("SERVER_JVMFLAGS")
            .env_remove("ZOOCFGDIR")
            .stdout(Stdio::null())
            .stderr(log);
        if let Some(f) = server_jvmflags {
            cmd.env("SERVER_JVMFLAGS", f);
        }
        let child = cmd.spawn().expect("spawn ensemble");
        let node = Node { dir, port, child };
        let t0 = Instant::now();
        while !ensemble_node::daemon::ask("127.0.0.1", port, "srvr")
            .is_ok_and(|s| s.contains("Mode: standalone"))
        {
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "node did not start: {}",
                std::fs::read_to_string(node.dir.join("node.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        node
    }

    async fn client(&self) -> Client {
        Client::connect(&format!("127.0.0.1:{}", self.port), Duration::from_secs(10))
            .await
            .expect("connect")
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn no_auth<T: std::fmt::Debug>(r: Result<T, ClientError>) -> bool {
    matches!(r, Err(ClientError::Keeper(KeeperError::NoAuth)))
}

/// bob's node, readable and writable by bob only; returns what the super user could do.
async fn exercise(node: &Node) -> (bool, bool) {
    let bob = node.client().await;
    bob.add_auth("digest", b"bob:pw").await.expect("bob auth");
    let only_bob = vec![Acl {
        perms: perms::ALL,
        id: Id::new("digest", &digest_id("bob:pw")),
    }];
    bob.create("/bob", b"mine", only_bob, CreateMode::Persistent)
        .await
        .expect("create /bob");
    bob.create(
        "/bob/child",
        b"",
        Acl::open_unsafe(),
        CreateMode::Persistent,
    )
    .await
    .expect("create /bob/child");

    let anon = node.client().await;
    assert!(no_auth(anon.get_data("/bob", false).await));
    let guess = node.client().await;
    guess
        .add_auth("digest", b"super:guess")
        .await
        .expect("auth succeeds, as in ZooKeeper, whatever the password");
    assert!(no_auth(guess.get_data("/bob", false).await));
    assert!(no_auth(guess.set_data("/bob", b"x", None).await));

    let admin = node.client().await;
    admin
        .add_auth("digest", b"super:secret")
        .await
        .expect("super auth");
    let read = admin.get_data("/bob", false).await;
    let wrote = admin.set_data("/bob", b"super was here", None).await;
    if read.is_err() || wrote.is_err() {
        assert!(no_auth(read) && no_auth(wrote), "only NoAuth is expected");
        return (false, false);
    }
    // Every permission: delete a child (DELETE on /bob), change the ACL (ADMIN).
    admin.delete("/bob/child", None).await.expect("delete");
    admin
        .set_acl("/bob", Acl::open_unsafe(), None)
        .await
        .expect("setACL");
    assert_eq!(
        anon.get_data("/bob", false).await.expect("now open").0,
        b"super was here"
    );
    (true, true)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn super_digest_bypasses_acls_only_when_configured() {
    let flags = format!(
        "-Xmx512m -Dzookeeper.DigestAuthenticationProvider.superDigest={}",
        digest_id("super:secret")
    );
    let with = Node::start("with", 23320, Some(&flags));
    assert_eq!(exercise(&with).await, (true, true));
    drop(with);

    let without = Node::start("without", 23321, None);
    assert_eq!(exercise(&without).await, (false, false));
}
