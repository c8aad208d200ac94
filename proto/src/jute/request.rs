//! Requests: `RequestHeader{int xid, int type}` + the opcode's record (`zookeeper.jute`,
//! `MultiOperationRecord.java`).

use super::JuteError;
use super::wire::{
    Reader, put_acls, put_bool, put_buffer, put_data, put_int, put_long, put_strings, put_ustring,
};
use crate::proto::{
    AddWatchMode, CreateMode, CreateOp, MultiOp, OpCode, ReadOp, Request, WatcherType,
};

/// The terminator of a multi's op list: `MultiHeader{-1, true, -1}`.
pub(crate) fn put_multi_end(out: &mut Vec<u8>) {
    put_int(out, -1);
    put_bool(out, true);
    put_int(out, -1);
}

fn create_op(opcode: OpCode) -> Option<CreateOp> {
    Some(match opcode {
        OpCode::Create => CreateOp::Create,
        OpCode::Create2 => CreateOp::Create2,
        OpCode::CreateContainer => CreateOp::Container,
        OpCode::CreateTtl => CreateOp::Ttl,
        _ => return None,
    })
}

fn create_opcode(op: CreateOp) -> OpCode {
    match op {
        CreateOp::Create => OpCode::Create,
        CreateOp::Create2 => OpCode::Create2,
        CreateOp::Container => OpCode::CreateContainer,
        CreateOp::Ttl => OpCode::CreateTtl,
    }
}

/// The `what` of the error for create flags that name no `CreateMode`: ZooKeeper answers that
/// BadArguments (a semantic refusal), not MarshallingError.
pub(crate) const UNKNOWN_CREATE_FLAGS: &str = "unknown create flags";

/// `CreateRequest` / `CreateTTLRequest` (the latter only for createTTL).
struct Create {
    path: String,
    data: Vec<u8>,
    null: bool,
    acl: Vec<crate::proto::Acl>,
    mode: CreateMode,
    ttl: i64,
}

fn read_create(r: &mut Reader<'_>, op: CreateOp) -> Result<Create, JuteError> {
    match read_create_raw(r, op)? {
        (c, None) => Ok(c),
        (_, Some(offset)) => Err(JuteError::BadValue {
            offset,
            what: UNKNOWN_CREATE_FLAGS,
        }),
    }
}

/// The whole record, with the offset of its flags when they name no `CreateMode` (the mode is
/// then a placeholder): ZooKeeper deserializes the record before it looks at the flags.
fn read_create_raw(r: &mut Reader<'_>, op: CreateOp) -> Result<(Create, Option<usize>), JuteError> {
    let path = r.ustring()?;
    let (data, null) = r.buffer_or_null()?;
    let acl = r.acls()?;
    let offset = r.offset();
    let flags = r.int()?;
    let ttl = if op == CreateOp::Ttl { r.long()? } else { 0 };
    let (mode, bad) = match CreateMode::from_flags(flags) {
        Some(mode) => (mode, None),
        None => (CreateMode::Persistent, Some(offset)),
    };
    Ok((
        Create {
            path,
            data,
            null,
            acl,
            mode,
            ttl,
        },
        bad,
    ))
}

#[allow(clippy::too_many_arguments)]
fn put_create(
    out: &mut Vec<u8>,
    op: CreateOp,
    path: &str,
    data: &[u8],
    null: bool,
    acl: &[crate::proto::Acl],
    mode: CreateMode,
    ttl: i64,
) {
    put_ustring(out, path);
    put_data(out, data, null);
    put_acls(out, acl);
    put_int(out, mode as i32);
    if op == CreateOp::Ttl {
        put_long(out, ttl);
    }
}

fn watcher_type(r: &mut Reader<'_>) -> Result<WatcherType, JuteError> {
    let offset = r.offset();
    WatcherType::from_i32(r.int()?).ok_or(JuteError::BadValue {
        offset,
        what: "unknown watcher type",
    })
}

/// One `MultiHeader`: (type, done). The err field is -1 from clients and carries nothing.
fn multi_header(r: &mut Reader<'_>) -> Result<(i32, bool), JuteError> {
    let kind = r.int()?;
    let done = r.bool()?;
    let _err = r.int()?;
    Ok((kind, done))
}

