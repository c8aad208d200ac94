//! Property tests: any request or reply the encoders write decodes back to itself, and no byte
//! string makes a decoder panic.

use ensemble_proto::jute;
use ensemble_proto::proto::*;
use proptest::collection::vec;
use proptest::prelude::*;

fn path() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("/".to_string()),
        "(/[a-z0-9é_.-]{1,8}){1,4}",
        ".{0,12}"
    ]
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..40)
}

fn stat() -> impl Strategy<Value = Stat> {
    (
        (any::<i64>(), any::<i64>(), any::<i64>(), any::<i64>()),
        (any::<i32>(), any::<i32>(), any::<i32>(), any::<i64>()),
        (any::<i32>(), any::<i32>(), any::<i64>()),
    )
        .prop_map(
            |((czxid, mzxid, ctime, mtime), (version, cversion, aversion, eo), (dl, nc, pz))| {
                Stat {
                    czxid,
                    mzxid,
                    ctime,
                    mtime,
                    version,
                    cversion,
                    aversion,
                    ephemeral_owner: eo,
                    data_length: dl,
                    num_children: nc,
                    pzxid: pz,
                }
            },
        )
}

fn acls() -> impl Strategy<Value = Vec<Acl>> {
    vec(
        (any::<i32>(), "[a-z]{0,8}", ".{0,16}").prop_map(|(perms, scheme, id)| Acl {
            perms,
            id: Id { scheme, id },
        }),
        0..4,
    )
}

fn create_mode() -> impl Strategy<Value = CreateMode> {
    (0i32..7).prop_map(|f| CreateMode::from_flags(f).expect("0..7 are modes"))
}

fn create_op() -> impl Strategy<Value = CreateOp> {
    prop_oneof![
        Just(CreateOp::Create),
        Just(CreateOp::Create2),
        Just(CreateOp::Container),
        Just(CreateOp::Ttl)
    ]
}

/// (op, path, data, acl, mode, ttl) with ttl 0 unless the op carries one.
#[allow(clippy::type_complexity)]
fn create_fields() -> impl Strategy<Value = (CreateOp, String, Vec<u8>, Vec<Acl>, CreateMode, i64)>
{
    (
        create_op(),
        path(),
        bytes(),
        acls(),
        create_mode(),
        any::<i64>(),
    )
        .prop_map(|(op, path, data, acl, mode, ttl)| {
            let ttl = if op == CreateOp::Ttl { ttl } else { 0 };
            (op, path, data, acl, mode, ttl)
        })
}

fn multi_op() -> impl Strategy<Value = MultiOp> {
    prop_oneof![
        create_fields().prop_map(|(op, path, data, acl, mode, ttl)| MultiOp::Create {
            op,
            path,
            data,
            acl,
            mode,
            ttl
        }),
        (path(), any::<i32>()).prop_map(|(path, version)| MultiOp::Delete { path, version }),
        (path(), bytes(), any::<i32>()).prop_map(|(path, data, version)| MultiOp::SetData {
            path,
            data,
            version
        }),
        (path(), any::<i32>()).prop_map(|(path, version)| MultiOp::Check { path, version }),
    ]
}

fn watcher_type() -> impl Strategy<Value = WatcherType> {
    (1i32..6).prop_map(|v| WatcherType::from_i32(v).expect("1..6 are watcher types"))
}

fn strings() -> impl Strategy<Value = Vec<String>> {
    vec(path(), 0..4)
}

fn request() -> impl Strategy<Value = Request> {
    prop_oneof![
        create_fields().prop_map(|(op, path, data, acl, mode, ttl)| Request::Create {
            op,
            path,
            data,
            acl,
            mode,
            ttl
        }),
        (path(), any::<i32>()).prop_map(|(path, version)| Request::Delete { path, version }),
        (path(), any::<bool>()).prop_map(|(path, watch)| Request::Exists { path, watch }),
        (path(), any::<bool>()).prop_map(|(path, watch)| Request::GetData { path, watch }),
        (path(), bytes(), any::<i32>()).prop_map(|(path, data, version)| Request::SetData {
            path,
            data,
            version
        }),
        path().prop_map(|path| Request::GetAcl { path }),
        (path(), acls(), any::<i32>()).prop_map(|(path, acl, version)| Request::SetAcl {
            path,
            acl,
            version
        }),
        (path(), any::<bool>()).prop_map(|(path, watch)| Request::GetChildren { path, watch }),
        (path(), any::<bool>()).prop_map(|(path, watch)| Request::GetChildren2 { path, watch }),
        path().prop_map(|path| Request::Sync { path }),
        (path(), any::<i32>()).prop_map(|(path, version)| Request::Check { path, version }),
        vec(multi_op(), 0..5).prop_map(Request::Multi),
        vec(
            prop_oneof![
                path().prop_map(|path| ReadOp::GetChildren { path }),
                path().prop_map(|path| ReadOp::GetData { path }),
            ],
            0..5
        )
        .prop_map(Request::MultiRead),
        path().prop_map(|prefix| Request::GetEphemerals { prefix }),
        path().prop_map(|path| Request::GetAllChildrenNumber { path }),
        (path(), any::<bool>()).prop_map(|(path, r)| Request::AddWatch {
            path,
            mode: if r {
                AddWatchMode::PersistentRecursive
            } else {
                AddWatchMode::Persistent
            }
        }),
        (path(), watcher_type()).prop_map(|(path, kind)| Request::CheckWatches { path, kind }),
        (path(), watcher_type()).prop_map(|(path, kind)| Request::RemoveWatches { path, kind }),
        (
            any::<i64>(),
            strings(),
            strings(),
            strings(),
            strings(),
            strings(),
            any::<bool>()
        )
            .prop_map(|(relative_zxid, data, exist, child, p, pr, v2)| {
                Request::SetWatches {
                    relative_zxid,
                    data,
                    exist,
                    child,
                    persistent: if v2 { p } else { Vec::new() },
                    persistent_recursive: if v2 { pr } else { Vec::new() },
                    v2,
                }
            }),
        ("[a-z]{0,8}", bytes()).prop_map(|(scheme, auth)| Request::Auth { scheme, auth }),
        Just(Request::WhoAmI),
        Just(Request::Ping),
        Just(Request::CloseSession),
    ]
}

