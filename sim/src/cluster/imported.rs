//! A start from ZooKeeper's files: the tree `ensemble import` makes of a ZooKeeper server's
//! dataDir — nodes with their full stat and ACL, live sessions with their timeouts and
//! ephemerals — installed as the only snapshot of every server's dataDir with the epochs of
//! the ZooKeeper ensemble, while the clients of those sessions come back holding the session
//! ids and the passwords ZooKeeper gave them (`session.imported-reattach`).
//!
//! The tree goes through `DataTree::persisted_nodes` and `DataTree::from_persisted`, the path
//! `ensemble import` takes from ZooKeeper's snapshot format into Ensemble's.

use ensemble_core::server::Epochs;
use ensemble_core::tree::{DataTree, PersistedNode, TreeOptions};
use ensemble_core::txn::{Origin, Txn, TxnOp};
use ensemble_core::zxid::Zxid;
use ensemble_proto::proto::{Acl, CreateMode, CreateOp, Id, Request, SessionId, perms};
use std::sync::Arc;

/// ZooKeeper's epoch of the imported history: the ensemble's first leader makes the next.
pub(crate) const EPOCH: u32 = 1;

/// What the ZooKeeper ensemble left.
pub(crate) struct Imported {
    pub(crate) zxid: Zxid,
    pub(crate) snapshot: Arc<Vec<u8>>,
    pub(crate) epochs: Epochs,
    /// (session id, its negotiated timeout), one per imported client.
    pub(crate) sessions: Vec<(SessionId, i32)>,
}

impl Imported {
    /// Every server's dataDir as `ensemble import` leaves it: the epochs, and the imported
    /// tree as the only snapshot.
    pub(crate) fn install(&self, disk: &mut ensemble_testkit::Disk) {
        disk.persist_epochs(self.epochs);
        disk.snapshot(self.zxid, 0, Arc::clone(&self.snapshot), true);
    }
}

/// A session id as ZooKeeper's server 1 gives them (its id in the top byte, a time below),
/// far from the ids the simulated servers hand out.
fn zk_session_id(i: usize) -> SessionId {
    ((1u64 << 56) | (0x00ab_cdef_u64 << 24) | i as u64) as SessionId
}

/// The password ZooKeeper 3.8 gave session `zk_session_id(i)` (`generatePasswd`, computed
/// with OpenJDK 17's `java.util.Random`; written down here, not derived, so that the server's
/// own derivation is checked against ZooKeeper's, not against itself).
const ZK_PASSWORDS: [&str; 3] = [
    "053db50d37cf52a415c004810cd8af6e",
    "ccd9c60d57ecb4d536f7cefe913d7207",
    "dffac00df737941a2b3a362a65c686d4",
];

/// The most sessions an import holds.
pub(crate) const MAX_SESSIONS: usize = ZK_PASSWORDS.len();

/// The password of the `i`th imported session (from 1).
pub(crate) fn zk_password(i: usize) -> Vec<u8> {
    let hex = ZK_PASSWORDS[i - 1];
    (0..hex.len())
        .step_by(2)
        .map(|k| u8::from_str_radix(&hex[k..k + 2], 16).expect("hex"))
        .collect()
}

/// The tree the import makes, with `timeouts.len()` live sessions.
pub(crate) fn build(timeouts: &[i32], opts: TreeOptions) -> Result<Imported, String> {
    assert!(
        timeouts.len() <= MAX_SESSIONS,
        "more sessions than passwords"
    );
    let mut tree = DataTree::new(opts);
    let mut zxid = Zxid::new(EPOCH, 0);
    let mut apply = |t: &mut DataTree, session: SessionId, op: TxnOp| {
        zxid = zxid.next();
        t.apply(&Txn {
            zxid,
            time: 1_700_000_000_000 + zxid.counter() as i64,
            session,
            cxid: zxid.counter() as i32,
            origin: Origin::NONE,
            op,
        });
    };
    let create = |path: String, data: &[u8], mode: CreateMode, acl: Vec<Acl>| TxnOp::Write {
        request: Request::Create {
            op: CreateOp::Create2,
            path,
            data: data.to_vec(),
            acl,
            mode,
            ttl: -1,
        },
        auth: vec![],
    };
    let read_only = vec![Acl {
        perms: perms::READ,
        id: Id::anyone(),
    }];
    let sessions: Vec<(SessionId, i32)> = timeouts
        .iter()
        .enumerate()
        .map(|(i, t)| (zk_session_id(i + 1), *t))
        .collect();
    for &(s, timeout_ms) in &sessions {
        apply(&mut tree, s, TxnOp::CreateSession { timeout_ms });
    }
    apply(
        &mut tree,
        0,
        create(
            "/zk".into(),
            b"imported",
            CreateMode::Persistent,
            Acl::open_unsafe(),
        ),
    );
    apply(
        &mut tree,
        0,
        create(
            "/zk/ro".into(),
            b"read-only",
            CreateMode::Persistent,
            read_only,
        ),
    );
    for &(s, _) in &sessions {
        // sequential names that went on in ZooKeeper, and the session's ephemerals
        apply(
            &mut tree,
            s,
            create(
                "/zk/seq-".into(),
                b"s",
                CreateMode::PersistentSequential,
                Acl::open_unsafe(),
            ),
        );
        apply(
            &mut tree,
            s,
            create(
                format!("/zk/e-{s:x}"),
                b"ephemeral",
                CreateMode::Ephemeral,
                Acl::open_unsafe(),
            ),
        );
    }
    // Through the import's path: node by node into a tree of Ensemble's.
    let nodes: Vec<PersistedNode> = tree.persisted_nodes().collect();
    let imported = DataTree::from_persisted(tree.last_zxid(), tree.sessions(), &nodes, opts)
        .map_err(|e| format!("the imported tree does not load: {e}"))?;
    let zxid = imported.last_zxid();
    Ok(Imported {
        zxid,
        snapshot: Arc::new(imported.to_snapshot()),
        epochs: Epochs {
            accepted_epoch: EPOCH,
            accepted_from: 0,
            current_epoch: EPOCH,
        },
        sessions,
    })
}
