//! The data tree replays what a real Apache ZooKeeper 3.8.0 ensemble answered
//! (`proto/tests/golden/zk-3.8-wire-samples.jsonl`): every recorded write is applied at its recorded zxid,
//! with the connection's recorded auth, and every reply (write or read) must equal ZooKeeper's:
//! paths (sequential names), every Stat field but the clock (ctime/mtime), errors, multi
//! results, ACLs. Children lists are compared as sets (ZooKeeper's order is a hash order).

use ensemble_core::acl;
use ensemble_core::tree::{DataTree, TreeOptions};
use ensemble_core::txn::{Origin, Txn, TxnOp};
use ensemble_core::zxid::Zxid;
use ensemble_proto::jute;
use ensemble_proto::proto::{
    Id, OpCode, OpResult, ReadResult, Reply, Request, Response, SessionId, Stat,
};
use std::collections::BTreeMap;

const SAMPLES: &str = include_str!("../../proto/tests/golden/zk-3.8-wire-samples.jsonl");

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).expect("hex"))
        .collect()
}

/// Without the clock, and with children sorted.
fn normalize(reply: Reply) -> Reply {
    fn st(s: Stat) -> Stat {
        Stat {
            ctime: 0,
            mtime: 0,
            ..s
        }
    }
    fn sorted(mut v: Vec<String>) -> Vec<String> {
        v.sort();
        v
    }
    reply.map(|r| match r {
        Response::Create2 { path, stat } => Response::Create2 {
            path,
            stat: st(stat),
        },
        Response::Stat(s) => Response::Stat(st(s)),
        Response::GetData { data, stat } => Response::GetData {
            data,
            stat: st(stat),
        },
        Response::GetAcl { acl, stat } => Response::GetAcl {
            acl,
            stat: st(stat),
        },
        Response::GetChildren { children } => Response::GetChildren {
            children: sorted(children),
        },
        Response::GetChildren2 { children, stat } => Response::GetChildren2 {
            children: sorted(children),
            stat: st(stat),
        },
        Response::Multi(rs) => Response::Multi(
            rs.into_iter()
                .map(|r| match r {
                    OpResult::Create { path, stat } => OpResult::Create {
                        path,
                        stat: stat.map(st),
                    },
                    OpResult::SetData(s) => OpResult::SetData(st(s)),
                    other => other,
                })
                .collect(),
        ),
        Response::MultiRead(rs) => Response::MultiRead(
            rs.into_iter()
                .map(|r| match r {
                    ReadResult::GetData { data, stat } => ReadResult::GetData {
                        data,
                        stat: st(stat),
                    },
                    ReadResult::GetChildren(c) => ReadResult::GetChildren(sorted(c)),
                    other => other,
                })
                .collect(),
        ),
        Response::GetEphemerals { paths } => Response::GetEphemerals {
            paths: sorted(paths),
        },
        other => other,
    })
}

/// Reads of /zookeeper/config differ on purpose: ZooKeeper keeps the dynamic configuration
/// there (written outside the txn log); Ensemble leaves it empty.
fn touches_config(r: &Request) -> bool {
    match r {
        Request::GetData { path, .. }
        | Request::GetChildren2 { path, .. }
        | Request::Exists { path, .. }
        | Request::GetAcl { path } => path == "/zookeeper/config",
        _ => false,
    }
}

#[test]
fn replies_equal_zookeepers() {
    let mut tree = DataTree::new(TreeOptions {
        extended_types: true,
        auth_providers: Default::default(),
        plant: None,
    });
    let mut session_of: BTreeMap<u64, SessionId> = BTreeMap::new();
    let mut auth_of: BTreeMap<u64, Vec<Id>> = BTreeMap::new();
    let mut pending_sessions: Vec<SessionId> = Vec::new();
    let mut requests: BTreeMap<(u64, i32), Request> = BTreeMap::new();
    let (mut writes, mut reads) = (0, 0);
    for line in SAMPLES.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line).expect("json");
        let conn = v["conn"].as_u64().expect("conn");
        let dir = v["dir"].as_str().expect("dir");
        let op = v["op"].as_str().expect("op");
        let bytes = unhex(v["hex"].as_str().expect("hex"));
        match (dir, op) {
            ("c2s", "connect") => {}
            ("s2c", "connect-response") => {
                let r = jute::decode_connect_response(&bytes).expect("connect response");
                session_of.insert(conn, r.session_id);
                // Every connection is an ip:127.0.0.1 client (recorded whoAmI).
                auth_of.insert(conn, vec![Id::new("ip", "127.0.0.1")]);
                if !tree.sessions().contains_key(&r.session_id)
                    && !pending_sessions.contains(&r.session_id)
                {
                    pending_sessions.push(r.session_id);
                }
            }
            ("c2s", _) => {
                let (xid, request) = jute::decode_request(&bytes).expect("request");
                if let Request::Auth { auth, .. } = &request {
                    let id = Id::new(
                        "digest",
                        &acl::digest_id(std::str::from_utf8(auth).expect("utf8")),
                    );
                    auth_of.get_mut(&conn).expect("connected").push(id);
                }
                requests.insert((conn, xid), request);
            }
            ("s2c", "watch-event") => {}
            ("s2c", _) => {
                let (xid, zxid, err, body) = jute::decode_reply_header(&bytes).expect("header");
                let Some(request) = requests.remove(&(conn, xid)) else {
                    continue;
                };
                let opcode: OpCode = request.opcode();
                let recorded = jute::decode_reply_body(opcode, err, body).expect("body");
                let session = session_of[&conn];
                let auth = auth_of[&conn].clone();
                let is_txn = request.is_write();
                if is_txn {
                    // Sessions opened since the last write were created at the zxids before it.
                    let zxid = Zxid(zxid as u64);
                    for s in pending_sessions.drain(..) {
                        let z = tree.last_zxid().next();
                        assert!(z < zxid, "no room for session {s:#x} before {zxid}");
                        let op = TxnOp::CreateSession { timeout_ms: 30_000 };
                        tree.apply(&Txn {
                            zxid: z,
                            time: 0,
                            session: s,
                            cxid: 0,
                            origin: Origin::NONE,
                            op,
                        });
                    }
                    let op = match request {
                        Request::CloseSession => TxnOp::CloseSession,
                        request => TxnOp::Write { request, auth },
                    };
                    let txn = Txn {
                        zxid,
                        time: 0,
                        session,
                        cxid: xid,
                        origin: Origin::NONE,
                        op,
                    };
                    let out = tree.apply(&txn);
                    assert_eq!(
                        normalize(out.reply),
                        normalize(recorded),
                        "write {:?} at {zxid}",
                        txn.op
                    );
                    writes += 1;
                } else if matches!(
                    request,
                    Request::Exists { .. }
                        | Request::GetData { .. }
                        | Request::GetAcl { .. }
                        | Request::GetChildren { .. }
                        | Request::GetChildren2 { .. }
                        | Request::MultiRead(_)
                        | Request::GetEphemerals { .. }
                        | Request::GetAllChildrenNumber { .. }
                ) && !touches_config(&request)
                {
                    let mine = tree.read_as(&request, &auth, session);
                    assert_eq!(normalize(mine), normalize(recorded), "read {request:?}");
                    reads += 1;
                }
            }
            other => panic!("unexpected frame {other:?}"),
        }
    }
    assert_eq!(tree.check_consistency(), Ok(()));
    eprintln!("compared {writes} writes and {reads} reads");
    // Enough of the recording was compared to mean something.
    assert!(
        writes >= 30 && reads >= 30,
        "{writes} writes, {reads} reads compared"
    );
}
