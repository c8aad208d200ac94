//! sim/FINDINGS.md no. 14 (`sync.partial-snap`, swarm seeds 2172, 4806, 6571, 9017): a deposed
//! leader, paused, woke and streamed a SNAP answering an older FOLLOWERINFO to a server that by
//! then followed another leader. The claim had counted that stream as the server's own; what
//! the claim now relies on is checked here on the core itself: a learner takes SNAP parts, a
//! SNAP and a LEADERINFO from its leader only, whatever phase it is in.

use ensemble_core::peer::{PeerMsg, ServerState, SnapBytes, SyncMode};
use ensemble_core::server::Event;
use ensemble_core::txn::ServerId;
use ensemble_core::zxid::Zxid;
use ensemble_testkit::links::Link;
use ensemble_testkit::script::{World, run_command};
use std::sync::Arc;

fn run(w: &mut Option<World>, line: &str) -> String {
    run_command(w, line)
}

/// Bytes that are no snapshot: a learner that took them from anyone would refuse them and
/// leave its leader.
fn junk(len: usize) -> SnapBytes {
    let buf = Arc::new((0..len).map(|i| (i * 7 % 251) as u8).collect::<Vec<u8>>());
    SnapBytes::slice(&buf, 0..len)
}

/// Everything sent by `id`, on every link.
fn sent_by(w: &World, id: ServerId) -> usize {
    w.links
        .busy()
        .into_iter()
        .filter(|l| l.from == id)
        .map(|l| w.links.queue(l).map_or(0, |q| q.len()))
        .sum()
}

/// A stray stream from server 2 to server `to`, which follows 3: nothing changes.
fn stray_stream_ignored(w: &mut Option<World>, to: ServerId) {
    let disk_before = run(w, &format!("disk id={to}"));
    let world = w.as_mut().expect("cluster");
    let status_before = world.server(to).expect("up").status();
    let sent_before = sent_by(world, to);
    let zxid = Zxid::new(1, 2);
    let msgs = [
        PeerMsg::LeaderInfo { new_epoch: 9 },
        PeerMsg::SnapPart {
            zxid,
            offset: 0,
            total: 96,
            data: junk(64),
        },
        PeerMsg::Sync {
            mode: SyncMode::Snap {
                zxid,
                snapshot: junk(32),
            },
            txns: Vec::new(),
            committed: zxid,
        },
        PeerMsg::NewLeader {
            zxid: Zxid::new(9, 0),
        },
    ];
    for msg in msgs {
        world.step(to, Event::Peer { from: 2, msg });
        let s = world.server(to).expect("up");
        assert_eq!(
            s.state(),
            ServerState::Following,
            "a stray message moved n{to}"
        );
        assert_eq!(s.status().leader, Some(3));
    }
    let after = world.server(to).expect("up").status();
    assert_eq!(after.last_logged, status_before.last_logged);
    assert_eq!(after.last_applied, status_before.last_applied);
    assert_eq!(after.accepted_epoch, status_before.accepted_epoch);
    assert_eq!(
        sent_by(world, to),
        sent_before,
        "n{to} answered a stray message"
    );
    assert_eq!(run(w, &format!("disk id={to}")), disk_before);
}

#[test]
fn a_learner_takes_no_snap_but_its_leaders() {
    let mut w = None;
    run(&mut w, "cluster voters=3");
    run(&mut w, "stabilize");
    run(&mut w, "crash id=1");
    run(&mut w, "connect client=1 server=3");
    for i in 0..6 {
        run(&mut w, &format!("op client=1 create /k{i} v{i}"));
    }
    run(&mut w, "restart id=1");
    let world = w.as_mut().expect("cluster");
    // n1 rejoins; hold the leader's messages to it until LEADERINFO is through, so that n1
    // stands in the phase where it takes its leader's SNAP
    let to_n1 = Link {
        from: 3,
        to: 1,
        election: false,
    };
    let mut acked = false;
    for _ in 0..10_000 {
        let Some(link) = world.links.busy().into_iter().next() else {
            world.now += 10;
            world.tick_all();
            continue;
        };
        let leaderinfo = link == to_n1
            && matches!(
                world.links.queue(link).and_then(|q| q.front()),
                Some(PeerMsg::LeaderInfo { .. })
            );
        assert!(world.deliver(link));
        world.fsync_all();
        if leaderinfo {
            acked = true;
            break;
        }
    }
    assert!(acked, "n1 never got its leader's LEADERINFO");
    assert!(!world.server(1).expect("up").is_serving());
    stray_stream_ignored(&mut w, 1);
    // its own leader's sync still goes through, and n1 serves the leader's state
    run(&mut w, "stabilize");
    let world = w.as_mut().expect("cluster");
    let (n1, n3) = (world.server(1).expect("up"), world.server(3).expect("up"));
    assert!(n1.is_serving());
    assert_eq!(n1.tree().digest(), n3.tree().digest());
    // and once it serves, a stray stream changes nothing either
    stray_stream_ignored(&mut w, 1);
}
