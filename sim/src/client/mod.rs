//! Simulated ZooKeeper clients. Each one keeps a session alive the way the Java client does
//! (`session`: pings when idle for a third of the timeout, gives a server up after two thirds
//! of it, reconnects elsewhere carrying its session id, password and lastZxidSeen,
//! re-registers its watches with setWatches), runs a role (`roles`: a random mix or a
//! recipe), and has every reply checked against the committed history the moment it arrives
//! (`crate::check::client`).

pub(crate) mod legacy;
pub(crate) mod refused;
pub(crate) mod roles;
pub(crate) mod session;

pub use roles::acl::AclRole;
pub use roles::{
    AdminRole, LockPhase, LockRole, MemberRole, NamingRole, RandomRole, RoleState, WatchRole,
    WriterRole,
};
pub use session::{Client, Conn, Session};

use crate::check::{Reference, Violation};
use crate::params::Params;
use crate::rng::SimRng;
use ensemble_core::server::ConnId;
use ensemble_core::txn::ServerId;
use ensemble_core::zxid::Zxid;
use ensemble_proto::proto::{ConnectRequest, EventType, Reply, Request, SessionId};
use std::collections::BTreeMap;
use std::rc::Rc;

pub const PING_XID: i32 = -2;
pub const SET_WATCHES_XID: i32 = -8;
/// ZooKeeper's xid for `addauth`.
pub const AUTH_XID: i32 = -4;
/// What the `admin` role authenticates with; every server's `superDigest` is its digest.
pub const SUPER_AUTH: &str = "super:sim-secret";
/// Every server's `zookeeper.superUser`: the SASL principal that is the super user.
pub const SASL_SUPER: &str = "zk-admin@SIM";
/// Every server's `zookeeper.X509AuthenticationProvider.superUser`.
pub const X509_SUPER: &str = "CN=zk-admin,O=sim";
/// Every server registers the sasl and x509 providers (`authProvider.N`).
pub const PROVIDERS: ensemble_core::acl::AuthProviders = ensemble_core::acl::AuthProviders {
    sasl: true,
    x509: true,
};

/// What a client asks the world to do.
#[derive(Debug)]
pub enum ClientOut {
    Open {
        conn: ConnId,
        server: ServerId,
        request: ConnectRequest,
    },
    Send {
        conn: ConnId,
        xid: i32,
        request: Request,
    },
    /// A request frame the server cannot decode (`refused`): the world triages it as the
    /// node's runtime does.
    SendRaw {
        conn: ConnId,
        xid: i32,
        what: &'static str,
        frame: Vec<u8>,
    },
    /// The runtime of the connection's server establishes an identity for it, in order with
    /// what the client sends (a SASL exchange completing, a certificate at the handshake).
    Authenticate {
        conn: ConnId,
        id: ensemble_proto::proto::Id,
    },
    /// The client drops the connection (the server sees it close).
    Close {
        conn: ConnId,
    },
    /// A protected action on the lock recipe's external resource.
    Resource {
        token: i64,
        fenced: bool,
    },
    Note(String),
}

/// Facts every client shares: the record of acknowledged writes.
#[derive(Default)]
pub struct Shared {
    pub next_conn: ConnId,
    /// The highest zxid acknowledged to any client so far.
    pub max_acked: i64,
    /// Every acknowledged write's zxid (checked against later leaders' histories).
    pub acked: Vec<Zxid>,
    pub ops: Vec<OpRecord>,
    /// Sessions the clients were told had expired, with when.
    pub expired: BTreeMap<SessionId, u64>,
    /// Sessions some server has logged a closeSession of (`session.imported-reattach`).
    pub close_logged: std::collections::BTreeSet<SessionId>,
    pub ok_writes: u64,
    pub ok_reads: u64,
    pub unknown: u64,
    pub errors: u64,
    /// Completion times of successful writes (for the unavailability window).
    pub last_write_ok: u64,
    pub max_write_gap: u64,
    /// Names the naming recipe was given, with the client.
    pub names: BTreeMap<String, usize>,
    pub name_violation: Option<String>,
    /// A recipe claim broken inside a role callback (reported by the world).
    pub recipe_violation: Option<Violation>,
    /// The changes of the scenario's reconfiguration plan that committed.
    pub reconfig_plan_done: usize,
}

/// One client operation as the history keeps it.
#[derive(Clone, Debug)]
pub struct OpRecord {
    pub client: usize,
    pub session: SessionId,
    pub xid: i32,
    /// Shared with the client's pending entry: a record is moved each time the history grows,
    /// and the request (136 bytes inline, and its strings) was cloned for each.
    pub request: Rc<Request>,
    pub invoked: u64,
    pub done: Option<u64>,
    /// (reply zxid, reply), or None: unknown outcome (connection lost first).
    pub result: Option<(i64, Reply)>,
    /// For replies after a successful sync in the same session: when the last such sync was
    /// invoked (set when the reply arrives: a read pipelined behind its sync counts, a read
    /// after a sync that failed does not).
    pub synced_since: Option<u64>,
}

pub struct Ctx<'a> {
    pub now: u64,
    pub rng: &'a mut SimRng,
    pub out: &'a mut Vec<ClientOut>,
    pub reference: &'a Reference,
    pub shared: &'a mut Shared,
    pub servers: &'a [ServerId],
    pub params: &'a Params,
    /// The established leader now, if any (a plan's `remove leader`).
    pub leader: Option<ServerId>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum WatchClass {
    /// getData / exists on an existing node.
    Data,
    /// exists on a missing node (fires on creation).
    Exist,
    Child,
}

impl WatchClass {
    pub(crate) fn kinds(self) -> &'static [EventType] {
        match self {
            WatchClass::Data | WatchClass::Exist => &[
                EventType::NodeCreated,
                EventType::NodeDeleted,
                EventType::NodeDataChanged,
            ],
            WatchClass::Child => &[EventType::NodeChildrenChanged, EventType::NodeDeleted],
        }
    }
}

/// Which of its watches on a path a checkWatches or removeWatches of this type names: the
/// one-shot data watch (getData / exists), the one-shot child watch, the persistent and the
/// persistent-recursive one (`Any`: all of them).
#[derive(Clone, Copy, Debug)]
pub(crate) struct WatcherBits {
    pub(crate) data: bool,
    pub(crate) child: bool,
    pub(crate) persistent: bool,
    pub(crate) recursive: bool,
}

pub(crate) fn watcher_bits(kind: ensemble_proto::proto::WatcherType) -> WatcherBits {
    use ensemble_proto::proto::WatcherType as T;
    let any = kind == T::Any;
    WatcherBits {
        data: any || kind == T::Data,
        child: any || kind == T::Children,
        persistent: any || kind == T::Persistent,
        recursive: any || kind == T::PersistentRecursive,
    }
}

/// Client `idx`'s IP address, as the server sees it (`ip` ACLs, maxClientCnxns).
pub fn client_addr(idx: usize) -> String {
    assert!(idx < 254, "a client address within 127.0.1.0/24");
    format!("127.0.1.{}", idx + 1)
}
