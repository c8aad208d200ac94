//! Reply bodies (after `ReplyHeader{int xid, long zxid, int err}`) and notifications
//! (`MultiResponse.java`, `FinalRequestProcessor.java`).

use super::JuteError;
use super::request::put_multi_end;
use super::wire::{
    Reader, put_acls, put_bool, put_buffer, put_int, put_stat, put_strings, put_ustring,
};
use crate::proto::{
    ClientInfo, EventType, KeeperError, KeeperState, OpCode, OpResult, ReadResult, Response,
    WatchedEvent,
};

fn put_result_header(out: &mut Vec<u8>, kind: i32, err: i32) {
    put_int(out, kind);
    put_bool(out, false);
    put_int(out, err);
}

/// The body of a successful reply. The opcode matters only where ZooKeeper's body differs from
/// what the `Response` alone says: addWatch answers with an `ErrorResponse{0}`.
pub(crate) fn put_response(out: &mut Vec<u8>, opcode: OpCode, resp: &Response) {
    match resp {
        Response::Create { path } | Response::Sync { path } => put_ustring(out, path),
        Response::Create2 { path, stat } => {
            put_ustring(out, path);
            put_stat(out, stat);
        }
        Response::Stat(stat) => put_stat(out, stat),
        Response::GetData { data, stat } => {
            put_buffer(out, data);
            put_stat(out, stat);
        }
        Response::GetDataNull { stat } => {
            put_int(out, -1);
            put_stat(out, stat);
        }
        Response::GetAcl { acl, stat } => {
            put_acls(out, acl);
            put_stat(out, stat);
        }
        Response::GetChildren { children } => put_strings(out, children),
        Response::GetChildren2 { children, stat } => {
            put_strings(out, children);
            put_stat(out, stat);
        }
        Response::Multi(results) => {
            for res in results {
                match res {
                    OpResult::Create { path, stat: None } => {
                        put_result_header(out, OpCode::Create as i32, 0);
                        put_ustring(out, path);
                    }
                    // ZooKeeper answers create2, createTTL and createContainer alike as create2
                    OpResult::Create {
                        path,
                        stat: Some(stat),
                    } => {
                        put_result_header(out, OpCode::Create2 as i32, 0);
                        put_ustring(out, path);
                        put_stat(out, stat);
                    }
                    OpResult::Delete => put_result_header(out, OpCode::Delete as i32, 0),
                    OpResult::SetData(stat) => {
                        put_result_header(out, OpCode::SetData as i32, 0);
                        put_stat(out, stat);
                    }
                    OpResult::Check => put_result_header(out, OpCode::Check as i32, 0),
                    OpResult::Error(code) => {
                        put_result_header(out, OpCode::Error as i32, *code);
                        put_int(out, *code);
                    }
                }
            }
            put_multi_end(out);
        }
        Response::MultiRead(results) => {
            for res in results {
                match res {
                    ReadResult::GetChildren(children) => {
                        put_result_header(out, OpCode::GetChildren as i32, 0);
                        put_strings(out, children);
                    }
                    ReadResult::GetData { data, stat } => {
                        put_result_header(out, OpCode::GetData as i32, 0);
                        put_buffer(out, data);
                        put_stat(out, stat);
                    }
                    ReadResult::GetDataNull { stat } => {
                        put_result_header(out, OpCode::GetData as i32, 0);
                        put_int(out, -1);
                        put_stat(out, stat);
                    }
                    ReadResult::Error(e) => {
                        put_result_header(out, OpCode::Error as i32, e.code());
                        put_int(out, e.code());
                    }
                }
            }
            put_multi_end(out);
        }
        Response::GetEphemerals { paths } => put_strings(out, paths),
        Response::AllChildrenNumber(n) => put_int(out, *n),
        Response::WhoAmI(infos) => {
            put_int(out, i32::try_from(infos.len()).unwrap_or(i32::MAX));
            for info in infos {
                put_ustring(out, &info.auth_scheme);
                put_ustring(out, &info.user);
            }
        }
        Response::Empty => {
            if opcode == OpCode::AddWatch {
                put_int(out, 0);
            }
        }
    }
}

pub(crate) fn keeper_error(offset: usize, code: i32) -> Result<KeeperError, JuteError> {
    KeeperError::from_code(code).ok_or(JuteError::BadValue {
        offset,
        what: "unknown error code",
    })
}

fn read_multi(r: &mut Reader<'_>) -> Result<Vec<OpResult>, JuteError> {
    let mut results = Vec::new();
    loop {
        let offset = r.offset();
        let kind = r.int()?;
        let done = r.bool()?;
        let _err = r.int()?;
        if done {
            return Ok(results);
        }
        let res = match OpCode::from_i32(kind) {
            Some(OpCode::Create) => OpResult::Create {
                path: r.ustring()?,
                stat: None,
            },
            Some(OpCode::Create2) => OpResult::Create {
                path: r.ustring()?,
                stat: Some(r.stat()?),
            },
            Some(OpCode::Delete) => OpResult::Delete,
            Some(OpCode::SetData) => OpResult::SetData(r.stat()?),
            Some(OpCode::Check) => OpResult::Check,
            // the ErrorResponse body is authoritative, as in MultiResponse.deserialize
            Some(OpCode::Error) => OpResult::Error(r.int()?),
            _ => {
                return Err(JuteError::BadValue {
                    offset,
                    what: "not a multi result type",
                });
            }
        };
        results.push(res);
    }
}

