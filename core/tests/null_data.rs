//! Null data (a buffer of length -1 on the wire) is kept apart from empty data, as ZooKeeper
//! keeps it: a create or setData sent with null data reads back null, through the wire codec,
//! the tree, a failed multi's rollback, a delete and a snapshot.

use ensemble_core::tree::{DataTree, TreeOptions};
use ensemble_core::txn::{Origin, Txn, TxnOp};
use ensemble_core::zxid::Zxid;
use ensemble_proto::jute;
use ensemble_proto::proto::{
    Acl, CreateMode, CreateOp, MultiOp, OpCode, OpResult, ReadOp, ReadResult, Request, Response,
};

struct T {
    tree: DataTree,
    zxid: Zxid,
}

impl T {
    fn write(&mut self, request: Request) -> Response {
        self.zxid = self.zxid.next();
        let txn = Txn {
            zxid: self.zxid,
            time: 1,
            session: 1,
            cxid: 0,
            origin: Origin::NONE,
            op: TxnOp::Write {
                request,
                auth: vec![],
            },
        };
        self.tree.apply(&txn).reply.expect("applies")
    }
    fn get(&self, path: &str) -> Response {
        let r = Request::GetData {
            path: path.into(),
            watch: false,
        };
        self.tree.read(&r, &[]).expect("reads")
    }
    fn is_null(&self, path: &str) -> bool {
        matches!(self.get(path), Response::GetDataNull { .. })
    }
}

fn create(path: &str, data: &[u8]) -> Request {
    Request::Create {
        op: CreateOp::Create,
        path: path.into(),
        data: data.to_vec(),
        acl: Acl::open_unsafe(),
        mode: CreateMode::Persistent,
        ttl: 0,
    }
}

fn nulls(request: Request, ops: &[u32]) -> Request {
    Request::NullData {
        request: Box::new(request),
        ops: ops.to_vec(),
    }
}

/// A request frame (header + body) as a client would send it, decoded as the server does.
fn decoded(request: &Request) -> Request {
    let mut out = Vec::new();
    jute::encode_request(1, request, &mut out);
    jute::decode_request(&out[4..]).expect("decodes").1
}

#[test]
fn null_buffers_decode_to_null_data_and_encode_back() {
    let frame = |body: &[u8]| {
        let mut f = vec![0, 0, 0, 1, 0, 0, 0, 1];
        f.extend_from_slice(body);
        f
    };
    // create "/n" with data -1, world:anyone, persistent
    let mut body = vec![
        0, 0, 0, 2, b'/', b'n', 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1, 0, 0, 0, 31,
    ];
    for s in ["world", "anyone"] {
        body.extend_from_slice(&(s.len() as i32).to_be_bytes());
        body.extend_from_slice(s.as_bytes());
    }
    body.extend_from_slice(&[0, 0, 0, 0]);
    let (_, r) = jute::decode_request(&frame(&body)).expect("decodes");
    assert_eq!(r, nulls(create("/n", b""), &[0]));
    assert_eq!(r.opcode(), OpCode::Create);
    assert!(r.is_write());
    let mut again = Vec::new();
    jute::encode_request(1, &r, &mut again);
    assert_eq!(&again[4..], &frame(&body)[..], "re-encodes byte for byte");
    // an empty (not null) buffer stays a plain create
    let plain = create("/e", b"");
    assert_eq!(decoded(&plain), plain);
    // a multi says which of its ops had null data
    let multi = nulls(
        Request::Multi(vec![
            MultiOp::SetData {
                path: "/a".into(),
                data: vec![],
                version: -1,
            },
            MultiOp::SetData {
                path: "/b".into(),
                data: vec![],
                version: -1,
            },
        ]),
        &[1],
    );
    assert_eq!(decoded(&multi), multi);
}

#[test]
fn null_data_reads_back_null_until_data_is_set() {
    let mut t = T {
        tree: DataTree::new(TreeOptions::default()),
        zxid: Zxid::new(1, 0),
    };
    t.write(nulls(create("/n", b""), &[0]));
    t.write(create("/e", b""));
    assert!(t.is_null("/n") && !t.is_null("/e"));
    let Response::GetDataNull { stat } = t.get("/n") else {
        unreachable!()
    };
    assert_eq!(stat.data_length, 0);
    // setData with data, then with null, then empty
    let set = |p: &str, d: &[u8]| Request::SetData {
        path: p.into(),
        data: d.to_vec(),
        version: -1,
    };
    t.write(set("/n", b"x"));
    assert!(!t.is_null("/n"));
    t.write(nulls(set("/n", b""), &[0]));
    assert!(t.is_null("/n"));
    // a failed multi changes nothing; a committed one applies in op order
    let failed = Request::Multi(vec![
        MultiOp::SetData {
            path: "/n".into(),
            data: b"y".to_vec(),
            version: -1,
        },
        MultiOp::Check {
            path: "/missing".into(),
            version: -1,
        },
    ]);
    assert!(matches!(t.write(failed), Response::Multi(r) if matches!(r[1], OpResult::Error(_))));
    assert!(t.is_null("/n"));
    let ok = nulls(
        Request::Multi(vec![
            MultiOp::SetData {
                path: "/e".into(),
                data: vec![],
                version: -1,
            },
            MultiOp::SetData {
                path: "/n".into(),
                data: b"z".to_vec(),
                version: -1,
            },
        ]),
        &[0],
    );
    t.write(ok);
    assert!(t.is_null("/e") && !t.is_null("/n"));
    // multiRead answers null too
    let r = t
        .tree
        .read(
            &Request::MultiRead(vec![ReadOp::GetData { path: "/e".into() }]),
            &[],
        )
        .expect("reads");
    assert!(matches!(r, Response::MultiRead(v) if matches!(v[0], ReadResult::GetDataNull { .. })));
    // a snapshot keeps it; a delete forgets it
    let back =
        DataTree::from_snapshot(&t.tree.to_snapshot(), TreeOptions::default()).expect("loads");
    assert_eq!(back.check_consistency(), Ok(()));
    assert!(back.is_null_data("/e") && !back.is_null_data("/n"));
    t.write(Request::Delete {
        path: "/e".into(),
        version: -1,
    });
    t.write(create("/e", b""));
    assert!(!t.is_null("/e"));
    assert_eq!(t.tree.check_consistency(), Ok(()));
}

#[test]
fn a_null_data_reply_goes_out_as_length_minus_one() {
    let mut t = T {
        tree: DataTree::new(TreeOptions::default()),
        zxid: Zxid::new(1, 0),
    };
    t.write(nulls(create("/n", b""), &[0]));
    let mut out = Vec::new();
    jute::encode_reply(5, 1, OpCode::GetData, &Ok(t.get("/n")), &mut out);
    // length, xid, zxid, err, then the data buffer's length
    assert_eq!(&out[20..24], &[0xff, 0xff, 0xff, 0xff]);
}