const ALL_ERRORS: [i32; 31] = [
    -1, -2, -3, -4, -5, -6, -7, -8, -12, -13, -14, -100, -101, -102, -103, -108, -110, -111, -112,
    -113, -114, -115, -118, -119, -120, -121, -122, -123, -124, -125, -127,
];

fn keeper_error() -> impl Strategy<Value = KeeperError> {
    proptest::sample::select(&ALL_ERRORS[..])
        .prop_map(|c| KeeperError::from_code(c).expect("listed codes are known"))
}

fn op_result() -> impl Strategy<Value = OpResult> {
    prop_oneof![
        (path(), proptest::option::of(stat()))
            .prop_map(|(path, stat)| OpResult::Create { path, stat }),
        Just(OpResult::Delete),
        stat().prop_map(OpResult::SetData),
        Just(OpResult::Check),
        any::<i32>().prop_map(OpResult::Error),
    ]
}

fn read_result() -> impl Strategy<Value = ReadResult> {
    prop_oneof![
        strings().prop_map(ReadResult::GetChildren),
        (bytes(), stat()).prop_map(|(data, stat)| ReadResult::GetData { data, stat }),
        keeper_error().prop_map(ReadResult::Error),
    ]
}

/// A successful response together with an opcode it answers.
fn response() -> impl Strategy<Value = (OpCode, Response)> {
    prop_oneof![
        path().prop_map(|path| (OpCode::Create, Response::Create { path })),
        (
            prop_oneof![
                Just(OpCode::Create2),
                Just(OpCode::CreateContainer),
                Just(OpCode::CreateTtl)
            ],
            path(),
            stat()
        )
            .prop_map(|(op, path, stat)| (op, Response::Create2 { path, stat })),
        (
            prop_oneof![
                Just(OpCode::Exists),
                Just(OpCode::SetData),
                Just(OpCode::SetAcl),
                Just(OpCode::Check)
            ],
            stat()
        )
            .prop_map(|(op, stat)| (op, Response::Stat(stat))),
        (bytes(), stat())
            .prop_map(|(data, stat)| (OpCode::GetData, Response::GetData { data, stat })),
        (acls(), stat()).prop_map(|(acl, stat)| (OpCode::GetAcl, Response::GetAcl { acl, stat })),
        strings().prop_map(|children| (OpCode::GetChildren, Response::GetChildren { children })),
        (strings(), stat()).prop_map(|(children, stat)| (
            OpCode::GetChildren2,
            Response::GetChildren2 { children, stat }
        )),
        path().prop_map(|path| (OpCode::Sync, Response::Sync { path })),
        vec(op_result(), 0..5).prop_map(|r| (OpCode::Multi, Response::Multi(r))),
        vec(read_result(), 0..5).prop_map(|r| (OpCode::MultiRead, Response::MultiRead(r))),
        strings().prop_map(|paths| (OpCode::GetEphemerals, Response::GetEphemerals { paths })),
        any::<i32>().prop_map(|n| (OpCode::GetAllChildrenNumber, Response::AllChildrenNumber(n))),
        vec(("[a-z]{0,6}", ".{0,10}"), 0..3).prop_map(|v| (
            OpCode::WhoAmI,
            Response::WhoAmI(
                v.into_iter()
                    .map(|(auth_scheme, user)| ClientInfo { auth_scheme, user })
                    .collect()
            )
        )),
        proptest::sample::select(vec![
            OpCode::Delete,
            OpCode::Check,
            OpCode::AddWatch,
            OpCode::CheckWatches,
            OpCode::RemoveWatches,
            OpCode::SetWatches,
            OpCode::SetWatches2,
            OpCode::Auth,
            OpCode::Ping,
            OpCode::CloseSession,
        ])
        .prop_map(|op| (op, Response::Empty)),
    ]
}

