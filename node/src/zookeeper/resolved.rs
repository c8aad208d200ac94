//! ZooKeeper's resolved txn records (an INFORM's, a log's) as the core's
//! [`ResolvedTxn`]: what `zk-observe` hands the core of a foreign leader's observer
//! (`ensemble_core::foreign`) for each txn ZooKeeper's leader decided.

use super::records::{CreateKind, TxnHeader, ZkTxn, op};
use ensemble_core::ResolvedTxn;
use ensemble_core::tree::{CONTAINER_EPHEMERAL_OWNER, EphemeralType, TTL_MAX};

/// The record of `hdr` as the core applies it (the header's zxid, time, session and cxid go
/// into the core's `Txn` beside it).
pub fn resolved(hdr: &TxnHeader, txn: &ZkTxn) -> ResolvedTxn {
    convert(hdr.client_id, hdr.kind, txn)
}

fn convert(session: i64, kind: i32, txn: &ZkTxn) -> ResolvedTxn {
    match txn {
        ZkTxn::Create {
            path,
            data,
            acl,
            kind: create,
            parent_cversion,
        } => ResolvedTxn::Create {
            path: path.clone(),
            data: data.clone(),
            acl: acl.clone(),
            ephemeral_owner: match *create {
                CreateKind::Plain { ephemeral: true } => session,
                CreateKind::Plain { ephemeral: false } => 0,
                CreateKind::Container => CONTAINER_EPHEMERAL_OWNER,
                CreateKind::Ttl(ttl) if ttl > 0 && ttl <= TTL_MAX => EphemeralType::ttl_owner(ttl),
                // ZooKeeper's leader refuses such a TTL; a record holding one is kept as is
                CreateKind::Ttl(ttl) => ttl,
            },
            parent_cversion: *parent_cversion,
            // create (1) answers with the path only; create2, container and TTL with a Stat
            with_stat: kind != op::CREATE,
        },
        ZkTxn::Delete { path } => ResolvedTxn::Delete { path: path.clone() },
        ZkTxn::SetData {
            path,
            data,
            version,
        } => ResolvedTxn::SetData {
            path: path.clone(),
            data: data.clone(),
            version: *version,
        },
        ZkTxn::SetAcl { path, acl, version } => ResolvedTxn::SetAcl {
            path: path.clone(),
            acl: acl.clone(),
            version: *version,
        },
        // SetMaxChildrenTxn changes nothing in ZooKeeper 3.x either
        ZkTxn::Check { path, .. } | ZkTxn::SetMaxChildren { path, .. } => {
            ResolvedTxn::Check { path: path.clone() }
        }
        ZkTxn::CreateSession { timeout } => ResolvedTxn::CreateSession {
            timeout_ms: *timeout,
        },
        ZkTxn::CloseSession { paths } => ResolvedTxn::CloseSession {
            paths: paths.clone(),
        },
        ZkTxn::Error { err } => ResolvedTxn::Error { err: *err },
        ZkTxn::Multi(subs) => {
            ResolvedTxn::Multi(subs.iter().map(|(k, s)| convert(session, *k, s)).collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zookeeper::tree::ZkTree;
    use ensemble_core::tree::TreeOptions;
    use ensemble_core::txn::{Origin, Txn, TxnOp};
    use ensemble_core::zxid::Zxid;
    use ensemble_proto::proto::Acl;

    fn create(path: &str, kind: CreateKind, parent_cversion: i32) -> ZkTxn {
        ZkTxn::Create {
            path: path.into(),
            data: Some(path.as_bytes().to_vec()),
            acl: Acl::open_unsafe(),
            kind,
            parent_cversion,
        }
    }

    /// The same records applied by the import's replica of ZooKeeper's DataTree (checked
    /// against ZooKeeper's digests in the interop runs) and by the core give the same tree.
    #[test]
    fn the_core_applies_records_as_the_replica_does() {
        const S: i64 = 0x0100_0000_0000_0007;
        let opts = TreeOptions {
            extended_types: true,
            ..TreeOptions::default()
        };
        // ZooKeeper's initial tree, on both sides
        let mut core = ensemble_core::tree::DataTree::new(opts);
        let snap = crate::zookeeper::migrate::to_zookeeper(&core);
        let mut zk = ZkTree::from_snapshot(&snap, 0).expect("reads back");
        let records: Vec<(i32, ZkTxn)> = vec![
            (op::CREATE_SESSION, ZkTxn::CreateSession { timeout: 30_000 }),
            (
                op::CREATE,
                create("/a", CreateKind::Plain { ephemeral: false }, 1),
            ),
            (
                op::CREATE2,
                create("/a/e", CreateKind::Plain { ephemeral: true }, 1),
            ),
            (op::CREATE_CONTAINER, create("/c", CreateKind::Container, 2)),
            (op::CREATE_TTL, create("/t", CreateKind::Ttl(5_000), 3)),
            (
                op::SET_DATA,
                ZkTxn::SetData {
                    path: "/a".into(),
                    data: None,
                    version: 1,
                },
            ),
            (
                op::SET_ACL,
                ZkTxn::SetAcl {
                    path: "/t".into(),
                    acl: Acl::open_unsafe(),
                    version: 1,
                },
            ),
            (
                op::MULTI,
                ZkTxn::Multi(vec![
                    (
                        op::CREATE,
                        create("/a/m", CreateKind::Plain { ephemeral: false }, 2),
                    ),
                    (op::DELETE, ZkTxn::Delete { path: "/t".into() }),
                ]),
            ),
            (
                op::MULTI,
                ZkTxn::Multi(vec![(op::ERROR, ZkTxn::Error { err: -101 })]),
            ),
            (op::ERROR, ZkTxn::Error { err: -110 }),
            (
                op::CLOSE_SESSION,
                ZkTxn::CloseSession {
                    paths: Some(vec!["/a/e".into()]),
                },
            ),
        ];
        for (i, (kind, txn)) in records.into_iter().enumerate() {
            let zxid = 0x1_0000_0001 + i as i64;
            let hdr = TxnHeader {
                client_id: S,
                cxid: i as i32,
                zxid,
                time: 1_700_000_000_000 + i as i64,
                kind,
            };
            zk.process(&hdr, &txn);
            core.apply(&Txn {
                zxid: Zxid(zxid as u64),
                time: hdr.time,
                session: S,
                cxid: hdr.cxid,
                origin: Origin::NONE,
                op: TxnOp::Resolved(resolved(&hdr, &txn)),
            });
            let want = crate::zookeeper::migrate::to_ensemble(&zk, opts).expect("converts");
            assert_eq!(
                core.to_snapshot(),
                want.to_snapshot(),
                "after record {i} ({kind})"
            );
        }
        assert!(!core.exists("/a/e") && core.exists("/a/m") && !core.exists("/t"));
    }
}
