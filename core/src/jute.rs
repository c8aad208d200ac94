//! The client wire protocol's byte encoding (jute), both directions. Pure: bytes in, values out.
//! Frames are 4-byte big-endian length + record; these functions take and give the record only
//! (the length prefix is the transport's), except where noted.
//!
//! SKELETON: signatures are the contract the node relies on; bodies are being written.

use crate::proto::{ConnectRequest, ConnectResponse, OpCode, Reply, Request, WatchedEvent};

/// `jute.maxbuffer` default: 0xfffff.
pub const MAX_BUFFER: usize = 0xfffff;

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

// ---- server side ----

/// The handshake record (no header).
pub fn decode_connect(_frame: &[u8]) -> Result<ConnectRequest, JuteError> {
    todo!()
}
/// A request record: header + body. Returns the xid and the request (its opcode is
/// `request.opcode()`).
pub fn decode_request(_frame: &[u8]) -> Result<(i32, Request), JuteError> {
    todo!()
}
/// Appends a whole frame (length prefix included).
pub fn encode_connect_response(_r: &ConnectResponse, _out: &mut Vec<u8>) {
    todo!()
}
/// Appends a whole frame (length prefix included): ReplyHeader{xid, zxid, err} + body.
pub fn encode_reply(_xid: i32, _zxid: i64, _opcode: OpCode, _reply: &Reply, _out: &mut Vec<u8>) {
    todo!()
}
/// Appends a whole notification frame (xid -1).
pub fn encode_watch_event(_event: &WatchedEvent, _out: &mut Vec<u8>) {
    todo!()
}

// ---- client side ----

/// Appends a whole frame (length prefix included).
pub fn encode_connect(_r: &ConnectRequest, _out: &mut Vec<u8>) {
    todo!()
}
pub fn decode_connect_response(_frame: &[u8]) -> Result<ConnectResponse, JuteError> {
    todo!()
}
/// Appends a whole frame (length prefix included): RequestHeader{xid, type} + body.
pub fn encode_request(_xid: i32, _request: &Request, _out: &mut Vec<u8>) {
    todo!()
}
/// ReplyHeader of a server frame: (xid, zxid, err) and the body after it.
pub fn decode_reply_header(_frame: &[u8]) -> Result<(i32, i64, i32, &[u8]), JuteError> {
    todo!()
}
/// The body of a reply to a request of `opcode` whose header carried `err`.
pub fn decode_reply_body(_opcode: OpCode, _err: i32, _body: &[u8]) -> Result<Reply, JuteError> {
    todo!()
}
/// The body of a notification (xid -1).
pub fn decode_watch_event(_body: &[u8]) -> Result<WatchedEvent, JuteError> {
    todo!()
}
