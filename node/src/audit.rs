//! The audit log (`audit.enable=true`, ZooKeeper's `zookeeper.audit.enable`): ZooKeeper's
//! audit lines (`ZKAuditProvider`, `AuditHelper`, `AuditEvent`) in `zookeeper_audit.log`
//! next to the server's log (`dataDir/zookeeper_audit.log`; ZooKeeper's log4j appender
//! writes it in `zookeeper.log.dir`), one line an event in log4j's default layout:
//!
//! ```text
//! 2026-12-03 16:40:01,123 INFO audit.Log4jAuditLogger: session=0x100000f2a0000\tuser=127.0.0.1,alice\tip=127.0.0.1\toperation=create\tznode=/a\tznode_type=persistent\tresult=success
//! ```
//!
//! What is audited, as ZooKeeper audits it: `serverStart` / `serverStop`; on the server the
//! client is connected to, each create, delete, setData, setAcl (with the ACL set) and multi
//! once answered (a multi that succeeded: one line per create, delete and setData in it; one
//! that failed: one `multiOperation` failure line). `user` is the connection's identities
//! (its ip, then each digest user), `result` success or failure. On every server, each
//! ephemeral a session's close or expiry deleted (`ephemeralZNodeDeletionOnSessionCloseOrExpire`,
//! as the server's user).

use ensemble_core::ConnId;
use ensemble_proto::proto::{
    Acl, CreateMode, MultiOp, OpResult, Reply, Request, Response, SessionId, perms,
};
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The file's name, as ZooKeeper's log4j configuration names it.
pub const FILE: &str = "zookeeper_audit.log";

/// One audited op of a request, as far as the request tells.
#[derive(Clone, Debug)]
struct Op {
    operation: &'static str,
    znode: String,
    znode_type: Option<&'static str>,
    acl: Option<String>,
}

/// What a request will be audited as once answered.
#[derive(Clone, Debug)]
enum Pending {
    Single(Op),
    Multi(Vec<Option<Op>>),
}

/// The audit log of one server.
pub struct AuditLog {
    path: PathBuf,
    file: File,
    /// Requests awaiting their reply, by connection and xid.
    pending: HashMap<(ConnId, i32), Pending>,
    /// The digest users each connection added (its ip comes first in `user=`).
    users: HashMap<ConnId, Vec<String>>,
}

/// `CreateMode.toString().toLowerCase()`.
fn create_mode(mode: CreateMode) -> &'static str {
    match mode {
        CreateMode::Persistent => "persistent",
        CreateMode::PersistentSequential => "persistent_sequential",
        CreateMode::Ephemeral => "ephemeral",
        CreateMode::EphemeralSequential => "ephemeral_sequential",
        CreateMode::Container => "container",
        CreateMode::PersistentWithTtl => "persistent_with_ttl",
        CreateMode::PersistentSequentialWithTtl => "persistent_sequential_with_ttl",
    }
}

/// `ZKUtil.aclToString`: `scheme:id:perms` for each entry, run together.
fn acl_string(acl: &[Acl]) -> String {
    let mut s = String::new();
    for a in acl {
        s.push_str(&a.id.scheme);
        s.push(':');
        s.push_str(&a.id.id);
        s.push(':');
        for (bit, c) in [
            (perms::CREATE, 'c'),
            (perms::DELETE, 'd'),
            (perms::READ, 'r'),
            (perms::WRITE, 'w'),
            (perms::ADMIN, 'a'),
        ] {
            if a.perms & bit != 0 {
                s.push(c);
            }
        }
    }
    s
}

fn op_of(request: &Request) -> Option<Op> {
    let op = |operation, znode: &str| Op {
        operation,
        znode: znode.to_string(),
        znode_type: None,
        acl: None,
    };
    Some(match request {
        Request::Create { path, mode, .. } => Op {
            znode_type: Some(create_mode(*mode)),
            ..op("create", path)
        },
        Request::Delete { path, .. } => op("delete", path),
        Request::SetData { path, .. } => op("setData", path),
        Request::SetAcl { path, acl, .. } => Op {
            acl: Some(acl_string(acl)),
            ..op("setAcl", path)
        },
        Request::NullData { request, .. } => return op_of(request),
        _ => return None,
    })
}

