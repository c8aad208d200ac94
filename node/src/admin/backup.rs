//! ZooKeeper 3.9's `snapshot` and `restore` commands, behind its authentication: an
//! `Authorization: <scheme> <auth>` header (`digest user:password`, or `ip`), authenticated by
//! that scheme's provider and authorised against the ACL of `/` for every permission (ALL), as
//! 3.9's `AuthRequest(Perms.ALL, "/")` does; the super digest passes. A missing header is 401
//! "Auth info is missing for the command", bad credentials 401 "Not authenticated", too few
//! rights 403 "Not authorized".
//!
//! `snapshot` streams the state as it is now (the data tree at its last applied zxid) in this
//! build's snapshot file format, so that the download can be placed in a dataDir as
//! `version-2/snapshot.<zxid>`; `streaming=false` answers the headers only. `restore` is
//! refused (503, as 3.9 answers when `zookeeper.admin.restore.enabled=false`): replacing one
//! server's state under a running ensemble makes it diverge from its quorum and can drop
//! acknowledged writes. The operator's procedure is offline (node/README.md, "Backup and
//! restore").

use super::http::{Request, Response};
use super::json::Json;
use crate::storage::snapshot::{SNAP_MAGIC, SNAP_VERSION};
use ensemble_core::Server;
use ensemble_core::acl;
use ensemble_proto::proto::{Id, perms};

pub const SNAPSHOT: &str = "snapshot";
pub const RESTORE: &str = "restore";

/// The ids an `Authorization` header authenticates, or the refusal.
pub fn authenticate(req: &Request, super_digest: Option<&str>) -> Result<Vec<Id>, (u16, String)> {
    let Some(info) = req.header("authorization") else {
        return Err((401, "Auth info is missing for the command".into()));
    };
    let parts: Vec<&str> = info.split(' ').collect();
    let denied = || (401, "Not authenticated".to_string());
    match parts.as_slice() {
        ["digest", user_password] if user_password.contains(':') => {
            Ok(acl::digest_auth_ids(user_password, super_digest))
        }
        ["ip"] | ["ip", _] => Ok(vec![Id::new(
            acl::IP,
            &req.peer.ip().to_canonical().to_string(),
        )]),
        _ => Err(denied()),
    }
}

/// ZooKeeper's check: every permission on `/`.
pub fn authorized(server: &Server, ids: &[Id]) -> bool {
    let root = server.tree().get_acl("/").unwrap_or_default();
    acl::check(root, perms::ALL, ids)
}

/// The snapshot file's bytes (storage/snapshot.rs's layout: a checksummed header, then the data).
pub fn file_bytes(zxid: u64, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(40 + data.len());
    out.extend_from_slice(SNAP_MAGIC);
    out.extend_from_slice(&SNAP_VERSION.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&zxid.to_le_bytes());
    out.extend_from_slice(&(data.len() as u64).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(data).to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(data);
    out
}

/// What the core thread answers a `snapshot`: the refusal, or the zxid and the file's bytes.
pub type Taken = Result<(u64, Vec<u8>), (u16, String)>;

pub fn refusal(command: &str, status: u16, error: String) -> Response {
    let j = super::commands::response(command, Some(error));
    Response::new(status, "application/json", j.pretty())
}

/// The HTTP answer to a taken snapshot.
pub fn snapshot_response(taken: Taken, streaming: bool) -> Response {
    match taken {
        Err((status, why)) => refusal(SNAPSHOT, status, why),
        Ok((zxid, bytes)) => {
            let headers = vec![
                ("last_zxid".to_string(), format!("0x{zxid:x}")),
                ("snapshot_size".to_string(), bytes.len().to_string()),
            ];
            let mut r = if streaming {
                Response::new(200, "application/octet-stream", bytes)
            } else {
                let j = super::commands::response(SNAPSHOT, None);
                Response::new(200, "application/json", j.pretty())
            };
            r.headers = headers;
            r
        }
    }
}

/// `restore`, once authorised.
pub fn restore_refused() -> Response {
    let mut j = Json::object();
    j.put("command", RESTORE);
    j.put(
        "error",
        "restore is disabled in this build: loading a snapshot into one running server makes it \
         diverge from its ensemble; restore offline, every server at once: stop them, then \
         `ensemble restore zoo1.cfg zoo2.cfg ... FILE` (node/README.md, Backup and restore)",
    );
    Response::new(503, "application/json", j.pretty())
}
