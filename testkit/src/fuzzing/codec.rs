//! The codec harnesses: jute frames both ways, tree snapshots, and peer messages a fresh
//! server must survive.

use ensemble_core::config::{Config, LearnerType};
use ensemble_core::effect::Ready;
use ensemble_core::peer::PeerMsg;
use ensemble_core::server::{Event, Recovered, Server};
use ensemble_core::tree::{DataTree, TreeOptions};
use ensemble_core::txn::ServerId;
use ensemble_proto::jute;
use ensemble_proto::proto::OpCode;
use std::collections::BTreeMap;

/// Client → server frames (without the 4-byte length): the handshake and every request.
/// Whatever decodes must re-encode to something that decodes to the same value.
pub fn jute_request(data: &[u8]) {
    let _ = jute::peek_request_header(data);
    if let Ok(c) = jute::decode_connect(data) {
        let mut out = Vec::new();
        jute::encode_connect(&c, &mut out);
        assert_eq!(jute::decode_connect(&out[4..]).as_ref(), Ok(&c), "connect");
    }
    match jute::decode_request(data) {
        Ok((xid, req)) => {
            let mut out = Vec::new();
            jute::encode_request(xid, &req, &mut out);
            assert_eq!(
                jute::decode_request(&out[4..]),
                Ok((xid, req)),
                "request roundtrip"
            );
        }
        // What the node does with a frame that does not decode: what it answers must be a
        // reply a client can read for that opcode; what it runs anyway must be a request.
        Err(e) => match jute::triage_request(data, &e) {
            jute::BadRequest::Lenient { xid, request } => {
                let mut out = Vec::new();
                jute::encode_request(xid, &request, &mut out);
                assert_eq!(
                    jute::decode_request(&out[4..]),
                    Ok((xid, request)),
                    "lenient request roundtrip"
                );
            }
            jute::BadRequest::Answer {
                xid, opcode, reply, ..
            } => {
                let mut out = Vec::new();
                jute::encode_reply(xid, 7, opcode, &reply, &mut out);
                let (x, z, err, body) = jute::decode_reply_header(&out[4..]).expect("own header");
                assert_eq!((x, z), (xid, 7));
                assert_eq!(
                    jute::decode_reply_body(opcode, err, body),
                    Ok(reply),
                    "answer to a bad {opcode:?} request"
                );
            }
            jute::BadRequest::Close => {}
        },
    }
    if data.len() >= 4 {
        let _ = jute::frame_len([data[0], data[1], data[2], data[3]]);
    }
}

/// Every opcode a client can see a reply for, indexed by the first byte of a reply input.
pub const REPLY_OPCODES: &[OpCode] = &[
    OpCode::Create,
    OpCode::Delete,
    OpCode::Exists,
    OpCode::GetData,
    OpCode::SetData,
    OpCode::GetAcl,
    OpCode::SetAcl,
    OpCode::GetChildren,
    OpCode::Sync,
    OpCode::Ping,
    OpCode::GetChildren2,
    OpCode::Check,
    OpCode::Multi,
    OpCode::Create2,
    OpCode::Reconfig,
    OpCode::CheckWatches,
    OpCode::RemoveWatches,
    OpCode::CreateContainer,
    OpCode::DeleteContainer,
    OpCode::CreateTtl,
    OpCode::MultiRead,
    OpCode::Auth,
    OpCode::SetWatches,
    OpCode::Sasl,
    OpCode::GetEphemerals,
    OpCode::GetAllChildrenNumber,
    OpCode::SetWatches2,
    OpCode::AddWatch,
    OpCode::WhoAmI,
    OpCode::CreateSession,
    OpCode::CloseSession,
    OpCode::Error,
    OpCode::Notification,
];

/// Server → client frames, as the client decodes them. Input: one byte choosing what the
/// client expects (a reply to `REPLY_OPCODES[b]`, a handshake answer or a notification), then
/// the frame without its length.
pub fn jute_reply(data: &[u8]) {
    let Some((sel, frame)) = data.split_first() else {
        return;
    };
    let sel = *sel as usize;
    if sel == 0xfe {
        if let Ok(c) = jute::decode_connect_response(frame) {
            let mut out = Vec::new();
            jute::encode_connect_response(&c, &mut out);
            assert_eq!(
                jute::decode_connect_response(&out[4..]).as_ref(),
                Ok(&c),
                "connect response"
            );
        }
        return;
    }
    let Ok((xid, zxid, err, body)) = jute::decode_reply_header(frame) else {
        return;
    };
    if sel == 0xff || xid == jute::NOTIFICATION_XID {
        if let Ok(ev) = jute::decode_watch_event(body) {
            let mut out = Vec::new();
            jute::encode_watch_event(&ev, &mut out);
            let (_, _, _, b2) = jute::decode_reply_header(&out[4..]).expect("own header");
            assert_eq!(jute::decode_watch_event(b2), Ok(ev), "watch event");
        }
        return;
    }
    let opcode = REPLY_OPCODES[sel % REPLY_OPCODES.len()];
    if let Ok(reply) = jute::decode_reply_body(opcode, err, body) {
        let mut out = Vec::new();
        jute::encode_reply(xid, zxid, opcode, &reply, &mut out);
        let (x2, z2, e2, b2) = jute::decode_reply_header(&out[4..]).expect("own header");
        assert_eq!((x2, z2), (xid, zxid));
        assert_eq!(
            jute::decode_reply_body(opcode, e2, b2),
            Ok(reply),
            "reply roundtrip for {opcode:?}"
        );
    }
}

/// `DataTree::from_snapshot` on arbitrary bytes: never panics; what loads is consistent and
/// survives a second snapshot → load with the same digest.
pub fn tree_snapshot(data: &[u8]) {
    for extended_types in [true, false] {
        let opts = TreeOptions {
            extended_types,
            auth_providers: Default::default(),
            plant: None,
        };
        let Ok(tree) = DataTree::from_snapshot(data, opts) else {
            continue;
        };
        if let Err(e) = tree.check_consistency() {
            panic!("a loaded snapshot is inconsistent: {e}");
        }
        let again = tree.to_snapshot();
        let tree2 = DataTree::from_snapshot(&again, opts).expect("own snapshot loads");
        assert_eq!(tree.digest(), tree2.digest(), "snapshot roundtrip digest");
        assert_eq!(tree2.to_snapshot(), again, "snapshot bytes are canonical");
    }
}

/// A bincode `PeerMsg` (the node's peer framing) decoded and fed to a fresh server that is
/// looking for a leader: a peer may be buggy or from another build, and the core must not panic
/// on a message it did not expect. Returns whether it decoded.
pub fn peer_msg_into_server(msg: PeerMsg, from: ServerId) {
    let mut members = BTreeMap::new();
    for id in 1..=3 {
        members.insert(id, LearnerType::Participant);
    }
    let cfg = Config::new(1, members);
    let Ok(mut s) = Server::new(cfg, Recovered::default(), 1_000_000) else {
        return;
    };
    s.handle_ready(1_000_000, Event::Peer { from, msg }, &mut Ready::new());
}
