//! Txns built by hand, for drivers that load a tree without a leader (benchmarks, tests).

use ensemble_core::txn::{Origin, Txn, TxnOp};
use ensemble_core::zxid::Zxid;
use ensemble_proto::proto::{Acl, CreateMode, CreateOp, Request};

/// The create of a persistent, world-open znode at `zxid`, stamped with a time that grows
/// with the zxid.
pub fn create(zxid: Zxid, path: String, data: Vec<u8>) -> Txn {
    Txn {
        zxid,
        time: 1_700_000_000_000 + zxid.0 as i64,
        session: 0,
        cxid: 0,
        origin: Origin::NONE,
        op: TxnOp::Write {
            request: Request::Create {
                op: CreateOp::Create,
                path,
                data,
                acl: Acl::open_unsafe(),
                mode: CreateMode::Persistent,
                ttl: 0,
            },
            auth: vec![],
        },
    }
}
