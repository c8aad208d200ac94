//! Read-only mode and local sessions, on one server driven by hand: a member of three cut off
//! from its peers, and a standalone server with local sessions.

use crate::config::{Config, LearnerType};
use crate::peer::{Notification, PeerMsg, ServerState, Vote};
use crate::server::{Event, Recovered};
use crate::test_rig::Rig;
use crate::txn::TxnOp;
use crate::zxid::Zxid;
use ensemble_proto::proto::{CreateMode, CreateOp, KeeperError, MultiOp, Request};

/// A member of an ensemble that has run (currentEpoch written): its vote counts without every
/// voter there, as a fresh ensemble's would not.
fn member(cfg: Config) -> Rig {
    let recovered = Recovered {
        epochs: crate::server::Epochs {
            accepted_epoch: 1,
            accepted_from: 1,
            current_epoch: 1,
        },
        ..Recovered::default()
    };
    Rig::new(cfg, recovered)
}

fn create(path: &str, mode: CreateMode) -> Request {
    Request::Create {
        op: CreateOp::Create,
        path: path.into(),
        data: b"x".to_vec(),
        acl: ensemble_proto::proto::Acl::open_unsafe(),
        mode,
        ttl: 0,
    }
}

fn three(me: u64, tune: impl Fn(&mut Config)) -> Config {
    let members = (1..=3).map(|id| (id, LearnerType::Participant)).collect();
    let mut cfg = Config::new(me, members);
    tune(&mut cfg);
    cfg
}

fn standalone(tune: impl Fn(&mut Config)) -> Rig {
    let mut cfg = Config::new(1, [(1, LearnerType::Participant)].into());
    tune(&mut cfg);
    let mut rig = member(cfg);
    rig.run_for(1000);
    assert!(rig.server.is_serving(), "a standalone server serves");
    rig
}

#[test]
fn a_server_cut_off_serves_read_only_clients_after_the_grace_period() {
    let mut r = member(three(1, |c| c.read_only_mode = true));
    r.run_for(1500);
    assert!(!r.server.is_read_only(), "not before max(2000, tickTime)");
    r.connect(1, 0, Some(true));
    assert_eq!(r.closed, vec![1], "a LOOKING server serves no one yet");
    r.run_for(600);
    assert!(r.server.is_read_only());
    assert_eq!(r.server.state(), ServerState::Looking);
    assert!(r.server.status().read_only);

    r.connect(2, 0, None);
    assert_eq!(
        r.closed,
        vec![1, 2],
        "a client that did not ask canBeReadOnly"
    );
    r.connect(3, 0, Some(true));
    let (conn, resp) = r.connects.pop().expect("answered");
    assert_eq!((conn, resp.read_only), (3, Some(true)));
    let session = resp.session_id;
    assert!(r.server.is_local_session(session));
    assert!(r.server.tree().sessions().is_empty(), "nothing replicated");

    let get = Request::GetChildren {
        path: "/".into(),
        watch: false,
    };
    assert!(r.request(3, 1, get).is_ok());
    let writes = [
        create("/a", CreateMode::Persistent),
        Request::Sync { path: "/".into() },
        Request::Delete {
            path: "/zookeeper".into(),
            version: -1,
        },
        Request::Multi(vec![MultiOp::Check {
            path: "/".into(),
            version: -1,
        }]),
    ];
    for (xid, w) in (2..).zip(writes) {
        assert_eq!(r.request(3, xid, w), Err(KeeperError::NotReadOnly));
    }
    r.run_for(2000);
    assert!(r.appended.is_empty(), "a read-only server logs nothing");
    assert!(
        r.sent.iter().all(|m| matches!(m, PeerMsg::Notification(_))),
        "a read-only server only looks for a quorum"
    );
    // its session is its own: a ping keeps it, closeSession ends it here
    assert!(r.server.is_local_session(session));
    assert_eq!(
        r.request(3, 9, Request::CloseSession),
        Ok(ensemble_proto::proto::Response::Empty)
    );
    assert!(!r.server.is_local_session(session));
    assert!(r.closed.contains(&3));

    // a quorum again (server 2 votes for us): the read-only server goes with its clients
    r.connect(4, 0, Some(true));
    assert!(r.server.connection_session(4).is_some());
    let n = Notification {
        vote: Vote {
            leader: 1,
            zxid: Zxid::ZERO,
            peer_epoch: 1,
        },
        state: ServerState::Looking,
        election_epoch: r.server.status().election_epoch,
        config_version: 0,
        intact: true,
    };
    r.step(Event::Peer {
        from: 2,
        msg: PeerMsg::Notification(n),
    });
    r.run_for(500);
    assert_eq!(r.server.state(), ServerState::Leading);
    assert!(!r.server.is_read_only());
    assert!(
        r.closed.contains(&4),
        "read-only clients are closed on rejoining"
    );
    assert_eq!(r.server.connection_session(4), None);
}