fn multi_op(op: &MultiOp) -> Option<Op> {
    let plain = |operation, znode: &str| Op {
        operation,
        znode: znode.to_string(),
        znode_type: None,
        acl: None,
    };
    match op {
        MultiOp::Create { path, mode, .. } => Some(Op {
            znode_type: Some(create_mode(*mode)),
            ..plain("create", path)
        }),
        MultiOp::Delete { path, .. } => Some(plain("delete", path)),
        MultiOp::SetData { path, .. } => Some(plain("setData", path)),
        MultiOp::Check { .. } => None,
    }
}

/// log4j's `%d{ISO8601}` in UTC: `2026-12-03 16:40:01,123`.
fn timestamp(t: std::time::SystemTime) -> String {
    let ms = t
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let (days, rem) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    let (year, month, day) = crate::civil::civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02},{:03}",
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000
    )
}

impl AuditLog {
    /// Opens (appending) `dir/zookeeper_audit.log`.
    pub fn open(dir: &Path) -> io::Result<AuditLog> {
        let path = dir.join(FILE);
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        Ok(AuditLog {
            path,
            file,
            pending: HashMap::new(),
            users: HashMap::new(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn write(&mut self, fields: &[(&str, Option<&str>)], result: &str) {
        let mut line = timestamp(std::time::SystemTime::now());
        line.push_str(" INFO audit.Log4jAuditLogger: ");
        for (k, v) in fields {
            if let Some(v) = v {
                line.push_str(k);
                line.push('=');
                line.push_str(v);
                line.push('\t');
            }
        }
        line.push_str("result=");
        line.push_str(result);
        line.push('\n');
        if let Err(e) = self.file.write_all(line.as_bytes()) {
            tracing::error!("cannot write the audit log {}: {e}", self.path.display());
        }
    }

    /// The user the server runs as (ZooKeeper's login user, the JVM's `user.name`).
    fn server_user() -> String {
        std::env::var("USER")
            .or_else(|_| std::env::var("LOGNAME"))
            .unwrap_or_else(|_| "zookeeper".into())
    }

    pub fn server_start(&mut self) {
        let user = Self::server_user();
        self.write(
            &[("user", Some(&user)), ("operation", Some("serverStart"))],
            "success",
        );
    }

    pub fn server_stop(&mut self) {
        let user = Self::server_user();
        self.write(
            &[("user", Some(&user)), ("operation", Some("serverStop"))],
            "invoked",
        );
    }

    /// A request arrived: remember what to audit once it is answered; an `addauth digest`
    /// adds its user to the connection's.
    /// `DataTree.deleteNodes` on a session's close or expiry, on every server: one line per
    /// ephemeral deleted, as the server's own user (`ZKAuditProvider.getZKUser`).
    pub fn ephemerals_deleted(&mut self, session: SessionId, paths: &[String]) {
        let user = Self::server_user();
        let session = format!("0x{session:x}");
        for p in paths {
            self.write(
                &[
                    ("session", Some(&session)),
                    ("user", Some(&user)),
                    (
                        "operation",
                        Some("ephemeralZNodeDeletionOnSessionCloseOrExpire"),
                    ),
                    ("znode", Some(p)),
                ],
                "success",
            );
        }
    }

    pub fn on_request(&mut self, conn: ConnId, xid: i32, request: &Request) {
        let pending = match request {
            Request::Auth { scheme, auth } => {
                if scheme == "digest"
                    && let Some((user, _)) = std::str::from_utf8(auth)
                        .ok()
                        .and_then(|a| a.split_once(':'))
                {
                    let users = self.users.entry(conn).or_default();
                    if !users.iter().any(|u| u == user) {
                        users.push(user.to_string());
                    }
                }
                return;
            }
            Request::Multi(ops) => Pending::Multi(ops.iter().map(multi_op).collect()),
            r => match op_of(r) {
                Some(op) => Pending::Single(op),
                None => return,
            },
        };
        self.pending.insert((conn, xid), pending);
    }

    /// Request `xid` of `conn` was answered `reply`.
    pub fn on_reply(
        &mut self,
        conn: ConnId,
        xid: i32,
        reply: &Reply,
        session: SessionId,
        ip: Option<&str>,
    ) {
        let Some(pending) = self.pending.remove(&(conn, xid)) else {
            return;
        };
        let session = format!("0x{session:x}");
        let mut user: Vec<&str> = ip.into_iter().collect();
        if let Some(u) = self.users.get(&conn) {
            user.extend(u.iter().map(String::as_str));
        }
        let user = (!user.is_empty()).then(|| user.join(","));
        let line = |log: &mut AuditLog, op: &Op, znode: Option<&str>, ok: bool| {
            log.write(
                &[
                    ("session", Some(&session)),
                    ("user", user.as_deref()),
                    ("ip", ip),
                    ("operation", Some(op.operation)),
                    ("znode", znode),
                    ("znode_type", op.znode_type),
                    ("acl", op.acl.as_deref()),
                ],
                if ok { "success" } else { "failure" },
            )
        };
        match (pending, reply) {
            (
                Pending::Single(op),
                Ok(Response::Create { path } | Response::Create2 { path, .. }),
            ) => {
                // the name the server gave (a sequential node's)
                line(self, &op, Some(path), true)
            }
            (Pending::Single(op), r) => line(self, &op, Some(&op.znode.clone()), r.is_ok()),
            (Pending::Multi(ops), Ok(Response::Multi(results)))
                if !results.iter().any(|r| matches!(r, OpResult::Error(_))) =>
            {
                for (op, r) in ops.iter().zip(results) {
                    let Some(op) = op else { continue };
                    let znode = match r {
                        OpResult::Create { path, .. } => path.as_str(),
                        _ => op.znode.as_str(),
                    };
                    line(self, op, Some(znode), true);
                }
            }
            (Pending::Multi(_), _) => {
                let op = Op {
                    operation: "multiOperation",
                    znode: String::new(),
                    znode_type: None,
                    acl: None,
                };
                line(self, &op, None, false)
            }
        }
    }

    /// The connection is gone.
    pub fn forget(&mut self, conn: ConnId) {
        self.users.remove(&conn);
        self.pending.retain(|(c, _), _| *c != conn);
    }
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        let _ = self.file.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ensemble_proto::proto::{Id, KeeperError};

    fn lines(log: &AuditLog) -> Vec<String> {
        std::fs::read_to_string(log.path())
            .unwrap()
            .lines()
            .map(|l| l.split_once(": ").unwrap().1.to_string())
            .collect()
    }

    #[test]
    fn timestamps_are_log4js() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_796_315_201_123);
        assert_eq!(timestamp(t), "2026-12-03 16:26:41,123");
        assert_eq!(timestamp(std::time::UNIX_EPOCH), "1970-01-01 00:00:00,000");
    }

    #[test]
    fn lines_are_zookeepers() {
        let dir = std::env::temp_dir().join(format!("audit-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let _ = std::fs::remove_file(dir.join(FILE));
        let mut log = AuditLog::open(&dir).unwrap();
        log.on_request(
            1,
            0,
            &Request::Auth {
                scheme: "digest".into(),
                auth: b"alice:pw".to_vec(),
            },
        );
        log.on_request(
            1,
            1,
            &Request::SetAcl {
                path: "/a".into(),
                acl: vec![Acl {
                    perms: perms::ALL,
                    id: Id::anyone(),
                }],
                version: -1,
            },
        );
        log.on_reply(1, 1, &Err(KeeperError::NoNode), 0x10, Some("127.0.0.1"));
        log.on_request(
            2,
            7,
            &Request::Multi(vec![MultiOp::Check {
                path: "/x".into(),
                version: 1,
            }]),
        );
        log.on_reply(
            2,
            7,
            &Ok(Response::Multi(vec![OpResult::Error(-103)])),
            0x11,
            Some("10.0.0.1"),
        );
        assert_eq!(
            lines(&log),
            vec![
                "session=0x10\tuser=127.0.0.1,alice\tip=127.0.0.1\toperation=setAcl\tznode=/a\tacl=world:anyone:cdrwa\tresult=failure",
                "session=0x11\tuser=10.0.0.1\tip=10.0.0.1\toperation=multiOperation\tresult=failure",
            ]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