/// A multi's ops, and the indexes of those whose data was null.
fn read_multi(r: &mut Reader<'_>) -> Result<(Vec<MultiOp>, Vec<u32>), JuteError> {
    let mut ops = Vec::new();
    let mut nulls = Vec::new();
    while let Some((op, bad, null)) = read_multi_op(r)? {
        if let Some(offset) = bad {
            return Err(JuteError::BadValue {
                offset,
                what: UNKNOWN_CREATE_FLAGS,
            });
        }
        if null {
            nulls.push(ops.len() as u32);
        }
        ops.push(op);
    }
    Ok((ops, nulls))
}

/// `request`, wrapped in `Request::NullData` when some of its data buffers were null.
fn with_nulls(request: Request, ops: Vec<u32>) -> Request {
    if ops.is_empty() {
        request
    } else {
        Request::NullData {
            request: Box::new(request),
            ops,
        }
    }
}

/// For a multi record that decodes except for create flags naming no `CreateMode`: the index
/// of the first such op and the number of ops.
pub(crate) fn multi_bad_create_flags(r: &mut Reader<'_>) -> Option<(usize, usize)> {
    let mut first_bad = None;
    let mut n = 0;
    while let Some((_, bad, _)) = read_multi_op(r).ok()? {
        if bad.is_some() && first_bad.is_none() {
            first_bad = Some(n);
        }
        n += 1;
    }
    first_bad.map(|i| (i, n))
}

/// One op of a multi (with the offset of bad create flags, as `read_create_raw`, and whether
/// its data was null); `None` at the terminating header.
#[allow(clippy::type_complexity)]
fn read_multi_op(r: &mut Reader<'_>) -> Result<Option<(MultiOp, Option<usize>, bool)>, JuteError> {
    let offset = r.offset();
    let (kind, done) = multi_header(r)?;
    if done {
        return Ok(None);
    }
    let mut bad = None;
    let mut null = false;
    let op = match OpCode::from_i32(kind) {
        Some(OpCode::Delete) => MultiOp::Delete {
            path: r.ustring()?,
            version: r.int()?,
        },
        Some(OpCode::SetData) => {
            let path = r.ustring()?;
            let (data, n) = r.buffer_or_null()?;
            null = n;
            MultiOp::SetData {
                path,
                data,
                version: r.int()?,
            }
        }
        Some(OpCode::Check) => MultiOp::Check {
            path: r.ustring()?,
            version: r.int()?,
        },
        Some(c) => match create_op(c) {
            Some(op) => {
                let (c, b) = read_create_raw(r, op)?;
                bad = b;
                null = c.null;
                MultiOp::Create {
                    op,
                    path: c.path,
                    data: c.data,
                    acl: c.acl,
                    mode: c.mode,
                    ttl: c.ttl,
                }
            }
            None => {
                return Err(JuteError::BadValue {
                    offset,
                    what: "not a multi write op",
                });
            }
        },
        None => {
            return Err(JuteError::BadValue {
                offset,
                what: "not a multi write op",
            });
        }
    };
    Ok(Some((op, bad, null)))
}

fn read_multi_read(r: &mut Reader<'_>) -> Result<Vec<ReadOp>, JuteError> {
    let mut ops = Vec::new();
    loop {
        let offset = r.offset();
        let (kind, done) = multi_header(r)?;
        if done {
            return Ok(ops);
        }
        // GetChildrenRequest / GetDataRequest carry a watch flag that multiRead ignores.
        let op = match OpCode::from_i32(kind) {
            Some(OpCode::GetChildren) => {
                let path = r.ustring()?;
                let _watch = r.bool()?;
                ReadOp::GetChildren { path }
            }
            Some(OpCode::GetData) => {
                let path = r.ustring()?;
                let _watch = r.bool()?;
                ReadOp::GetData { path }
            }
            _ => {
                return Err(JuteError::BadValue {
                    offset,
                    what: "not a multiRead op",
                });
            }
        };
        ops.push(op);
    }
}

