//! What the ensemble harness draws client requests from: paths (real ones, so requests hit
//! nodes, and garbage), ACLs, multi ops, every request kind.

use super::Source;
use ensemble_proto::proto::{
    Acl, AddWatchMode, CreateMode, CreateOp, Id, MultiOp, ReadOp, Request, WatcherType,
};

/// Draws requests; `max_zxid_seen` makes setWatches' relative zxid plausible.
pub(super) struct Gen {
    pub max_zxid_seen: i64,
}

/// Paths the generator draws from: real ones (so requests hit nodes) and garbage.
const PATHS: &[&str] = &[
    "/",
    "/a",
    "/a/b",
    "/a/b/c",
    "/e",
    "/e/x",
    "/s",
    "/s/n-",
    "/c",
    "/c/k",
    "/t",
    "/zookeeper",
    "/zookeeper/quota",
    "/zookeeper/config",
    "",
    "a",
    "//",
    "/a/",
    "/.",
    "/..",
    "/a/./b",
    "/\u{0}",
    "/\u{1}",
    "/\u{fff0}",
];

impl Gen {
    fn gen_path(&self, src: &mut Source) -> String {
        match src.byte() % 16 {
            0 => String::from_utf8_lossy(&src.bytes(12)).into_owned(),
            1 => {
                // deep
                let depth = 1 + src.below(40);
                "/d".repeat(depth)
            }
            _ => src.pick(PATHS).to_string(),
        }
    }

    fn gen_acl(&self, src: &mut Source) -> Vec<Acl> {
        let n = match src.byte() % 8 {
            0 => 0,
            1 => 2,
            _ => 1,
        };
        (0..n)
            .map(|_| {
                let perms = match src.byte() % 4 {
                    0 => src.i32(),
                    1 => ensemble_proto::proto::perms::READ,
                    _ => ensemble_proto::proto::perms::ALL,
                };
                let id = match src.byte() % 10 {
                    0 => Id::new("digest", "u:ZzbZqO1mF2ztQ0mzpMFYx2iO1yQ="),
                    1 => Id::new("ip", "127.0.0.1"),
                    2 => Id::new("ip", "10.0.0.0/8"),
                    3 => Id::new("auth", ""),
                    4 => Id::new("super", "x"),
                    5 => Id::new(
                        &String::from_utf8_lossy(&src.bytes(6)),
                        &String::from_utf8_lossy(&src.bytes(10)),
                    ),
                    6 => Id::new("ip", &String::from_utf8_lossy(&src.bytes(10))),
                    7 => Id::new("digest", &String::from_utf8_lossy(&src.bytes(10))),
                    _ => Id::anyone(),
                };
                Acl { perms, id }
            })
            .collect()
    }

    fn gen_multi_op(&self, src: &mut Source) -> MultiOp {
        let path = self.gen_path(src);
        match src.byte() % 4 {
            0 => MultiOp::Create {
                op: *src.pick(&[CreateOp::Create, CreateOp::Create2, CreateOp::Ttl]),
                path,
                data: src.bytes(8),
                acl: self.gen_acl(src),
                mode: CreateMode::from_flags(i32::from(src.byte() % 8))
                    .unwrap_or(CreateMode::Persistent),
                ttl: src.i64(),
            },
            1 => MultiOp::Delete {
                path,
                version: src.i32(),
            },
            2 => MultiOp::SetData {
                path,
                data: src.bytes(8),
                version: src.i32(),
            },
            _ => MultiOp::Check {
                path,
                version: src.i32(),
            },
        }
    }

    fn gen_paths(&self, src: &mut Source) -> Vec<String> {
        let n = src.below(3);
        (0..n).map(|_| self.gen_path(src)).collect()
    }

    pub fn gen_request(&self, src: &mut Source) -> Request {
        let path = self.gen_path(src);
        let watch = src.bool();
        match src.byte() % 24 {
            0..=3 => Request::Create {
                op: *src.pick(&[
                    CreateOp::Create,
                    CreateOp::Create2,
                    CreateOp::Container,
                    CreateOp::Ttl,
                ]),
                path,
                data: src.bytes(16),
                acl: self.gen_acl(src),
                mode: match CreateMode::from_flags(i32::from(src.byte() % 8)) {
                    Some(m) => m,
                    None => CreateMode::EphemeralSequential,
                },
                ttl: src.i64(),
            },
            4 => Request::Delete {
                path,
                version: src.i32(),
            },
            5 => Request::Exists { path, watch },
            6 => Request::GetData { path, watch },
            7 | 8 => Request::SetData {
                path,
                data: src.bytes(16),
                version: src.i32(),
            },
            9 => Request::GetAcl { path },
            10 => Request::SetAcl {
                path,
                acl: self.gen_acl(src),
                version: src.i32(),
            },
            11 => Request::GetChildren { path, watch },
            12 => Request::GetChildren2 { path, watch },
            13 => Request::Sync { path },
            14 => Request::Check {
                path,
                version: src.i32(),
            },
            15 => {
                let n = src.below(5);
                Request::Multi((0..n).map(|_| self.gen_multi_op(src)).collect())
            }
            16 => {
                let n = src.below(4);
                Request::MultiRead(
                    (0..n)
                        .map(|_| {
                            let p = self.gen_path(src);
                            if src.bool() {
                                ReadOp::GetData { path: p }
                            } else {
                                ReadOp::GetChildren { path: p }
                            }
                        })
                        .collect(),
                )
            }
            17 => match src.byte() % 3 {
                0 => Request::GetEphemerals { prefix: path },
                1 => Request::GetAllChildrenNumber { path },
                _ => Request::WhoAmI,
            },
            18 => Request::AddWatch {
                path,
                mode: if src.bool() {
                    AddWatchMode::Persistent
                } else {
                    AddWatchMode::PersistentRecursive
                },
            },
            19 => {
                let kind = WatcherType::from_i32(1 + i32::from(src.byte() % 5))
                    .unwrap_or(WatcherType::Any);
                if src.bool() {
                    Request::CheckWatches { path, kind }
                } else {
                    Request::RemoveWatches { path, kind }
                }
            }
            20 => Request::SetWatches {
                relative_zxid: if src.bool() {
                    self.max_zxid_seen
                } else {
                    src.i64()
                },
                data: self.gen_paths(src),
                exist: self.gen_paths(src),
                child: self.gen_paths(src),
                persistent: self.gen_paths(src),
                persistent_recursive: self.gen_paths(src),
                v2: src.bool(),
            },
            21 => Request::Auth {
                scheme: src
                    .pick(&["digest", "ip", "world", "sasl", "x509", ""])
                    .to_string(),
                auth: if src.bool() {
                    b"u:p".to_vec()
                } else {
                    src.bytes(12)
                },
            },
            22 => Request::Ping,
            _ => Request::CloseSession,
        }
    }
}
