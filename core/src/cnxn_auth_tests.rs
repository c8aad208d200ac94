//! `Event::ClientAuthenticated`: an identity the runtime established counts for the requests
//! after it, as addAuth's ids do, with the super users and the configured providers.

use crate::acl::AuthProviders;
use crate::config::{Config, LearnerType};
use crate::effect::{Action, Ready, Write};
use crate::server::{ConnId, Event, Recovered, Server};
use crate::zxid::Zxid;
use ensemble_proto::proto::{
    Acl, ConnectRequest, CreateMode, CreateOp, Id, KeeperError, Reply, Request, perms,
};

/// A serving standalone server and the replies it gave, by (conn, xid).
struct Rig {
    server: Server,
    now: u64,
    replies: Vec<(ConnId, i32, Reply)>,
}

impl Rig {
    fn new(providers: AuthProviders, sasl_super: Option<&str>, x509_super: Option<&str>) -> Rig {
        let mut cfg = Config::new(1, [(1, LearnerType::Participant)].into());
        cfg.auth_providers = providers;
        cfg.sasl_super_user = sasl_super.map(str::to_string);
        cfg.x509_super_user = x509_super.map(str::to_string);
        let server = Server::new(cfg, Recovered::default(), 0).expect("a fresh server");
        let mut rig = Rig {
            server,
            now: 0,
            replies: Vec::new(),
        };
        for _ in 0..100 {
            if rig.server.is_serving() {
                return rig;
            }
            rig.now += 50;
            rig.step(Event::Tick);
        }
        panic!("a standalone server did not start serving");
    }

    /// Feed `event`, then report every append durable until nothing more is written.
    fn step(&mut self, event: Event) {
        let mut next = Some(event);
        while let Some(event) = next.take() {
            let mut ready = Ready::new();
            self.server.handle_ready(self.now, event, &mut ready);
            let mut through = None;
            for batch in ready.batches() {
                for w in batch.writes() {
                    if let Write::Append { txns } = w {
                        through = txns.last().map(|t| t.zxid);
                    }
                }
                for a in batch.then() {
                    if let Action::Reply {
                        conn, xid, reply, ..
                    } = a
                    {
                        self.replies.push((*conn, *xid, reply.clone()));
                    }
                }
            }
            next = through.map(|through: Zxid| Event::Persisted { through });
        }
    }

    fn connect(&mut self, conn: ConnId) {
        let request = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            timeout_ms: 10_000,
            session_id: 0,
            passwd: vec![0; 16],
            read_only: None,
        };
        self.step(Event::ClientConnected {
            conn,
            addr: "127.0.0.1".into(),
            request,
        });
        assert!(self.server.connection_session(conn).is_some());
    }

    fn request(&mut self, conn: ConnId, xid: i32, request: Request) -> Reply {
        self.step(Event::Client { conn, xid, request });
        let at = self
            .replies
            .iter()
            .position(|(c, x, _)| *c == conn && *x == xid)
            .expect("answered");
        self.replies.remove(at).2
    }

    fn authenticated(&mut self, conn: ConnId, scheme: &str, id: &str) {
        self.step(Event::ClientAuthenticated {
            conn,
            id: Id::new(scheme, id),
        });
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

fn read(path: &str) -> Request {
    Request::GetData {
        path: path.into(),
        watch: false,
    }
}

fn only(scheme: &str, id: &str) -> Vec<Acl> {
    vec![Acl {
        perms: perms::ALL,
        id: Id::new(scheme, id),
    }]
}

const BOTH: AuthProviders = AuthProviders {
    sasl: true,
    x509: true,
};

#[test]
fn an_established_identity_counts_for_later_requests() {
    let mut r = Rig::new(BOTH, None, None);
    r.connect(1);
    r.connect(2);
    // before the identity, a sasl ACL naming it is valid but does not let us in
    assert!(r.request(1, 1, create("/s", only("sasl", "bob@R"))).is_ok());
    assert_eq!(r.request(1, 2, read("/s")), Err(KeeperError::NoAuth));
    r.authenticated(1, "sasl", "bob@R");
    assert!(r.request(1, 3, read("/s")).is_ok());
    // another principal, on another connection, is refused
    r.authenticated(2, "sasl", "eve@R");
    assert_eq!(r.request(2, 1, read("/s")), Err(KeeperError::NoAuth));
    // `auth` expands to the established ids
    assert!(r.request(1, 4, create("/a", only("auth", ""))).is_ok());
    assert_eq!(r.request(2, 2, read("/a")), Err(KeeperError::NoAuth));
    assert!(r.request(1, 5, read("/a")).is_ok());
    // x509 likewise
    r.authenticated(2, "x509", "CN=client,O=x");
    assert!(
        r.request(2, 3, create("/x", only("x509", "CN=client,O=x")))
            .is_ok()
    );
    assert!(r.request(2, 4, read("/x")).is_ok());
    assert_eq!(r.request(1, 6, read("/x")), Err(KeeperError::NoAuth));
}

#[test]
fn super_users_pass_every_acl() {
    let mut r = Rig::new(BOTH, Some("admin@R"), Some("CN=root"));
    for conn in 1..=3 {
        r.connect(conn);
    }
    r.authenticated(1, "sasl", "bob@R");
    assert!(r.request(1, 1, create("/s", only("sasl", "bob@R"))).is_ok());
    r.authenticated(2, "sasl", "admin@R");
    assert!(r.request(2, 1, read("/s")).is_ok());
    r.authenticated(3, "x509", "CN=root");
    assert!(r.request(3, 1, read("/s")).is_ok());
    // the sasl super user's name as a certificate subject is nobody special
    r.connect(4);
    r.authenticated(4, "x509", "admin@R");
    assert_eq!(r.request(4, 1, read("/s")), Err(KeeperError::NoAuth));
}

#[test]
fn schemes_without_a_provider_are_unknown() {
    let sasl_only = AuthProviders {
        sasl: true,
        x509: false,
    };
    let mut r = Rig::new(sasl_only, None, None);
    r.connect(1);
    r.authenticated(1, "x509", "CN=client");
    // the x509 id was not taken: `auth` finds no authenticated id
    assert_eq!(
        r.request(1, 1, create("/a", only("auth", ""))),
        Err(KeeperError::InvalidAcl)
    );
    assert_eq!(
        r.request(1, 2, create("/x", only("x509", "CN=client"))),
        Err(KeeperError::InvalidAcl)
    );
    let mut none = Rig::new(AuthProviders::default(), None, None);
    none.connect(1);
    assert_eq!(
        none.request(1, 1, create("/s", only("sasl", "bob"))),
        Err(KeeperError::InvalidAcl)
    );
    // an identity for a connection that is gone is ignored
    none.authenticated(9, "sasl", "bob");
}