/// The request body for `opcode` (header already read).
pub(crate) fn read_request(opcode_raw: i32, r: &mut Reader<'_>) -> Result<Request, JuteError> {
    let opcode = OpCode::from_i32(opcode_raw).ok_or(JuteError::UnknownOpcode(opcode_raw))?;
    let req = match opcode {
        OpCode::Create | OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTtl => {
            // create_op is total on these four
            let op = create_op(opcode).ok_or(JuteError::UnknownOpcode(opcode_raw))?;
            let c = read_create(r, op)?;
            let nulls = if c.null { vec![0] } else { Vec::new() };
            with_nulls(
                Request::Create {
                    op,
                    path: c.path,
                    data: c.data,
                    acl: c.acl,
                    mode: c.mode,
                    ttl: c.ttl,
                },
                nulls,
            )
        }
        OpCode::Delete => Request::Delete {
            path: r.ustring()?,
            version: r.int()?,
        },
        OpCode::Exists => Request::Exists {
            path: r.ustring()?,
            watch: r.bool()?,
        },
        OpCode::GetData => Request::GetData {
            path: r.ustring()?,
            watch: r.bool()?,
        },
        OpCode::SetData => {
            let path = r.ustring()?;
            let (data, null) = r.buffer_or_null()?;
            let version = r.int()?;
            with_nulls(
                Request::SetData {
                    path,
                    data,
                    version,
                },
                if null { vec![0] } else { Vec::new() },
            )
        }
        OpCode::GetAcl => Request::GetAcl { path: r.ustring()? },
        OpCode::SetAcl => Request::SetAcl {
            path: r.ustring()?,
            acl: r.acls()?,
            version: r.int()?,
        },
        OpCode::GetChildren => Request::GetChildren {
            path: r.ustring()?,
            watch: r.bool()?,
        },
        OpCode::GetChildren2 => Request::GetChildren2 {
            path: r.ustring()?,
            watch: r.bool()?,
        },
        OpCode::Sync => Request::Sync { path: r.ustring()? },
        OpCode::Check => Request::Check {
            path: r.ustring()?,
            version: r.int()?,
        },
        OpCode::Multi => {
            let (ops, nulls) = read_multi(r)?;
            with_nulls(Request::Multi(ops), nulls)
        }
        OpCode::MultiRead => Request::MultiRead(read_multi_read(r)?),
        OpCode::GetEphemerals => Request::GetEphemerals {
            prefix: r.ustring()?,
        },
        OpCode::GetAllChildrenNumber => Request::GetAllChildrenNumber { path: r.ustring()? },
        OpCode::AddWatch => {
            let path = r.ustring()?;
            let offset = r.offset();
            let mode = AddWatchMode::from_i32(r.int()?).ok_or(JuteError::BadValue {
                offset,
                what: "unknown addWatch mode",
            })?;
            Request::AddWatch { path, mode }
        }
        OpCode::CheckWatches => Request::CheckWatches {
            path: r.ustring()?,
            kind: watcher_type(r)?,
        },
        OpCode::RemoveWatches => Request::RemoveWatches {
            path: r.ustring()?,
            kind: watcher_type(r)?,
        },
        OpCode::SetWatches | OpCode::SetWatches2 => {
            let v2 = opcode == OpCode::SetWatches2;
            let relative_zxid = r.long()?;
            let data = r.strings()?;
            let exist = r.strings()?;
            let child = r.strings()?;
            let (persistent, persistent_recursive) = if v2 {
                (r.strings()?, r.strings()?)
            } else {
                (Vec::new(), Vec::new())
            };
            Request::SetWatches {
                relative_zxid,
                data,
                exist,
                child,
                persistent,
                persistent_recursive,
                v2,
            }
        }
        OpCode::Auth => {
            // AuthPacket.type is always 0 and unused by the server
            let _kind = r.int()?;
            Request::Auth {
                scheme: r.ustring()?,
                auth: r.buffer()?,
            }
        }
        OpCode::WhoAmI => Request::WhoAmI,
        OpCode::Reconfig => Request::Reconfig {
            joining: r.ustring()?,
            leaving: r.ustring()?,
            new_members: r.ustring()?,
            from_config: r.long()?,
        },
        OpCode::Ping => Request::Ping,
        OpCode::CloseSession => Request::CloseSession,
        OpCode::Notification
        | OpCode::Sasl
        | OpCode::DeleteContainer
        | OpCode::CreateSession
        | OpCode::Error => return Err(JuteError::UnknownOpcode(opcode_raw)),
    };
    Ok(req)
}

