//! The client wire protocol's byte encoding (jute), both directions. Pure: bytes in, values out.
//! Frames are 4-byte big-endian length + record; decoders take the record only (the length
//! prefix is the transport's, see [`frame_len`]); encoders append whole frames, prefix included.
//!
//! Decoders never panic, never allocate more than the frame holds, and refuse unknown opcodes,
//! bad lengths and trailing bytes with a [`JuteError`]. Encoders write ZooKeeper's canonical
//! bytes: what Apache ZooKeeper 3.8 and its clients put on the wire (see
//! `proto/tests/golden/zk-3.8-wire-samples.jsonl`).

mod reply;
mod request;
mod wire;

use crate::proto::{ConnectRequest, ConnectResponse, OpCode, Reply, Request, WatchedEvent};
use wire::{Reader, framed, put_bool, put_buffer, put_int, put_long};

/// `jute.maxbuffer` default: 0xfffff.
pub const MAX_BUFFER: usize = 0xfffff;

/// xid of a notification.
pub const NOTIFICATION_XID: i32 = -1;
/// xid of a ping.
pub const PING_XID: i32 = -2;
/// xid of an auth packet.
pub const AUTH_XID: i32 = -4;
/// xid of setWatches / setWatches2.
pub const SET_WATCHES_XID: i32 = -8;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JuteError {
    #[error("record ends early at offset {offset} (wanted {wanted} more bytes)")]
    Truncated { offset: usize, wanted: usize },
    #[error("bad length {len} at offset {offset}")]
    BadLength { offset: usize, len: i64 },
    #[error("unknown opcode {0}")]
    UnknownOpcode(i32),
    #[error("bad value at offset {offset}: {what}")]
    BadValue { offset: usize, what: &'static str },
    #[error("{0} trailing bytes after the record")]
    Trailing(usize),
}

/// The length a 4-byte frame prefix announces, refused when negative or over `MAX_BUFFER`
/// (as ZooKeeper's `NIOServerCnxn.readLength` and `ClientCnxnSocket.readLength` do).
pub fn frame_len(prefix: [u8; 4]) -> Result<usize, JuteError> {
    let len = i32::from_be_bytes(prefix);
    match usize::try_from(len) {
        Ok(n) if n <= MAX_BUFFER => Ok(n),
        _ => Err(JuteError::BadLength {
            offset: 0,
            len: i64::from(len),
        }),
    }
}

fn check_size(frame: &[u8]) -> Result<(), JuteError> {
    if frame.len() > MAX_BUFFER {
        return Err(JuteError::BadLength {
            offset: 0,
            len: frame.len() as i64,
        });
    }
    Ok(())
}

// ---- server side ----

/// The handshake record (no header). Old clients leave out the trailing readOnly byte.
pub fn decode_connect(frame: &[u8]) -> Result<ConnectRequest, JuteError> {
    check_size(frame)?;
    let mut r = Reader::new(frame);
    let protocol_version = r.int()?;
    let last_zxid_seen = r.long()?;
    let timeout_ms = r.int()?;
    let session_id = r.long()?;
    let passwd = r.buffer()?;
    let read_only = if r.is_empty() { None } else { Some(r.bool()?) };
    r.finish()?;
    Ok(ConnectRequest {
        protocol_version,
        last_zxid_seen,
        timeout_ms,
        session_id,
        passwd,
        read_only,
    })
}

/// `RequestHeader{xid, type}` alone: lets a server answer (or log) a request whose body it
/// cannot decode.
pub fn peek_request_header(frame: &[u8]) -> Result<(i32, i32), JuteError> {
    let mut r = Reader::new(frame);
    Ok((r.int()?, r.int()?))
}

/// A request record: header + body. Returns the xid and the request (its opcode is
/// `request.opcode()`).
pub fn decode_request(frame: &[u8]) -> Result<(i32, Request), JuteError> {
    check_size(frame)?;
    let mut r = Reader::new(frame);
    let xid = r.int()?;
    let opcode = r.int()?;
    let req = request::read_request(opcode, &mut r)?;
    r.finish()?;
    Ok((xid, req))
}

/// What Apache ZooKeeper 3.8 does with a request frame that [`decode_request`] refuses. It
/// reads the header itself but leaves the body to its request processors, so most bad bodies
/// are answered with an error and the session goes on; only a frame without a whole header or a
/// bad auth packet closes the connection, and an opcode it does not know is answered
/// Unimplemented and then closed (`ZooKeeperServer.processPacket`, `PrepRequestProcessor`,
/// `FinalRequestProcessor`; checked side by side with the interop suite).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BadRequest {
    /// The record decodes but bytes follow it: ZooKeeper reads the record and ignores the rest.
    Lenient { xid: i32, request: Request },
    /// Answer `xid` with `reply` (encoded for `opcode`), then close the connection if `close`.
    Answer {
        xid: i32,
        opcode: OpCode,
        reply: Reply,
        close: bool,
    },
    /// Not a request at all: close the connection.
    Close,
}

