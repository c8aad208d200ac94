//! What `ensemble dump-log` and `ensemble dump-snapshot` print: the information of
//! ZooKeeper's zkTxnLogToolkit (one line per txn: time, session, cxid, zxid, type, the txn)
//! and zkSnapShotToolkit (one line per znode with its stat; the sessions with their timeouts
//! and ephemeral counts; the last zxid), as text or as one JSON object a line (`--json`).

use super::StorageError;
use super::log::{FileScan, scan_file};
use super::snapshot::read_snapshot_file;
use ensemble_core::acl::AuthProviders;
use ensemble_core::tree::{DataTree, TreeOptions};
use ensemble_core::{Txn, TxnOp, Zxid};
use ensemble_proto::proto::{Acl, CreateMode, CreateOp, MultiOp, Request, Stat, perms};
use serde_json::{Value, json};
use std::fmt::Write as _;
use std::io::{self, Write};
use std::path::Path;

/// How a dump is printed.
#[derive(Clone, Copy, Debug, Default)]
pub struct DumpFormat {
    pub json: bool,
    /// With each znode's (or txn's) data, in hex.
    pub data: bool,
}

/// What a log dump found at the end of the file.
#[derive(Debug, PartialEq, Eq)]
pub enum LogEnd {
    /// The end-of-log marker (or the file's end).
    Clean,
    /// A record cut short with nothing valid after it: a write the crash interrupted, which
    /// recovery drops (nothing there was acknowledged).
    TornTail { offset: u64, reason: String },
    /// Damage with valid records after it: recovery refuses to start.
    Corrupt { offset: u64, reason: String },
}

/// Print every txn of one log file to `out`; returns how many and how the file ended.
pub fn dump_log(
    path: &Path,
    fmt: DumpFormat,
    out: &mut dyn Write,
) -> Result<(usize, LogEnd), StorageError> {
    let FileScan {
        txns,
        damage,
        valid_after_damage,
        ..
    } = scan_file(path, None, None)?;
    let io = |e| StorageError::io(path, e);
    if !fmt.json {
        writeln!(out, "Ensemble txn log file {}", path.display()).map_err(io)?;
    }
    for (offset, txn) in &txns {
        if fmt.json {
            writeln!(out, "{}", txn_json(*offset, txn, fmt.data)).map_err(io)?;
        } else {
            writeln!(out, "{}", txn_line(txn, fmt.data)).map_err(io)?;
        }
    }
    let end = match damage {
        None => LogEnd::Clean,
        Some(d) if valid_after_damage.is_some() => LogEnd::Corrupt {
            offset: d.offset,
            reason: d.reason,
        },
        Some(d) => LogEnd::TornTail {
            offset: d.offset,
            reason: d.reason,
        },
    };
    if !fmt.json {
        writeln!(out, "EOF reached after {} txns.", txns.len()).map_err(io)?;
    }
    Ok((txns.len(), end))
}

/// The tree a snapshot file holds (checked as recovery checks it).
pub fn load_snapshot(path: &Path) -> Result<(Zxid, DataTree), StorageError> {
    let bad = |reason: String| StorageError::BadFile {
        path: path.to_path_buf(),
        reason,
    };
    let (zxid, bytes) = read_snapshot_file(path).map_err(bad)?;
    // Read every znode any server may have written, whatever this one's settings.
    let opts = TreeOptions {
        extended_types: true,
        auth_providers: AuthProviders {
            sasl: true,
            x509: true,
        },
        plant: None,
    };
    let tree = DataTree::from_snapshot(&bytes, opts).map_err(|e| bad(e.to_string()))?;
    if tree.last_zxid() != zxid {
        return Err(bad(format!(
            "the header says zxid {zxid}, the tree holds state at {}",
            tree.last_zxid()
        )));
    }
    Ok((zxid, tree))
}

/// Print every znode and session of a snapshot file to `out`; returns the znode count.
pub fn dump_snapshot(
    path: &Path,
    fmt: DumpFormat,
    out: &mut dyn Write,
) -> Result<usize, StorageError> {
    let (zxid, tree) = load_snapshot(path)?;
    write_tree(&tree, zxid, fmt, out).map_err(|e| StorageError::io(path, e))?;
    Ok(tree.node_count())
}

