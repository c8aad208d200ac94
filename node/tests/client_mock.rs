//! The client against a scripted fake server (the codec's server side over a tokio socket):
//! what goes on the wire in the handshake, pings, re-attach, setWatches and the failure paths.
//! Needs nothing installed.

use std::time::Duration;

use ensemble_client::{Client, ClientError, ConnectOptions, SessionState};
use ensemble_proto::jute;
use ensemble_proto::proto::{
    ConnectRequest, ConnectResponse, KeeperError, OpCode, Reply, Request, Response, Stat,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const T: Duration = Duration::from_secs(10);

struct Conn {
    s: TcpStream,
}

impl Conn {
    async fn frame(&mut self) -> Option<Vec<u8>> {
        let mut p = [0u8; 4];
        tokio::time::timeout(T, self.s.read_exact(&mut p))
            .await
            .ok()?
            .ok()?;
        let len = jute::frame_len(p).ok()?;
        let mut f = vec![0u8; len];
        self.s.read_exact(&mut f).await.ok()?;
        Some(f)
    }

    async fn request(&mut self) -> (i32, Request) {
        let f = self.frame().await.expect("a request");
        jute::decode_request(&f).expect("decodes")
    }

    /// The next request that is not a ping.
    async fn request_no_ping(&mut self) -> (i32, Request) {
        loop {
            let (xid, r) = self.request().await;
            if r != Request::Ping {
                return (xid, r);
            }
        }
    }

    async fn reply(&mut self, xid: i32, zxid: i64, op: OpCode, reply: Reply) {
        let mut out = Vec::new();
        jute::encode_reply(xid, zxid, op, &reply, &mut out);
        self.s.write_all(&out).await.expect("write");
    }
}

async fn accept(l: &TcpListener) -> (Conn, ConnectRequest) {
    let (s, _) = tokio::time::timeout(T, l.accept())
        .await
        .expect("a connection")
        .expect("accept");
    let mut c = Conn { s };
    let f = c.frame().await.expect("handshake");
    (c, jute::decode_connect(&f).expect("connect request"))
}

async fn answer(c: &mut Conn, session_id: i64, timeout_ms: i32) {
    let resp = ConnectResponse {
        protocol_version: 0,
        timeout_ms,
        session_id,
        passwd: vec![7; 16],
        read_only: Some(false),
    };
    let mut out = Vec::new();
    jute::encode_connect_response(&resp, &mut out);
    c.s.write_all(&out).await.expect("write");
}

async fn listener() -> (TcpListener, String) {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let a = l.local_addr().expect("addr").to_string();
    (l, a)
}

/// A client connected to a fresh fake server (session `session_id`, 5 s timeout): the listener
/// (for the reconnects), the server's end and the client.
async fn connected(session_id: i64) -> (TcpListener, Conn, Client) {
    let (l, addr) = listener().await;
    let client = tokio::spawn(async move { Client::connect(&addr, Duration::from_secs(5)).await });
    let (mut c, _) = accept(&l).await;
    answer(&mut c, session_id, 5000).await;
    let zk = client.await.expect("task").expect("connected");
    (l, c, zk)
}

#[tokio::test]
async fn handshake_and_pings() {
    let (l, addr) = listener().await;
    let client =
        tokio::spawn(async move { Client::connect(&addr, Duration::from_millis(900)).await });
    let (mut c, req) = accept(&l).await;
    assert_eq!(
        req,
        ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            timeout_ms: 900,
            session_id: 0,
            passwd: vec![0; 16],
            read_only: Some(false),
        }
    );
    answer(&mut c, 0x1234, 600).await;
    let zk = client.await.expect("task").expect("connected");
    assert_eq!(zk.session_id(), 0x1234);
    assert_eq!(zk.negotiated_timeout(), Duration::from_millis(600));
    assert_eq!(zk.session().passwd, vec![7; 16]);
    // idle: the client pings (xid -2), and keeps the session alive as long as we answer
    for _ in 0..3 {
        let (xid, r) = c.request().await;
        assert_eq!((xid, r), (jute::PING_XID, Request::Ping));
        c.reply(jute::PING_XID, 5, OpCode::Ping, Ok(Response::Empty))
            .await;
    }
    assert_eq!(zk.state(), SessionState::Connected);
}