/// Sort out a frame that `decode_request` refused with `err` (see [`BadRequest`]).
pub fn triage_request(frame: &[u8], err: &JuteError) -> BadRequest {
    use crate::proto::{KeeperError, OpResult, Response};
    if check_size(frame).is_err() {
        return BadRequest::Close;
    }
    let mut r = Reader::new(frame);
    let (Ok(xid), Ok(raw)) = (r.int(), r.int()) else {
        return BadRequest::Close;
    };
    let answer = |opcode, e: KeeperError| BadRequest::Answer {
        xid,
        opcode,
        reply: Err(e),
        close: false,
    };
    if matches!(err, JuteError::Trailing(_))
        && let Ok(request) = request::read_request(raw, &mut r.clone())
    {
        return BadRequest::Lenient { xid, request };
    }
    let Some(opcode) = OpCode::from_i32(raw) else {
        return BadRequest::Answer {
            xid,
            opcode: OpCode::Error,
            reply: Err(KeeperError::Unimplemented),
            close: true,
        };
    };
    match opcode {
        OpCode::Notification | OpCode::Error => BadRequest::Answer {
            xid,
            opcode,
            reply: Err(KeeperError::Unimplemented),
            close: true,
        },
        // decoded while the packet is read, before any request processor: a bad one closes
        OpCode::Auth => BadRequest::Close,
        // a client may not ask for the reaper's own op
        OpCode::DeleteContainer => answer(opcode, KeeperError::BadArguments),
        OpCode::Create | OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTtl if matches!(err, JuteError::BadValue { what, .. } if *what == request::UNKNOWN_CREATE_FLAGS) => {
            answer(opcode, KeeperError::BadArguments)
        }
        // The op with bad flags fails the multi as ZooKeeper's prep does: the ops before it
        // report 0, it BadArguments, the ones after RuntimeInconsistency (the ops before it are
        // taken to pass their own checks).
        OpCode::Multi => match request::multi_bad_create_flags(&mut r) {
            Some((bad, n)) => {
                let mut results = vec![OpResult::Error(0); bad];
                results.push(OpResult::Error(KeeperError::BadArguments.code()));
                results.resize(n, OpResult::Error(KeeperError::RuntimeInconsistency.code()));
                BadRequest::Answer {
                    xid,
                    opcode,
                    reply: Ok(Response::Multi(results)),
                    close: false,
                }
            }
            None => answer(opcode, KeeperError::MarshallingError),
        },
        _ => answer(opcode, KeeperError::MarshallingError),
    }
}

/// Appends a whole frame (length prefix included).
pub fn encode_connect_response(resp: &ConnectResponse, out: &mut Vec<u8>) {
    framed(out, |out| {
        put_int(out, resp.protocol_version);
        put_int(out, resp.timeout_ms);
        put_long(out, resp.session_id);
        put_buffer(out, &resp.passwd);
        if let Some(ro) = resp.read_only {
            put_bool(out, ro);
        }
    });
}