fn write_tree(tree: &DataTree, zxid: Zxid, fmt: DumpFormat, out: &mut dyn Write) -> io::Result<()> {
    let ephemerals = tree.ephemerals_by_session();
    let ephemeral_count = |s: i64| {
        ephemerals
            .iter()
            .find(|(id, _)| *id == s)
            .map(|(_, v)| v.len())
            .unwrap_or(0)
    };
    if !fmt.json {
        writeln!(out, "ZNode Details (count={}):", tree.node_count())?;
    }
    for path in tree.paths() {
        let (Some((data, stat)), acl) = (tree.get_data(path), tree.get_acl(path)) else {
            continue;
        };
        let acl = acl.unwrap_or(&[]);
        let data = fmt.data.then_some(data);
        if fmt.json {
            writeln!(out, "{}", znode_json(path, &stat, acl, data))?;
        } else {
            writeln!(out, "{}", znode_line(path, &stat, acl, data))?;
        }
    }
    if !fmt.json {
        writeln!(out, "Session Details (sid, timeout, ephemeralCount):")?;
    }
    for (sid, timeout) in tree.sessions() {
        let n = ephemeral_count(*sid);
        if fmt.json {
            let v = json!({"type": "session", "sid": hex(*sid), "timeout": timeout,
                           "ephemeralCount": n});
            writeln!(out, "{v}")?;
        } else {
            writeln!(out, "{}, {timeout}, {n}", hex(*sid))?;
        }
    }
    if fmt.json {
        let v = json!({"type": "snapshot", "lastZxid": zxid.to_string(),
                       "znodes": tree.node_count(), "sessions": tree.sessions().len(),
                       "digest": tree.digest()});
        writeln!(out, "{v}")
    } else {
        writeln!(out, "Last zxid: {zxid}")
    }
}

fn hex(n: i64) -> String {
    format!("0x{:x}", n)
}