#[tokio::test]
async fn reconnect_carries_zxid_auth_and_watches() {
    let (l, mut c, zk) = connected(42).await;

    let z = zk.clone();
    let auth = tokio::spawn(async move { z.add_auth("digest", b"u:p").await });
    let (xid, r) = c.request_no_ping().await;
    assert_eq!(xid, jute::AUTH_XID);
    assert_eq!(
        r,
        Request::Auth {
            scheme: "digest".into(),
            auth: b"u:p".to_vec()
        }
    );
    c.reply(jute::AUTH_XID, 0, OpCode::Auth, Ok(Response::Empty))
        .await;
    auth.await.expect("task").expect("auth ok");

    let z = zk.clone();
    let get = tokio::spawn(async move { z.get_data("/a", true).await });
    let (xid, r) = c.request_no_ping().await;
    assert_eq!(
        r,
        Request::GetData {
            path: "/a".into(),
            watch: true
        }
    );
    let stat = Stat {
        version: 3,
        ..Stat::default()
    };
    c.reply(
        xid,
        77,
        OpCode::GetData,
        Ok(Response::GetData {
            data: b"v".to_vec(),
            stat,
        }),
    )
    .await;
    assert_eq!(get.await.expect("task"), Ok((b"v".to_vec(), stat)));
    let z = zk.clone();
    let exists = tokio::spawn(async move { z.exists("/b", true).await });
    let (xid, _) = c.request_no_ping().await;
    c.reply(xid, 78, OpCode::Exists, Err(KeeperError::NoNode))
        .await;
    assert_eq!(exists.await.expect("task"), Ok(None));

    // the server goes away; the client comes back with the same session
    drop(c);
    let (mut c, req) = accept(&l).await;
    assert_eq!(
        (req.session_id, req.passwd.clone(), req.last_zxid_seen),
        (42, vec![7; 16], 78)
    );
    answer(&mut c, 42, 5000).await;
    let (xid, r) = c.request_no_ping().await;
    assert_eq!(
        (xid, r),
        (
            jute::AUTH_XID,
            Request::Auth {
                scheme: "digest".into(),
                auth: b"u:p".to_vec()
            }
        )
    );
    c.reply(jute::AUTH_XID, 0, OpCode::Auth, Ok(Response::Empty))
        .await;
    let (xid, r) = c.request_no_ping().await;
    assert_eq!(xid, jute::SET_WATCHES_XID);
    assert_eq!(
        r,
        Request::SetWatches {
            relative_zxid: 78,
            data: vec!["/a".into()],
            exist: vec!["/b".into()],
            child: vec![],
            persistent: vec![],
            persistent_recursive: vec![],
            v2: false,
        }
    );
}

#[tokio::test]
async fn in_flight_requests_fail_with_connection_loss_and_queue_for_the_next() {
    let (l, mut c, zk) = connected(9).await;
    let z = zk.clone();
    let pending = tokio::spawn(async move { z.sync("/").await });
    let _ = c.request_no_ping().await;
    drop(c);
    assert_eq!(
        pending.await.expect("task"),
        Err(ClientError::ConnectionLoss)
    );
    // a request made while the client reconnects goes out on the new connection
    let z = zk.clone();
    let later = tokio::spawn(async move { z.sync("/x").await });
    let (mut c, _) = accept(&l).await;
    answer(&mut c, 9, 5000).await;
    let (xid, r) = c.request_no_ping().await;
    assert_eq!(r, Request::Sync { path: "/x".into() });
    c.reply(
        xid,
        3,
        OpCode::Sync,
        Ok(Response::Sync { path: "/x".into() }),
    )
    .await;
    assert_eq!(later.await.expect("task"), Ok("/x".to_string()));
}