#[test]
fn local_sessions_live_on_their_server_and_upgrade_before_an_ephemeral() {
    let mut r = standalone(|c| {
        c.local_sessions = true;
        c.local_sessions_upgrading = true;
    });
    r.connect(1, 0, Some(false));
    let (_, resp) = r.connects.pop().expect("answered");
    assert_eq!(resp.read_only, Some(false));
    let session = resp.session_id;
    assert!(r.server.is_local_session(session));
    assert!(
        r.appended.is_empty(),
        "a local session has no createSession txn"
    );
    // a persistent write of a local session goes through
    assert!(
        r.request(1, 1, create("/p", CreateMode::Persistent))
            .is_ok()
    );
    assert!(!r.server.tree().sessions().contains_key(&session));
    // the first ephemeral upgrades it: createSession first, then the create
    assert!(r.request(1, 2, create("/e", CreateMode::Ephemeral)).is_ok());
    let ops: Vec<_> = r
        .appended
        .iter()
        .map(|t| (t.session, t.op.clone()))
        .collect();
    let at = ops
        .iter()
        .position(|(s, op)| *s == session && matches!(op, TxnOp::CreateSession { .. }))
        .expect("upgraded");
    assert!(matches!(ops[at + 1].1, TxnOp::Write { .. }));
    assert!(!r.server.is_local_session(session));
    assert!(r.server.tree().sessions().contains_key(&session));
    assert_eq!(
        r.server.tree().stat("/e").map(|s| s.ephemeral_owner),
        Some(session)
    );
}

#[test]
fn without_upgrading_a_local_session_gets_no_ephemeral_and_closes_locally() {
    let mut r = standalone(|c| c.local_sessions = true);
    r.connect(1, 0, None);
    let session = r.connects.pop().expect("answered").1.session_id;
    assert_eq!(
        r.request(1, 1, create("/e", CreateMode::EphemeralSequential)),
        Err(KeeperError::EphemeralOnLocalSession)
    );
    let multi = Request::Multi(vec![MultiOp::Create {
        op: CreateOp::Create,
        path: "/m".into(),
        data: vec![],
        acl: ensemble_proto::proto::Acl::open_unsafe(),
        mode: CreateMode::Ephemeral,
        ttl: 0,
    }]);
    assert_eq!(
        r.request(1, 2, multi),
        Err(KeeperError::EphemeralOnLocalSession)
    );
    assert_eq!(r.server.tree().ephemerals_count(), 0);
    assert!(r.request(1, 3, Request::CloseSession).is_ok());
    assert!(!r.server.is_local_session(session));
    assert!(r.appended.is_empty(), "nothing replicated, open or close");
    // the session is gone: a re-attach is told it expired
    r.connect(2, session, None);
    let (conn, resp) = r.connects.pop().expect("answered");
    assert_eq!((conn, resp.session_id, resp.timeout_ms), (2, 0, 0));
}

#[test]
fn an_idle_local_session_expires_on_its_server() {
    let mut r = standalone(|c| c.local_sessions = true);
    r.connect(1, 0, None);
    let session = r.connects.pop().expect("answered").1.session_id;
    r.run_for(9_000);
    assert!(r.server.is_local_session(session));
    r.run_for(2_000);
    assert!(!r.server.is_local_session(session));
    assert!(r.closed.contains(&1));
}

/// A server restarted from the dynamic file a reconfig wrote (`zoo.cfg.dynamic.100000007`)
/// with a tree older than that reconfig (swarm seeds 654, 9590: a leader that activated it
/// on its followers' ACKs and crashed before its own append was durable) has the file's
/// configuration in force at the file's version, as ZooKeeper's QuorumVerifier: it announces
/// that version and a read-only client reads it in `/zookeeper/config`.
#[test]
fn a_restart_from_a_reconfigs_dynamic_file_keeps_its_version() {
    let version = 0x1_0000_0007;
    let file = crate::membership::Membership {
        version,
        ..crate::membership::Membership::synthetic(&three(1, |_| {}).members)
    };
    let mut r = member(three(1, |c| {
        c.read_only_mode = true;
        c.reconfig_enabled = true;
        c.config_version = version;
        c.config_node = file.to_text().into_bytes();
    }));
    assert_eq!(r.server.membership(), &file);
    r.run_for(2100);
    assert!(r.server.is_read_only());
    assert!(
        r.sent
            .iter()
            .any(|m| matches!(m, PeerMsg::Notification(n) if n.config_version == version)),
        "its notifications carry the file's version"
    );
    r.connect(1, 0, Some(true));
    let get = Request::GetData {
        path: crate::path::CONFIG.into(),
        watch: false,
    };
    match r.request(1, 1, get) {
        Ok(ensemble_proto::proto::Response::GetData { data, stat }) => {
            let text = String::from_utf8(data).expect("text");
            assert!(text.ends_with("\nversion=100000007"), "{text}");
            assert_eq!(stat.version, -1);
            assert_eq!(stat.data_length as usize, text.len());
        }
        other => panic!("{other:?}"),
    }
}