fn reply() -> impl Strategy<Value = (OpCode, Reply)> {
    prop_oneof![
        4 => response().prop_map(|(op, r)| (op, Ok(r))),
        1 => (response(), keeper_error()).prop_map(|((op, _), e)| (op, Err(e))),
    ]
}

fn strip(out: &[u8]) -> &[u8] {
    let len = jute::frame_len([out[0], out[1], out[2], out[3]]).expect("prefix within bounds");
    assert_eq!(len + 4, out.len());
    &out[4..]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn requests_round_trip(xid in any::<i32>(), req in request()) {
        let mut out = Vec::new();
        jute::encode_request(xid, &req, &mut out);
        let (xid2, req2) = jute::decode_request(strip(&out)).expect("decodes");
        prop_assert_eq!(xid2, xid);
        prop_assert_eq!(req2, req);
    }

    #[test]
    fn replies_round_trip(xid in any::<i32>(), zxid in any::<i64>(), (op, reply) in reply()) {
        let mut out = Vec::new();
        jute::encode_reply(xid, zxid, op, &reply, &mut out);
        let (xid2, zxid2, err, body) = jute::decode_reply_header(strip(&out)).expect("header");
        prop_assert_eq!((xid2, zxid2), (xid, zxid));
        let back = jute::decode_reply_body(op, err, body).expect("body");
        prop_assert_eq!(back, reply);
    }

    #[test]
    fn handshakes_round_trip(
        pv in any::<i32>(), z in any::<i64>(), t in any::<i32>(), s in any::<i64>(),
        pw in bytes(), ro in proptest::option::of(any::<bool>()),
    ) {
        let req = ConnectRequest {
            protocol_version: pv, last_zxid_seen: z, timeout_ms: t, session_id: s,
            passwd: pw.clone(), read_only: ro,
        };
        let mut out = Vec::new();
        jute::encode_connect(&req, &mut out);
        prop_assert_eq!(jute::decode_connect(strip(&out)).expect("connect"), req);
        let resp = ConnectResponse {
            protocol_version: pv, timeout_ms: t, session_id: s, passwd: pw, read_only: ro,
        };
        let mut out = Vec::new();
        jute::encode_connect_response(&resp, &mut out);
        prop_assert_eq!(jute::decode_connect_response(strip(&out)).expect("response"), resp);
    }

    #[test]
    fn watch_events_round_trip(kind in 0usize..8, state in 0usize..7, path in path()) {
        let kinds = [
            EventType::None, EventType::NodeCreated, EventType::NodeDeleted,
            EventType::NodeDataChanged, EventType::NodeChildrenChanged,
            EventType::DataWatchRemoved, EventType::ChildWatchRemoved,
            EventType::PersistentWatchRemoved,
        ];
        let states = [
            KeeperState::Disconnected, KeeperState::SyncConnected, KeeperState::AuthFailed,
            KeeperState::ConnectedReadOnly, KeeperState::SaslAuthenticated,
            KeeperState::Expired, KeeperState::Closed,
        ];
        let ev = WatchedEvent { kind: kinds[kind], state: states[state], path };
        let mut out = Vec::new();
        jute::encode_watch_event(&ev, &mut out);
        let (xid, zxid, err, body) = jute::decode_reply_header(strip(&out)).expect("header");
        prop_assert_eq!((xid, zxid, err), (-1, -1, 0));
        prop_assert_eq!(jute::decode_watch_event(body).expect("event"), ev);
    }

    /// Arbitrary bytes: every decoder answers, none panics.
    #[test]
    fn random_bytes_never_panic(b in vec(any::<u8>(), 0..300), op in any::<i32>(), err in any::<i32>()) {
        let _ = jute::decode_connect(&b);
        let _ = jute::decode_connect_response(&b);
        let _ = jute::decode_request(&b);
        let _ = jute::peek_request_header(&b);
        let _ = jute::decode_watch_event(&b);
        if let Ok((_, _, _, body)) = jute::decode_reply_header(&b) {
            for opcode in [OpCode::from_i32(op), Some(OpCode::Multi), Some(OpCode::MultiRead),
                           Some(OpCode::GetData), Some(OpCode::WhoAmI), Some(OpCode::Check)]
                .into_iter().flatten()
            {
                let _ = jute::decode_reply_body(opcode, err, body);
                let _ = jute::decode_reply_body(opcode, 0, body);
            }
        }
    }

    /// Valid requests with a few bytes flipped: decoders still answer without panicking, and
    /// whatever they accept re-encodes to something that decodes the same.
    #[test]
    fn mutated_requests_never_panic(
        req in request(),
        flips in vec((any::<proptest::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let mut out = Vec::new();
        jute::encode_request(7, &req, &mut out);
        let mut frame = out[4..].to_vec();
        for (i, v) in flips {
            let at = i.index(frame.len());
            frame[at] = v;
        }
        if let Ok((xid, r)) = jute::decode_request(&frame) {
            let mut again = Vec::new();
            jute::encode_request(xid, &r, &mut again);
            prop_assert_eq!(jute::decode_request(&again[4..]).expect("re-decodes"), (xid, r));
        }
    }
}
