//! Golden vectors: every frame a real Apache ZooKeeper 3.8.0 ensemble and its clients (kazoo,
//! the Java client, zkCli.sh) exchanged in `golden/zk-3.8-wire-samples.jsonl` decodes, and
//! re-encodes byte for byte with the encoder of the other side.

use std::collections::{BTreeMap, BTreeSet};

use ensemble_proto::jute::{self, JuteError};
use ensemble_proto::proto::{OpCode, Request};

const SAMPLES: &str = include_str!("golden/zk-3.8-wire-samples.jsonl");

struct Frame {
    line: usize,
    client: String,
    conn: u64,
    dir: String,
    op: String,
    xid: Option<i32>,
    zxid: Option<i64>,
    err: Option<i32>,
    len: usize,
    bytes: Vec<u8>,
}

fn unhex(s: &str) -> Vec<u8> {
    s.as_bytes()
        .chunks(2)
        .map(|pair| {
            let pair = std::str::from_utf8(pair).expect("ascii");
            assert_eq!(pair.len(), 2, "odd hex length");
            u8::from_str_radix(pair, 16).expect("hex digit")
        })
        .collect()
}

fn frames() -> Vec<Frame> {
    SAMPLES
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            let v: serde_json::Value = serde_json::from_str(l).expect("json line");
            let int = |k: &str| v.get(k).and_then(|x| x.as_i64());
            Frame {
                line: i + 1,
                client: v["client"].as_str().expect("client").to_string(),
                conn: v["conn"].as_u64().expect("conn"),
                dir: v["dir"].as_str().expect("dir").to_string(),
                op: v["op"].as_str().expect("op").to_string(),
                xid: int("xid").map(|x| x as i32),
                zxid: int("zxid"),
                err: int("err").map(|x| x as i32),
                len: int("len").expect("len") as usize,
                bytes: unhex(v["hex"].as_str().expect("hex")),
            }
        })
        .collect()
}

/// The recorder's names for opcodes (ZooKeeper's `Request.op2String` spelling).
fn op_name(op: OpCode) -> &'static str {
    match op {
        OpCode::Create => "create",
        OpCode::Create2 => "create2",
        OpCode::CreateContainer => "createContainer",
        OpCode::CreateTtl => "createTTL",
        OpCode::Delete => "delete",
        OpCode::Exists => "exists",
        OpCode::GetData => "getData",
        OpCode::SetData => "setData",
        OpCode::GetAcl => "getACL",
        OpCode::SetAcl => "setACL",
        OpCode::GetChildren => "getChildren",
        OpCode::GetChildren2 => "getChildren2",
        OpCode::Sync => "sync",
        OpCode::Check => "check",
        OpCode::Multi => "multi",
        OpCode::MultiRead => "multiRead",
        OpCode::GetEphemerals => "getEphemerals",
        OpCode::GetAllChildrenNumber => "getAllChildrenNumber",
        OpCode::AddWatch => "addWatch",
        OpCode::CheckWatches => "checkWatches",
        OpCode::RemoveWatches => "removeWatches",
        OpCode::SetWatches => "setWatches",
        OpCode::SetWatches2 => "setWatches2",
        OpCode::Auth => "auth",
        OpCode::WhoAmI => "whoAmI",
        OpCode::Ping => "ping",
        OpCode::CloseSession => "closeSession",
        _ => "?",
    }
}

/// Strips and checks the 4-byte length prefix an encoder wrote.
fn body(encoded: &[u8]) -> &[u8] {
    assert!(encoded.len() >= 4);
    let len = jute::frame_len([encoded[0], encoded[1], encoded[2], encoded[3]]).expect("prefix");
    assert_eq!(len, encoded.len() - 4, "length prefix");
    &encoded[4..]
}