#[tokio::test]
async fn a_reply_out_of_order_drops_the_connection() {
    let (l, mut c, zk) = connected(9).await;
    let z = zk.clone();
    let r = tokio::spawn(async move { z.sync("/").await });
    let (xid, _) = c.request_no_ping().await;
    c.reply(
        xid + 5,
        3,
        OpCode::Sync,
        Ok(Response::Sync { path: "/".into() }),
    )
    .await;
    assert_eq!(r.await.expect("task"), Err(ClientError::ConnectionLoss));
    let (_c2, req) = accept(&l).await;
    assert_eq!(req.session_id, 9, "re-attaches after the protocol error");
}

#[tokio::test]
async fn silence_beyond_the_read_timeout_reconnects() {
    let (l, addr) = listener().await;
    let client =
        tokio::spawn(async move { Client::connect(&addr, Duration::from_millis(600)).await });
    let (mut c, _) = accept(&l).await;
    answer(&mut c, 5, 600).await;
    let _zk = client.await.expect("task").expect("connected");
    // never answer the pings: after 2/3 of the timeout the client gives up on this server
    let (_c2, req) = accept(&l).await;
    assert_eq!(req.session_id, 5);
    drop(c);
}

#[tokio::test]
async fn hosts_are_tried_in_turn() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let dead_addr = dead.local_addr().expect("addr").to_string();
    drop(dead);
    let (l, addr) = listener().await;
    let hosts = format!("{dead_addr},{addr}");
    let client = tokio::spawn(async move { Client::connect(&hosts, Duration::from_secs(5)).await });
    let (mut c, _) = accept(&l).await;
    answer(&mut c, 1, 5000).await;
    let zk = client
        .await
        .expect("task")
        .expect("connected through the live host");
    assert_eq!(zk.session().server, Some(addr));
}

#[tokio::test]
async fn an_expired_session_is_refused() {
    let (l, addr) = listener().await;
    let mut opts = ConnectOptions::new(&addr, Duration::from_secs(5));
    opts.session = Some((77, vec![1; 16]));
    let client = tokio::spawn(Client::connect_with(opts));
    let (mut c, req) = accept(&l).await;
    assert_eq!((req.session_id, req.passwd), (77, vec![1; 16]));
    // ZooKeeper's answer to an unknown session: timeout 0, session 0
    answer(&mut c, 0, 0).await;
    assert_eq!(
        client.await.expect("task").map(|_| ()),
        Err(ClientError::SessionExpired)
    );
}

#[tokio::test]
async fn failed_auth_ends_the_session() {
    let (_l, mut c, zk) = connected(3).await;
    let mut events = zk.take_events().expect("events");
    let z = zk.clone();
    let auth = tokio::spawn(async move { z.add_auth("digest", b"x").await });
    let (xid, _) = c.request_no_ping().await;
    c.reply(xid, 0, OpCode::Auth, Err(KeeperError::AuthFailed))
        .await;
    assert_eq!(auth.await.expect("task"), Err(ClientError::AuthFailed));
    assert_eq!(zk.state(), SessionState::AuthFailed);
    assert_eq!(zk.exists("/", false).await, Err(ClientError::AuthFailed));
    let mut states = Vec::new();
    while let Ok(e) = events.try_recv() {
        states.push(e.state);
    }
    assert!(
        states.contains(&ensemble_proto::proto::KeeperState::AuthFailed),
        "{states:?}"
    );
}

#[tokio::test]
async fn close_sends_close_session() {
    let (_l, mut c, zk) = connected(3).await;
    let z = zk.clone();
    let closing = tokio::spawn(async move { z.close().await });
    let (xid, r) = c.request_no_ping().await;
    assert_eq!(r, Request::CloseSession);
    c.reply(xid, 9, OpCode::CloseSession, Ok(Response::Empty))
        .await;
    assert_eq!(closing.await.expect("task"), Ok(()));
    assert_eq!(zk.state(), SessionState::Closed);
    assert_eq!(zk.sync("/").await, Err(ClientError::Closed));
    assert!(c.frame().await.is_none(), "the client hung up");
}

#[tokio::test]
async fn dropping_every_handle_closes_the_session() {
    let (_l, mut c, zk) = connected(3).await;
    drop(zk);
    let (_, r) = c.request_no_ping().await;
    assert_eq!(r, Request::CloseSession);
}