/// Appends a whole frame (length prefix included): ReplyHeader{xid, zxid, err} + body.
/// An `Err` has no body. A multi is always `Ok` here, failed or not: ZooKeeper 3.8 answers a
/// rolled-back multi with err 0 in the header and the per-op `ErrorResult`s in the body (the
/// recorded frames show it, and the Java client drops the results if the header carries an
/// error).
pub fn encode_reply(xid: i32, zxid: i64, opcode: OpCode, reply: &Reply, out: &mut Vec<u8>) {
    framed(out, |out| {
        put_int(out, xid);
        put_long(out, zxid);
        match reply {
            Ok(resp) => {
                put_int(out, 0);
                reply::put_response(out, opcode, resp);
            }
            Err(e) => put_int(out, e.code()),
        }
    });
}

/// Appends a whole notification frame: ReplyHeader{-1, -1, 0} + WatcherEvent.
pub fn encode_watch_event(event: &WatchedEvent, out: &mut Vec<u8>) {
    framed(out, |out| {
        put_int(out, NOTIFICATION_XID);
        put_long(out, -1);
        put_int(out, 0);
        reply::put_event(out, event);
    });
}

// ---- client side ----

/// Appends a whole frame (length prefix included).
pub fn encode_connect(req: &ConnectRequest, out: &mut Vec<u8>) {
    framed(out, |out| {
        put_int(out, req.protocol_version);
        put_long(out, req.last_zxid_seen);
        put_int(out, req.timeout_ms);
        put_long(out, req.session_id);
        put_buffer(out, &req.passwd);
        if let Some(ro) = req.read_only {
            put_bool(out, ro);
        }
    });
}

/// The handshake answer. Old servers leave out the trailing readOnly byte.
pub fn decode_connect_response(frame: &[u8]) -> Result<ConnectResponse, JuteError> {
    check_size(frame)?;
    let mut r = Reader::new(frame);
    let protocol_version = r.int()?;
    let timeout_ms = r.int()?;
    let session_id = r.long()?;
    let passwd = r.buffer()?;
    let read_only = if r.is_empty() { None } else { Some(r.bool()?) };
    r.finish()?;
    Ok(ConnectResponse {
        protocol_version,
        timeout_ms,
        session_id,
        passwd,
        read_only,
    })
}

/// Appends a whole frame (length prefix included): RequestHeader{xid, type} + body.
pub fn encode_request(xid: i32, request: &Request, out: &mut Vec<u8>) {
    framed(out, |out| {
        put_int(out, xid);
        put_int(out, request.opcode() as i32);
        request::put_request(out, request);
    });
}

/// ReplyHeader of a server frame: (xid, zxid, err) and the body after it.
pub fn decode_reply_header(frame: &[u8]) -> Result<(i32, i64, i32, &[u8]), JuteError> {
    check_size(frame)?;
    let mut r = Reader::new(frame);
    let xid = r.int()?;
    let zxid = r.long()?;
    let err = r.int()?;
    Ok((xid, zxid, err, r.rest()))
}

/// The body of a reply to a request of `opcode` whose header carried `err`.
///
/// A non-zero `err` has no body, with two exceptions newer servers make: a multi may carry its
/// per-op results (decoded as `Ok(Multi(..))`, the results say what failed) and a standalone
/// check may carry a Stat (ignored).
pub fn decode_reply_body(opcode: OpCode, err: i32, body: &[u8]) -> Result<Reply, JuteError> {
    let mut r = Reader::new(body);
    if err != 0 {
        if opcode == OpCode::Multi && !body.is_empty() {
            let resp = reply::read_response(opcode, &mut r)?;
            r.finish()?;
            return Ok(Ok(resp));
        }
        if opcode == OpCode::Check && body.len() == wire::STAT_LEN {
            r.rest();
        }
        r.finish()?;
        // the header's err field sits 12 bytes into the frame
        return Ok(Err(reply::keeper_error(12, err)?));
    }
    let resp = reply::read_response(opcode, &mut r)?;
    r.finish()?;
    Ok(Ok(resp))
}

/// The body of a notification (xid -1).
pub fn decode_watch_event(body: &[u8]) -> Result<WatchedEvent, JuteError> {
    let mut r = Reader::new(body);
    let event = reply::read_event(&mut r)?;
    r.finish()?;
    Ok(event)
}