/// `2026-12-03T16:02:31.123Z` for milliseconds since the epoch.
pub fn utc(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (year, month, day) = crate::civil::civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// zkCli.sh's rendering of permissions: `cdrwa`.
fn perms_string(p: i32) -> String {
    [
        (perms::CREATE, 'c'),
        (perms::DELETE, 'd'),
        (perms::READ, 'r'),
        (perms::WRITE, 'w'),
        (perms::ADMIN, 'a'),
    ]
    .iter()
    .filter(|(bit, _)| p & bit != 0)
    .map(|(_, c)| *c)
    .collect()
}

fn acl_string(acl: &[Acl]) -> String {
    let items: Vec<String> = acl
        .iter()
        .map(|a| format!("{}:{}:{}", a.id.scheme, a.id.id, perms_string(a.perms)))
        .collect();
    format!("[{}]", items.join(","))
}

fn acl_json(acl: &[Acl]) -> Value {
    Value::Array(
        acl.iter()
            .map(|a| json!({"scheme": a.id.scheme, "id": a.id.id, "perms": perms_string(a.perms)}))
            .collect(),
    )
}

fn hex_bytes(data: &[u8]) -> String {
    let mut s = String::with_capacity(2 * data.len());
    for b in data {
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn znode_line(path: &str, st: &Stat, acl: &[Acl], data: Option<&[u8]>) -> String {
    let mut line = format!(
        "{path} cZxid={} ctime={} mZxid={} mtime={} pZxid={} cversion={} dataVersion={} \
         aclVersion={} ephemeralOwner={} dataLength={} numChildren={} acl={}",
        hex(st.czxid),
        utc(st.ctime),
        hex(st.mzxid),
        utc(st.mtime),
        hex(st.pzxid),
        st.cversion,
        st.version,
        st.aversion,
        hex(st.ephemeral_owner),
        st.data_length,
        st.num_children,
        acl_string(acl)
    );
    if let Some(d) = data {
        let _ = write!(line, " data=#{}", hex_bytes(d));
    }
    line
}

fn znode_json(path: &str, st: &Stat, acl: &[Acl], data: Option<&[u8]>) -> Value {
    let mut v = json!({
        "type": "znode", "path": path,
        "cZxid": hex(st.czxid), "ctime": st.ctime, "mZxid": hex(st.mzxid), "mtime": st.mtime,
        "pZxid": hex(st.pzxid), "cversion": st.cversion, "dataVersion": st.version,
        "aclVersion": st.aversion, "ephemeralOwner": hex(st.ephemeral_owner),
        "dataLength": st.data_length, "numChildren": st.num_children, "acl": acl_json(acl),
    });
    if let Some(d) = data {
        v["data"] = Value::String(hex_bytes(d));
    }
    v
}

/// ZooKeeper's name of a txn's type (`TraceFormatter.op2String`) and what it carries.
fn txn_parts(op: &TxnOp, with_data: bool) -> (&'static str, String, Value) {
    match op {
        TxnOp::CreateSession { timeout_ms } => (
            "createSession",
            timeout_ms.to_string(),
            json!({"timeout": timeout_ms}),
        ),
        TxnOp::CloseSession => ("closeSession", String::new(), json!({})),
        TxnOp::DeleteContainer { path } => (
            "deleteContainer",
            format!("'{path}'"),
            json!({"path": path}),
        ),
        TxnOp::Write { request, auth } | TxnOp::EnforcedWrite { request, auth } => {
            let (name, text, mut v) = request_parts(request, with_data);
            if !auth.is_empty() {
                let ids: Vec<String> = auth
                    .iter()
                    .map(|i| format!("{}:{}", i.scheme, i.id))
                    .collect();
                v["auth"] = json!(ids);
            }
            (name, text, v)
        }
        // ZooKeeper logs a reconfig as a setData of /zookeeper/config (or an error txn)
        TxnOp::Reconfig { outcome: Ok(m) } => (
            "reconfig",
            format!("'/zookeeper/config,{}'", m.to_text().replace('\n', " ")),
            json!({"path": "/zookeeper/config", "config": m.to_text()}),
        ),
        TxnOp::Reconfig { outcome: Err(code) } => ("error", code.to_string(), json!({"err": code})),
        // a txn ZooKeeper's leader resolved (zk-observe's log), named by its record
        TxnOp::Resolved(r) => resolved_parts(r),
    }
}

fn resolved_parts(r: &ensemble_core::ResolvedTxn) -> (&'static str, String, Value) {
    use ensemble_core::ResolvedTxn as R;
    match r {
        R::Create { path, .. } => ("create", format!("'{path}'"), json!({"path": path})),
        R::Delete { path } => ("delete", format!("'{path}'"), json!({"path": path})),
        R::SetData { path, version, .. } => (
            "setData",
            format!("'{path}',{version}"),
            json!({"path": path, "version": version}),
        ),
        R::SetAcl { path, version, .. } => (
            "setACL",
            format!("'{path}',{version}"),
            json!({"path": path, "version": version}),
        ),
        R::Check { path } => ("check", format!("'{path}'"), json!({"path": path})),
        R::CreateSession { timeout_ms } => (
            "createSession",
            timeout_ms.to_string(),
            json!({"timeout": timeout_ms}),
        ),
        R::CloseSession { .. } => ("closeSession", String::new(), json!({})),
        R::Error { err } => ("error", err.to_string(), json!({"err": err})),
        R::Multi(subs) => (
            "multi",
            subs.len().to_string(),
            json!({"ops": subs.iter().map(|s| resolved_parts(s).0).collect::<Vec<_>>()}),
        ),
    }
}

fn create_name(op: CreateOp) -> &'static str {
    match op {
        CreateOp::Create => "create",
        CreateOp::Create2 => "create2",
        CreateOp::Container => "createContainer",
        CreateOp::Ttl => "createTTL",
    }
}

fn mode_name(mode: CreateMode) -> &'static str {
    match mode {
        CreateMode::Persistent => "persistent",
        CreateMode::Ephemeral => "ephemeral",
        CreateMode::PersistentSequential => "persistent_sequential",
        CreateMode::EphemeralSequential => "ephemeral_sequential",
        CreateMode::Container => "container",
        CreateMode::PersistentWithTtl => "persistent_with_ttl",
        CreateMode::PersistentSequentialWithTtl => "persistent_sequential_with_ttl",
    }
}

fn data_text(data: &[u8], with_data: bool) -> String {
    if with_data {
        format!("#{}", hex_bytes(data))
    } else {
        format!("{} bytes", data.len())
    }
}

fn data_json(v: &mut Value, data: &[u8], with_data: bool) {
    v["dataLength"] = json!(data.len());
    if with_data {
        v["data"] = Value::String(hex_bytes(data));
    }
}

/// A client write as zkTxnLogToolkit shows its txn: the path, then what the write set.
fn request_parts(r: &Request, with_data: bool) -> (&'static str, String, Value) {
    match r {
        Request::Create {
            op,
            path,
            data,
            acl,
            mode,
            ttl,
        } => {
            let mut v = json!({"path": path, "acl": acl_json(acl), "mode": mode_name(*mode)});
            data_json(&mut v, data, with_data);
            let mut text = format!(
                "'{path}',{},{},{}",
                data_text(data, with_data),
                acl_string(acl),
                mode_name(*mode)
            );
            if *op == CreateOp::Ttl {
                v["ttl"] = json!(ttl);
                let _ = write!(text, ",ttl={ttl}");
            }
            (create_name(*op), text, v)
        }
        Request::Delete { path, version } => (
            "delete",
            format!("'{path}',{version}"),
            json!({"path": path, "version": version}),
        ),
        Request::SetData {
            path,
            data,
            version,
        } => {
            let mut v = json!({"path": path, "version": version});
            data_json(&mut v, data, with_data);
            let text = format!("'{path}',{},{version}", data_text(data, with_data));
            ("setData", text, v)
        }
        Request::SetAcl { path, acl, version } => (
            "setACL",
            format!("'{path}',{},{version}", acl_string(acl)),
            json!({"path": path, "acl": acl_json(acl), "version": version}),
        ),
        Request::Check { path, version } => (
            "check",
            format!("'{path}',{version}"),
            json!({"path": path, "version": version}),
        ),
        Request::Multi(ops) => {
            let parts: Vec<(&'static str, String, Value)> =
                ops.iter().map(|o| multi_parts(o, with_data)).collect();
            let text = parts
                .iter()
                .map(|(n, t, _)| format!("{n} {t}"))
                .collect::<Vec<_>>()
                .join("; ");
            let list: Vec<Value> = parts
                .into_iter()
                .map(|(n, _, mut v)| {
                    v["type"] = json!(n);
                    v
                })
                .collect();
            ("multi", format!("[{text}]"), json!({"ops": list}))
        }
        // Reads are never txns; anything else a future build logs is still shown.
        other => (
            "other",
            format!("{other:?}"),
            json!({"request": format!("{other:?}")}),
        ),
    }
}

fn multi_parts(op: &MultiOp, with_data: bool) -> (&'static str, String, Value) {
    let request = match op.clone() {
        MultiOp::Create {
            op,
            path,
            data,
            acl,
            mode,
            ttl,
        } => Request::Create {
            op,
            path,
            data,
            acl,
            mode,
            ttl,
        },
        MultiOp::Delete { path, version } => Request::Delete { path, version },
        MultiOp::SetData {
            path,
            data,
            version,
        } => Request::SetData {
            path,
            data,
            version,
        },
        MultiOp::Check { path, version } => Request::Check { path, version },
    };
    request_parts(&request, with_data)
}

/// One txn as a line: time, session, cxid, zxid, type and the txn, as zkTxnLogToolkit has them.
pub fn txn_line(txn: &Txn, with_data: bool) -> String {
    let (name, text, _) = txn_parts(&txn.op, with_data);
    let mut line = format!(
        "{} session {} cxid {} zxid {} {name}",
        utc(txn.time),
        hex(txn.session),
        hex(i64::from(txn.cxid)),
        txn.zxid
    );
    if !text.is_empty() {
        line.push(' ');
        line.push_str(&text);
    }
    line
}

pub fn txn_json(offset: u64, txn: &Txn, with_data: bool) -> Value {
    let (name, _, mut v) = txn_parts(&txn.op, with_data);
    v["type"] = json!(name);
    v["zxid"] = json!(txn.zxid.to_string());
    v["time"] = json!(txn.time);
    v["session"] = json!(hex(txn.session));
    v["cxid"] = json!(hex(i64::from(txn.cxid)));
    v["offset"] = json!(offset);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(utc(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(utc(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(utc(-1), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn permissions_as_zkcli_writes_them() {
        assert_eq!(perms_string(perms::ALL), "cdrwa");
        assert_eq!(perms_string(perms::READ | perms::ADMIN), "ra");
        assert_eq!(acl_string(&Acl::open_unsafe()), "[world:anyone:cdrwa]");
    }
}