#[test]
fn every_recorded_frame_decodes_and_reencodes_byte_identically() {
    let frames = frames();
    assert!(frames.len() >= 170, "sample file shrank: {}", frames.len());
    // (conn, xid) -> opcode of the request, to decode the reply
    let mut pending: BTreeMap<(u64, i32), OpCode> = BTreeMap::new();
    let mut seen_requests = BTreeSet::new();
    let mut seen_replies = BTreeSet::new();
    let mut errors_seen = BTreeSet::new();
    let mut checked = 0;
    for f in &frames {
        let ctx = format!(
            "line {} ({} conn {} {} {})",
            f.line, f.client, f.conn, f.dir, f.op
        );
        assert_eq!(f.len, f.bytes.len(), "{ctx}: len field");
        let mut out = Vec::new();
        match (f.dir.as_str(), f.op.as_str()) {
            ("c2s", "connect") => {
                let req = jute::decode_connect(&f.bytes).unwrap_or_else(|e| panic!("{ctx}: {e}"));
                jute::encode_connect(&req, &mut out);
            }
            ("s2c", "connect-response") => {
                let resp = jute::decode_connect_response(&f.bytes)
                    .unwrap_or_else(|e| panic!("{ctx}: {e}"));
                jute::encode_connect_response(&resp, &mut out);
            }
            ("c2s", _) => {
                let (xid, req) =
                    jute::decode_request(&f.bytes).unwrap_or_else(|e| panic!("{ctx}: {e}"));
                assert_eq!(Some(xid), f.xid, "{ctx}: xid");
                assert_eq!(op_name(req.opcode()), f.op, "{ctx}: opcode");
                pending.insert((f.conn, xid), req.opcode());
                seen_requests.insert(f.op.clone());
                jute::encode_request(xid, &req, &mut out);
            }
            ("s2c", "watch-event") => {
                let (xid, zxid, err, rest) =
                    jute::decode_reply_header(&f.bytes).unwrap_or_else(|e| panic!("{ctx}: {e}"));
                assert_eq!((xid, zxid, err), (-1, -1, 0), "{ctx}: notification header");
                let ev = jute::decode_watch_event(rest).unwrap_or_else(|e| panic!("{ctx}: {e}"));
                jute::encode_watch_event(&ev, &mut out);
            }
            ("s2c", _) => {
                let (xid, zxid, err, rest) =
                    jute::decode_reply_header(&f.bytes).unwrap_or_else(|e| panic!("{ctx}: {e}"));
                assert_eq!(
                    (Some(xid), Some(zxid), Some(err)),
                    (f.xid, f.zxid, f.err),
                    "{ctx}"
                );
                let opcode = pending
                    .remove(&(f.conn, xid))
                    .unwrap_or_else(|| panic!("{ctx}: reply to no request"));
                assert_eq!(
                    format!("{}-response", op_name(opcode)),
                    f.op,
                    "{ctx}: matched op"
                );
                let reply = jute::decode_reply_body(opcode, err, rest)
                    .unwrap_or_else(|e| panic!("{ctx}: {e}"));
                if let Err(e) = &reply {
                    errors_seen.insert(e.code());
                }
                seen_replies.insert(f.op.clone());
                jute::encode_reply(xid, zxid, opcode, &reply, &mut out);
            }
            _ => panic!("{ctx}: unknown direction"),
        }
        assert_eq!(body(&out), &f.bytes[..], "{ctx}: re-encoding differs");
        checked += 1;
    }
    assert_eq!(checked, frames.len());
    assert!(pending.is_empty(), "requests without replies: {pending:?}");
    // the sample covers these; a regression in the file would silently weaken the test
    for op in [
        "create",
        "create2",
        "createContainer",
        "createTTL",
        "delete",
        "exists",
        "getData",
        "setData",
        "getACL",
        "setACL",
        "getChildren",
        "getChildren2",
        "sync",
        "multi",
        "multiRead",
        "auth",
        "addWatch",
        "checkWatches",
        "getEphemerals",
        "getAllChildrenNumber",
        "whoAmI",
        "closeSession",
    ] {
        assert!(seen_requests.contains(op), "no {op} in the samples");
    }
    for code in [-101, -110, -103, -111, -108] {
        assert!(
            errors_seen.contains(&code),
            "no error {code} in the samples"
        );
    }
    assert!(seen_replies.len() >= 20);
}

#[test]
fn failed_multi_has_ok_header_and_error_results() {
    use ensemble_proto::proto::{KeeperError, OpResult, Response};
    let frames = frames();
    // java conn 2 xid 11: create /samples/m2 then check /samples version 0 -> BadVersion
    let f = frames
        .iter()
        .find(|f| f.conn == 2 && f.dir == "s2c" && f.xid == Some(11))
        .expect("rolled back multi");
    let (_, _, err, rest) = jute::decode_reply_header(&f.bytes).expect("header");
    assert_eq!(
        err, 0,
        "ZooKeeper 3.8 puts 0 in the header of a failed multi"
    );
    let reply = jute::decode_reply_body(OpCode::Multi, err, rest).expect("body");
    assert_eq!(
        reply,
        Ok(Response::Multi(vec![
            OpResult::Error(0),
            OpResult::Error(KeeperError::BadVersion.code())
        ]))
    );
}