fn put_multi_header(out: &mut Vec<u8>, opcode: OpCode) {
    put_int(out, opcode as i32);
    put_bool(out, false);
    put_int(out, -1);
}

/// The request body (no header).
pub(crate) fn put_request(out: &mut Vec<u8>, req: &Request) {
    put_request_nulls(out, req, &[]);
}

/// The body, with the data of the ops at `nulls` written as null buffers.
fn put_request_nulls(out: &mut Vec<u8>, req: &Request, nulls: &[u32]) {
    let null = |i: usize| nulls.contains(&(i as u32));
    match req {
        Request::NullData { request, ops } => put_request_nulls(out, request, ops),
        Request::Create {
            op,
            path,
            data,
            acl,
            mode,
            ttl,
        } => put_create(out, *op, path, data, null(0), acl, *mode, *ttl),
        Request::Delete { path, version } | Request::Check { path, version } => {
            put_ustring(out, path);
            put_int(out, *version);
        }
        Request::Exists { path, watch }
        | Request::GetData { path, watch }
        | Request::GetChildren { path, watch }
        | Request::GetChildren2 { path, watch } => {
            put_ustring(out, path);
            put_bool(out, *watch);
        }
        Request::SetData {
            path,
            data,
            version,
        } => {
            put_ustring(out, path);
            put_data(out, data, null(0));
            put_int(out, *version);
        }
        Request::GetAcl { path }
        | Request::Sync { path }
        | Request::GetAllChildrenNumber { path }
        | Request::GetEphemerals { prefix: path } => put_ustring(out, path),
        Request::SetAcl { path, acl, version } => {
            put_ustring(out, path);
            put_acls(out, acl);
            put_int(out, *version);
        }
        Request::Multi(ops) => {
            for (i, op) in ops.iter().enumerate() {
                match op {
                    MultiOp::Create {
                        op,
                        path,
                        data,
                        acl,
                        mode,
                        ttl,
                    } => {
                        put_multi_header(out, create_opcode(*op));
                        put_create(out, *op, path, data, null(i), acl, *mode, *ttl);
                    }
                    MultiOp::Delete { path, version } => {
                        put_multi_header(out, OpCode::Delete);
                        put_ustring(out, path);
                        put_int(out, *version);
                    }
                    MultiOp::SetData {
                        path,
                        data,
                        version,
                    } => {
                        put_multi_header(out, OpCode::SetData);
                        put_ustring(out, path);
                        put_data(out, data, null(i));
                        put_int(out, *version);
                    }
                    MultiOp::Check { path, version } => {
                        put_multi_header(out, OpCode::Check);
                        put_ustring(out, path);
                        put_int(out, *version);
                    }
                }
            }
            put_multi_end(out);
        }
        Request::MultiRead(ops) => {
            for op in ops {
                let (opcode, path) = match op {
                    ReadOp::GetChildren { path } => (OpCode::GetChildren, path),
                    ReadOp::GetData { path } => (OpCode::GetData, path),
                };
                put_multi_header(out, opcode);
                put_ustring(out, path);
                put_bool(out, false);
            }
            put_multi_end(out);
        }
        Request::AddWatch { path, mode } => {
            put_ustring(out, path);
            put_int(out, *mode as i32);
        }
        Request::CheckWatches { path, kind } | Request::RemoveWatches { path, kind } => {
            put_ustring(out, path);
            put_int(out, *kind as i32);
        }
        Request::SetWatches {
            relative_zxid,
            data,
            exist,
            child,
            persistent,
            persistent_recursive,
            v2,
        } => {
            put_long(out, *relative_zxid);
            put_strings(out, data);
            put_strings(out, exist);
            put_strings(out, child);
            if *v2 {
                put_strings(out, persistent);
                put_strings(out, persistent_recursive);
            }
        }
        Request::Auth { scheme, auth } => {
            put_int(out, 0);
            put_ustring(out, scheme);
            put_buffer(out, auth);
        }
        Request::Reconfig {
            joining,
            leaving,
            new_members,
            from_config,
        } => {
            // ZooKeeperAdmin sends null for a part it does not use
            for part in [joining, leaving, new_members] {
                put_data(out, part.as_bytes(), part.is_empty());
            }
            put_long(out, *from_config);
        }
        Request::WhoAmI | Request::Ping | Request::CloseSession => {}
    }
}
