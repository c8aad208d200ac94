//! Client SASL against a real `ensemble run`, configured as ZooKeeper 3.8 is: the SASL provider
//! in zoo.cfg, the JAAS file through `-Djava.security.auth.login.config` in SERVER_JVMFLAGS.
//! The client side is written here from RFC 2831 over the raw wire (opcode 102), so that a
//! wrong password, the error codes and the connection closing are seen exactly.

use ensemble_proto::jute;
use ensemble_proto::proto::{Acl, ConnectRequest, CreateMode, CreateOp, Id, Request, perms};
use md5::{Digest, Md5};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_ensemble");
const JAAS: &str = "Server {\n  org.apache.zookeeper.server.auth.DigestLoginModule required\n  \
                    user_super=\"super_secret\"\n  user_jaasuser=\"jaas_password\";\n};\n";
const AUTH_FAILED: i32 = -115;
const NO_AUTH: i32 = -102;
const SESSION_CLOSED_REQUIRE_SASL_AUTH: i32 = -124;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

struct Node {
    dir: PathBuf,
    port: u16,
    child: Child,
}

fn node_dir(tag: &str, extra: &str, jaas: Option<&str>) -> (PathBuf, PathBuf, u16) {
    let dir = std::env::temp_dir().join(format!("ens-sasl-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let port = free_port();
    let cfg = format!(
        "tickTime=500\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\n\
         preAllocSize=1024\nforceSync=no\n4lw.commands.whitelist=*\n\
         authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider\n{extra}",
        dir.join("data").display()
    );
    std::fs::write(dir.join("zoo.cfg"), cfg).expect("zoo.cfg");
    if let Some(j) = jaas {
        std::fs::write(dir.join("jaas.conf"), j).expect("jaas");
    }
    (dir.clone(), dir.join("zoo.cfg"), port)
}

fn command(dir: &std::path::Path, cfg: &std::path::Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.arg("run")
        .arg(cfg)
        .env_remove("JVMFLAGS")
        .env_remove("ZOOCFGDIR")
        .env(
            "SERVER_JVMFLAGS",
            format!(
                "-Djava.security.auth.login.config={}",
                dir.join("jaas.conf").display()
            ),
        );
    cmd
}

impl Node {
    fn start(tag: &str, extra: &str) -> Node {
        let (dir, cfg, port) = node_dir(tag, extra, Some(JAAS));
        let log = std::fs::File::create(dir.join("node.log")).expect("log");
        let child = command(&dir, &cfg)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn ensemble");
        let node = Node { dir, port, child };
        let t0 = Instant::now();
        while !ensemble_node::daemon::ask("127.0.0.1", port, "srvr")
            .is_ok_and(|s| s.contains("Mode: standalone"))
        {
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "node did not start: {}",
                node.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        node
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("node.log")).unwrap_or_default()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A client on the raw wire, with a session.
struct Raw {
    s: TcpStream,
}

impl Raw {
    fn connect(port: u16) -> Raw {
        let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut out = Vec::new();
        jute::encode_connect(
            &ConnectRequest {
                protocol_version: 0,
                last_zxid_seen: 0,
                timeout_ms: 10_000,
                session_id: 0,
                passwd: vec![0; 16],
                read_only: Some(false),
            },
            &mut out,
        );
        s.write_all(&out).expect("write");
        let mut raw = Raw { s };
        let frame = raw.frame().expect("a ConnectResponse");
        let r = jute::decode_connect_response(&frame).expect("decodes");
        assert!(r.session_id != 0);
        raw
    }

    /// The next frame's body; `None` once the server closed the connection.
    fn frame(&mut self) -> Option<Vec<u8>> {
        let mut len = [0u8; 4];
        self.s.read_exact(&mut len).ok()?;
        let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
        self.s.read_exact(&mut body).ok()?;
        Some(body)
    }

    /// One SASL round: (err, the server's token).
    fn sasl(&mut self, xid: i32, token: &[u8]) -> (i32, Vec<u8>) {
        let mut body = xid.to_be_bytes().to_vec();
        body.extend_from_slice(&102i32.to_be_bytes());
        body.extend_from_slice(&(token.len() as i32).to_be_bytes());
        body.extend_from_slice(token);
        let mut f = (body.len() as i32).to_be_bytes().to_vec();
        f.extend_from_slice(&body);
        self.s.write_all(&f).expect("write");
        let reply = self.frame().expect("a SASL reply");
        let (rxid, zxid, err, rest) = jute::decode_reply_header(&reply).expect("header");
        assert_eq!((rxid, zxid), (xid, 0));
        let len = i32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
        let token = if len < 0 {
            Vec::new()
        } else {
            rest[4..4 + len as usize].to_vec()
        };
        (err, token)
    }

    /// DIGEST-MD5 as pure-sasl and Java's client run it; the error of the last round.
    fn digest_md5(&mut self, user: &str, password: &str) -> i32 {
        let (err, challenge) = self.sasl(1, b"");
        assert_eq!(err, 0);
        let challenge = String::from_utf8(challenge).expect("text");
        let nonce = challenge
            .split("nonce=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .expect("a nonce");
        let (realm, uri, cnonce) = ("zk-sasl-md5", "zookeeper/zk-sasl-md5", "c0ffee");
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        let mut a1 = Md5::new();
        a1.update(Md5::digest(format!("{user}:{realm}:{password}").as_bytes()));
        a1.update(format!(":{nonce}:{cnonce}").as_bytes());
        let ha1 = hex(&a1.finalize());
        let ha2 = hex(&Md5::digest(format!("AUTHENTICATE:{uri}").as_bytes()));
        let response = hex(&Md5::digest(
            format!("{ha1}:{nonce}:00000001:{cnonce}:auth:{ha2}").as_bytes(),
        ));
        let answer = format!(
            "charset=utf-8,username=\"{user}\",realm=\"{realm}\",nonce=\"{nonce}\",nc=00000001,\
             cnonce=\"{cnonce}\",digest-uri=\"{uri}\",maxbuf=65536,response={response},qop=auth"
        );
        let (err, rspauth) = self.sasl(2, answer.as_bytes());
        if err == 0 {
            assert!(rspauth.starts_with(b"rspauth="), "{rspauth:?}");
        }
        err
    }

    /// A request's error code (0 for success).
    fn request(&mut self, xid: i32, request: &Request) -> i32 {
        let mut out = Vec::new();
        jute::encode_request(xid, request, &mut out);
        self.s.write_all(&out).expect("write");
        let reply = self.frame().expect("a reply");
        let (rxid, _, err, _) = jute::decode_reply_header(&reply).expect("header");
        assert_eq!(rxid, xid);
        err
    }

    fn closed(&mut self) -> bool {
        self.frame().is_none()
    }
}

fn create(path: &str, acl: Vec<Acl>) -> Request {
    Request::Create {
        op: CreateOp::Create,
        path: path.into(),
        data: b"x".to_vec(),
        acl,
        mode: CreateMode::Persistent,
        ttl: 0,
    }
}

fn get(path: &str) -> Request {
    Request::GetData {
        path: path.into(),
        watch: false,
    }
}

#[test]
fn digest_md5_gives_the_sasl_identity_and_a_wrong_password_fails_that_session_only() {
    let node = Node::start("digest", "superUser=super\n");
    let mut alice = Raw::connect(node.port);
    assert_eq!(alice.digest_md5("jaasuser", "jaas_password"), 0);
    let acl = vec![Acl {
        perms: perms::ALL,
        id: Id::new("sasl", "jaasuser"),
    }];
    assert_eq!(alice.request(3, &create("/s", acl)), 0);
    // a wrong password, and an unknown user: AUTHFAILED, that connection closed
    for (user, pw) in [("jaasuser", "wrong"), ("baduser", "badpassword")] {
        let mut eve = Raw::connect(node.port);
        assert_eq!(eve.digest_md5(user, pw), AUTH_FAILED);
        assert!(eve.closed(), "the failed connection is closed");
    }
    // everyone else is unaffected
    assert_eq!(alice.request(4, &get("/s")), 0);
    let mut plain = Raw::connect(node.port);
    assert_eq!(plain.request(1, &get("/s")), NO_AUTH);
    // zookeeper.superUser: the super principal passes every ACL
    let mut admin = Raw::connect(node.port);
    assert_eq!(admin.digest_md5("super", "super_secret"), 0);
    assert_eq!(admin.request(3, &get("/s")), 0);
    // secrets appear neither in the log nor in `conf`
    let conf = ensemble_node::daemon::ask("127.0.0.1", node.port, "conf").expect("conf");
    for secret in ["jaas_password", "super_secret", "wrong", "badpassword"] {
        assert!(!conf.contains(secret), "{conf}");
        assert!(!node.log().contains(secret), "{}", node.log());
    }
}

#[test]
fn session_require_client_sasl_auth_closes_unauthenticated_sessions() {
    let node = Node::start("require", "sessionRequireClientSASLAuth=true\n");
    let mut plain = Raw::connect(node.port);
    assert_eq!(
        plain.request(1, &get("/")),
        SESSION_CLOSED_REQUIRE_SASL_AUTH
    );
    assert!(plain.closed());
    let mut ok = Raw::connect(node.port);
    assert_eq!(ok.digest_md5("jaasuser", "jaas_password"), 0);
    assert_eq!(ok.request(3, &get("/")), 0);
    // a failed exchange is refused with the enforcement's error
    let mut bad = Raw::connect(node.port);
    assert_eq!(
        bad.digest_md5("jaasuser", "nope"),
        SESSION_CLOSED_REQUIRE_SASL_AUTH
    );
    assert!(bad.closed());
}

#[test]
fn a_missing_jaas_file_or_section_refuses_to_start_naming_it() {
    for (tag, extra, jaas, expect) in [
        (
            "nosection",
            "sessionRequireClientSASLAuth=true\n",
            Some(
                "Client {\n org.apache.zookeeper.server.auth.DigestLoginModule required\n user_a=\"pw-never-shown\";\n};\n",
            ),
            "No JAAS configuration section named 'Server'",
        ),
        ("nofile", "", None, "cannot read the JAAS file"),
    ] {
        let (dir, cfg, _) = node_dir(tag, extra, jaas);
        let out = command(&dir, &cfg)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .expect("runs");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.status.success(), "{tag}: started: {text}");
        assert!(text.contains(expect), "{tag}: {text}");
        assert!(
            text.contains(&dir.join("jaas.conf").display().to_string()),
            "{tag}: {text}"
        );
        assert!(!text.contains("pw-never-shown"), "{text}");
        // refused before anything was written
        let written = std::fs::read_dir(dir.join("data").join("version-2"))
            .map(|d| d.count())
            .unwrap_or(0);
        assert_eq!(written, 0, "{tag}: files written");
        let _ = std::fs::remove_dir_all(&dir);
    }
    // SASL required without any JAAS file: refused at the configuration
    let (dir, cfg, _) = node_dir("required", "sessionRequireClientSASLAuth=true\n", None);
    let out = Command::new(BIN)
        .arg("run")
        .arg(&cfg)
        .env_remove("JVMFLAGS")
        .env_remove("SERVER_JVMFLAGS")
        .env_remove("ZOOCFGDIR")
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success());
    assert!(text.contains("java.security.auth.login.config"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}