#[test]
fn connect_without_read_only_byte_round_trips() {
    let frames = frames();
    let f = frames.iter().find(|f| f.op == "connect").expect("connect");
    let short = &f.bytes[..f.bytes.len() - 1];
    let req = jute::decode_connect(short).expect("old client handshake");
    assert_eq!(req.read_only, None);
    let mut out = Vec::new();
    jute::encode_connect(&req, &mut out);
    assert_eq!(body(&out), short);

    let f = frames
        .iter()
        .find(|f| f.op == "connect-response")
        .expect("connect-response");
    let short = &f.bytes[..f.bytes.len() - 1];
    let resp = jute::decode_connect_response(short).expect("old server handshake");
    assert_eq!(resp.read_only, None);
    let mut out = Vec::new();
    jute::encode_connect_response(&resp, &mut out);
    assert_eq!(body(&out), short);
}

#[test]
fn truncations_and_trailing_bytes_of_recorded_requests_are_refused() {
    for f in frames()
        .iter()
        .filter(|f| f.dir == "c2s" && f.op != "connect")
    {
        for cut in 0..f.bytes.len() {
            let r = jute::decode_request(&f.bytes[..cut]);
            assert!(
                r.is_err(),
                "line {}: prefix of {cut} bytes decoded: {r:?}",
                f.line
            );
        }
        let mut long = f.bytes.clone();
        long.push(0);
        assert_eq!(
            jute::decode_request(&long),
            Err(JuteError::Trailing(1)),
            "line {}",
            f.line
        );
    }
}

#[test]
fn reconfig_round_trips_with_null_parts_as_zookeeper_admin_sends_them() {
    let req = Request::Reconfig {
        joining: "server.4=h:1:2;3".into(),
        leaving: String::new(),
        new_members: String::new(),
        from_config: 0x1_0000_0002,
    };
    let mut out = Vec::new();
    jute::encode_request(7, &req, &mut out);
    let body = &out[4 + 8..];
    // joining, then leaving and newMembers null (-1), then the config id
    let mut want = 16i32.to_be_bytes().to_vec();
    want.extend_from_slice(b"server.4=h:1:2;3");
    want.extend_from_slice(&(-1i32).to_be_bytes());
    want.extend_from_slice(&(-1i32).to_be_bytes());
    want.extend_from_slice(&0x1_0000_0002i64.to_be_bytes());
    assert_eq!(body, &want[..]);
    assert_eq!(jute::decode_request(&out[4..]), Ok((7, req)));
}

#[test]
fn unknown_opcodes_are_refused() {
    for op in [10, 20, 23, 99, 102, 108, -10, -1, 0, i32::MAX, i32::MIN] {
        let mut frame = vec![0, 0, 0, 1];
        frame.extend_from_slice(&i32::to_be_bytes(op));
        frame.extend_from_slice(&[0, 0, 0, 1, b'/', 0]);
        assert_eq!(
            jute::decode_request(&frame),
            Err(JuteError::UnknownOpcode(op))
        );
    }
    // a write op inside a multiRead and a read op inside a multi
    let mut out = Vec::new();
    jute::encode_request(
        1,
        &Request::MultiRead(vec![ensemble_proto::proto::ReadOp::GetData {
            path: "/a".into(),
        }]),
        &mut out,
    );
    out[4 + 7] = 14; // retype the frame as a multi
    assert!(matches!(
        jute::decode_request(&out[4..]),
        Err(JuteError::BadValue { .. })
    ));
}

#[test]
fn oversize_and_negative_lengths_are_refused() {
    assert!(jute::frame_len([0xff, 0xff, 0xff, 0xff]).is_err());
    assert!(jute::frame_len([0x00, 0x10, 0x00, 0x00]).is_err());
    assert_eq!(
        jute::frame_len([0x00, 0x0f, 0xff, 0xff]),
        Ok(jute::MAX_BUFFER)
    );
    // getData whose path claims 2 GiB, -2, and more than the frame holds
    for len in [i32::MAX, -2, 100] {
        let mut frame = vec![0, 0, 0, 1, 0, 0, 0, 4];
        frame.extend_from_slice(&len.to_be_bytes());
        frame.extend_from_slice(b"/abc\0");
        assert!(
            matches!(
                jute::decode_request(&frame),
                Err(JuteError::BadLength { .. })
            ),
            "{len}"
        );
    }
    // a vector count far beyond what the frame could hold
    let mut frame = vec![0, 0, 0, 1, 0, 0, 0, 101];
    frame.extend_from_slice(&[0; 8]);
    frame.extend_from_slice(&0x7fff_ffffi32.to_be_bytes());
    assert!(matches!(
        jute::decode_request(&frame),
        Err(JuteError::BadLength { .. })
    ));
    // a frame over MAX_BUFFER
    let big = vec![0u8; jute::MAX_BUFFER + 1];
    assert!(matches!(
        jute::decode_request(&big),
        Err(JuteError::BadLength { .. })
    ));
}