fn read_multi_read(r: &mut Reader<'_>) -> Result<Vec<ReadResult>, JuteError> {
    let mut results = Vec::new();
    loop {
        let offset = r.offset();
        let kind = r.int()?;
        let done = r.bool()?;
        let _err = r.int()?;
        if done {
            return Ok(results);
        }
        let res = match OpCode::from_i32(kind) {
            Some(OpCode::GetChildren) => ReadResult::GetChildren(r.strings()?),
            Some(OpCode::GetData) => {
                let (data, null) = r.buffer_or_null()?;
                let stat = r.stat()?;
                if null {
                    ReadResult::GetDataNull { stat }
                } else {
                    ReadResult::GetData { data, stat }
                }
            }
            Some(OpCode::Error) => {
                let offset = r.offset();
                ReadResult::Error(keeper_error(offset, r.int()?)?)
            }
            _ => {
                return Err(JuteError::BadValue {
                    offset,
                    what: "not a multiRead result type",
                });
            }
        };
        results.push(res);
    }
}

/// The body of a successful reply to `opcode`.
pub(crate) fn read_response(opcode: OpCode, r: &mut Reader<'_>) -> Result<Response, JuteError> {
    Ok(match opcode {
        OpCode::Create => Response::Create { path: r.ustring()? },
        OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTtl => Response::Create2 {
            path: r.ustring()?,
            stat: r.stat()?,
        },
        OpCode::Exists | OpCode::SetData | OpCode::SetAcl => Response::Stat(r.stat()?),
        // a standalone check answers with a SetDataResponse in newer servers, nothing in older
        OpCode::Check => {
            if r.is_empty() {
                Response::Empty
            } else {
                Response::Stat(r.stat()?)
            }
        }
        OpCode::GetData | OpCode::Reconfig => {
            let (data, null) = r.buffer_or_null()?;
            let stat = r.stat()?;
            if null {
                Response::GetDataNull { stat }
            } else {
                Response::GetData { data, stat }
            }
        }
        OpCode::GetAcl => Response::GetAcl {
            acl: r.acls()?,
            stat: r.stat()?,
        },
        OpCode::GetChildren => Response::GetChildren {
            children: r.strings()?,
        },
        OpCode::GetChildren2 => Response::GetChildren2 {
            children: r.strings()?,
            stat: r.stat()?,
        },
        OpCode::Sync => Response::Sync { path: r.ustring()? },
        OpCode::Multi => Response::Multi(read_multi(r)?),
        OpCode::MultiRead => Response::MultiRead(read_multi_read(r)?),
        OpCode::GetEphemerals => Response::GetEphemerals {
            paths: r.strings()?,
        },
        OpCode::GetAllChildrenNumber => Response::AllChildrenNumber(r.int()?),
        OpCode::WhoAmI => {
            let n = r.count(8)?;
            let mut infos = Vec::with_capacity(n);
            for _ in 0..n {
                infos.push(ClientInfo {
                    auth_scheme: r.ustring()?,
                    user: r.ustring()?,
                });
            }
            Response::WhoAmI(infos)
        }
        // ErrorResponse{0}; tolerate a server that sends nothing
        OpCode::AddWatch => {
            if !r.is_empty() {
                let offset = r.offset();
                if r.int()? != 0 {
                    return Err(JuteError::BadValue {
                        offset,
                        what: "addWatch ErrorResponse not 0",
                    });
                }
            }
            Response::Empty
        }
        OpCode::Delete
        | OpCode::CheckWatches
        | OpCode::RemoveWatches
        | OpCode::SetWatches
        | OpCode::SetWatches2
        | OpCode::Auth
        | OpCode::Ping
        | OpCode::CloseSession => Response::Empty,
        OpCode::Notification
        | OpCode::Sasl
        | OpCode::DeleteContainer
        | OpCode::CreateSession
        | OpCode::Error => return Err(JuteError::UnknownOpcode(opcode as i32)),
    })
}

pub(crate) fn read_event(r: &mut Reader<'_>) -> Result<WatchedEvent, JuteError> {
    let offset = r.offset();
    let kind = EventType::from_i32(r.int()?).ok_or(JuteError::BadValue {
        offset,
        what: "unknown event type",
    })?;
    let offset = r.offset();
    let state = KeeperState::from_i32(r.int()?).ok_or(JuteError::BadValue {
        offset,
        what: "unknown keeper state",
    })?;
    Ok(WatchedEvent {
        kind,
        state,
        path: r.ustring()?,
    })
}

pub(crate) fn put_event(out: &mut Vec<u8>, e: &WatchedEvent) {
    put_int(out, e.kind as i32);
    put_int(out, e.state as i32);
    put_ustring(out, &e.path);
}
