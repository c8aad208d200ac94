//! `Event::ClientAuthenticated`: an identity the runtime established counts for the requests
//! after it, as addAuth's ids do, with the super users and the configured providers.

use crate::acl::AuthProviders;
use crate::config::{Config, LearnerType};
use crate::server::{ConnId, Event, Recovered};
use crate::test_rig::Rig;
use ensemble_proto::proto::{Acl, CreateMode, CreateOp, Id, KeeperError, Request, perms};

/// A serving standalone server with these providers and super users.
fn serving(providers: AuthProviders, sasl_super: Option<&str>, x509_super: Option<&str>) -> Rig {
    let mut cfg = Config::new(1, [(1, LearnerType::Participant)].into());
    cfg.auth_providers = providers;
    cfg.sasl_super_user = sasl_super.map(str::to_string);
    cfg.x509_super_user = x509_super.map(str::to_string);
    let mut rig = Rig::new(cfg, Recovered::default());
    for _ in 0..100 {
        if rig.server.is_serving() {
            return rig;
        }
        rig.run_for(50);
    }
    panic!("a standalone server did not start serving");
}

/// The runtime's part in these tests: a new session on `conn`, and an identity it established.
trait Connecting {
    fn connect_new(&mut self, conn: ConnId);
    fn authenticated(&mut self, conn: ConnId, scheme: &str, id: &str);
}

impl Connecting for Rig {
    fn connect_new(&mut self, conn: ConnId) {
        self.connect(conn, 0, None);
        assert!(self.server.connection_session(conn).is_some());
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
    let mut r = serving(BOTH, None, None);
    r.connect_new(1);
    r.connect_new(2);
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
    let mut r = serving(BOTH, Some("admin@R"), Some("CN=root"));
    for conn in 1..=3 {
        r.connect_new(conn);
    }
    r.authenticated(1, "sasl", "bob@R");
    assert!(r.request(1, 1, create("/s", only("sasl", "bob@R"))).is_ok());
    r.authenticated(2, "sasl", "admin@R");
    assert!(r.request(2, 1, read("/s")).is_ok());
    r.authenticated(3, "x509", "CN=root");
    assert!(r.request(3, 1, read("/s")).is_ok());
    // the sasl super user's name as a certificate subject is nobody special
    r.connect_new(4);
    r.authenticated(4, "x509", "admin@R");
    assert_eq!(r.request(4, 1, read("/s")), Err(KeeperError::NoAuth));
}

#[test]
fn schemes_without_a_provider_are_unknown() {
    let sasl_only = AuthProviders {
        sasl: true,
        x509: false,
    };
    let mut r = serving(sasl_only, None, None);
    r.connect_new(1);
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
    let mut none = serving(AuthProviders::default(), None, None);
    none.connect_new(1);
    assert_eq!(
        none.request(1, 1, create("/s", only("sasl", "bob"))),
        Err(KeeperError::InvalidAcl)
    );
    // an identity for a connection that is gone is ignored
    none.authenticated(9, "sasl", "bob");
}