/// What each kind of refused request gets, as Apache ZooKeeper 3.8 answers it (probed side by
/// side over the client port): most are answered and the session goes on.
#[test]
fn refused_requests_are_answered_as_zookeeper_answers_them() {
    use ensemble_proto::jute::BadRequest;
    use ensemble_proto::proto::{KeeperError, OpResult, Response};
    fn frame(xid: i32, op: i32, body: &[u8]) -> Vec<u8> {
        let mut f = xid.to_be_bytes().to_vec();
        f.extend_from_slice(&op.to_be_bytes());
        f.extend_from_slice(body);
        f
    }
    fn s(v: &str) -> Vec<u8> {
        let mut b = (v.len() as i32).to_be_bytes().to_vec();
        b.extend_from_slice(v.as_bytes());
        b
    }
    fn triage(f: &[u8]) -> BadRequest {
        let e = jute::decode_request(f).expect_err("refused");
        jute::triage_request(f, &e)
    }
    let answer = |xid, opcode, e: KeeperError, close| BadRequest::Answer {
        xid,
        opcode,
        reply: Err(e),
        close,
    };
    // an opcode ZooKeeper does not know: Unimplemented, then the connection closes
    assert_eq!(
        triage(&frame(7, 999, &[])),
        answer(7, OpCode::Error, KeeperError::Unimplemented, true)
    );
    // create flags that name no mode: BadArguments
    let world_acl = [
        &1i32.to_be_bytes()[..],
        &31i32.to_be_bytes(),
        &s("world"),
        &s("anyone"),
    ]
    .concat();
    let create = |flags: i32| [&s("/m")[..], &s(""), &world_acl, &flags.to_be_bytes()].concat();
    assert_eq!(
        triage(&frame(3, 15, &create(7))),
        answer(3, OpCode::Create2, KeeperError::BadArguments, false)
    );
    // in a multi: that op fails the multi
    let mut multi = Vec::new();
    for flags in [0, 7, 0] {
        multi.extend_from_slice(&1i32.to_be_bytes());
        multi.push(0);
        multi.extend_from_slice(&(-1i32).to_be_bytes());
        multi.extend_from_slice(&create(flags));
    }
    multi.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 1, 0xff, 0xff, 0xff, 0xff]);
    assert_eq!(
        triage(&frame(4, 14, &multi)),
        BadRequest::Answer {
            xid: 4,
            opcode: OpCode::Multi,
            reply: Ok(Response::Multi(vec![
                OpResult::Error(0),
                OpResult::Error(KeeperError::BadArguments.code()),
                OpResult::Error(KeeperError::RuntimeInconsistency.code()),
            ])),
            close: false,
        }
    );
    // a reconfig without its config id, a truncated body or an unknown watch mode:
    // MarshallingError (a whole reconfig decodes; reconfigEnabled is the server's to check)
    let reconfig = [&s("")[..], &s(""), &s("")].concat();
    assert_eq!(
        triage(&frame(5, 16, &reconfig)),
        answer(5, OpCode::Reconfig, KeeperError::MarshallingError, false)
    );
    assert_eq!(
        triage(&frame(6, 4, &s("/"))),
        answer(6, OpCode::GetData, KeeperError::MarshallingError, false)
    );
    let add_watch = [&s("/")[..], &7i32.to_be_bytes()].concat();
    assert_eq!(
        triage(&frame(8, 106, &add_watch)),
        answer(8, OpCode::AddWatch, KeeperError::MarshallingError, false)
    );
    // bytes after a whole record are ignored
    let exists = [&s("/")[..], &[0], &[1, 2, 3]].concat();
    assert_eq!(
        triage(&frame(9, 3, &exists)),
        BadRequest::Lenient {
            xid: 9,
            request: Request::Exists {
                path: "/".into(),
                watch: false
            }
        }
    );
    // no whole header, or a bad auth packet: the connection closes
    assert_eq!(triage(&[0, 0, 0, 1, 0, 0]), BadRequest::Close);
    assert_eq!(triage(&frame(-4, 100, &[0, 0])), BadRequest::Close);
}
