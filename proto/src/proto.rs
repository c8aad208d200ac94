//! The client protocol's vocabulary as plain Rust values: requests, responses, errors, Stat,
//! ACLs, watch events. Numeric codes are ZooKeeper's (`ZooDefs.java`, `KeeperException.java`,
//! `Watcher.java`, `CreateMode.java`). The byte encoding lives in [`crate::jute`].

use serde::{Deserialize, Serialize};

pub type SessionId = i64;

/// A fieldless enum of ZooKeeper's numeric codes and its decoder (`code -> Option<Self>`), from
/// one table: each code is written once, so the two directions cannot disagree.
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident, decoded by $decode:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $code:literal, )*
        }
    ) => {
        $(#[$meta])*
        pub enum $name {
            $( $(#[$vmeta])* $variant = $code, )*
        }

        impl $name {
            pub fn $decode(v: i32) -> Option<$name> {
                match v {
                    $( $code => Some($name::$variant), )*
                    _ => None,
                }
            }
        }
    };
}

wire_enum! {
    /// `ZooDefs.OpCode`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
    #[repr(i32)]
    pub enum OpCode, decoded by from_i32 {
        Notification = 0,
        Create = 1,
        Delete = 2,
        Exists = 3,
        GetData = 4,
        SetData = 5,
        GetAcl = 6,
        SetAcl = 7,
        GetChildren = 8,
        Sync = 9,
        Ping = 11,
        GetChildren2 = 12,
        Check = 13,
        Multi = 14,
        Create2 = 15,
        Reconfig = 16,
        CheckWatches = 17,
        RemoveWatches = 18,
        CreateContainer = 19,
        DeleteContainer = 20,
        CreateTtl = 21,
        MultiRead = 22,
        Auth = 100,
        SetWatches = 101,
        Sasl = 102,
        GetEphemerals = 103,
        GetAllChildrenNumber = 104,
        SetWatches2 = 105,
        AddWatch = 106,
        WhoAmI = 107,
        CreateSession = -10,
        CloseSession = -11,
        Error = -1,
    }
}

wire_enum! {
    /// `KeeperException.Code`. `Ok` is never carried in an `Err`; it exists for multi results.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, thiserror::Error)]
    #[repr(i32)]
    pub enum KeeperError, decoded by from_code {
        #[error("system error")]
        SystemError = -1,
        #[error("runtime inconsistency")]
        RuntimeInconsistency = -2,
        #[error("data inconsistency")]
        DataInconsistency = -3,
        #[error("connection loss")]
        ConnectionLoss = -4,
        #[error("marshalling error")]
        MarshallingError = -5,
        #[error("unimplemented")]
        Unimplemented = -6,
        #[error("operation timeout")]
        OperationTimeout = -7,
        #[error("bad arguments")]
        BadArguments = -8,
        #[error("unknown session")]
        UnknownSession = -12,
        #[error("new config no quorum")]
        NewConfigNoQuorum = -13,
        #[error("reconfig in progress")]
        ReconfigInProgress = -14,
        #[error("API error")]
        ApiError = -100,
        #[error("no node")]
        NoNode = -101,
        #[error("not authenticated")]
        NoAuth = -102,
        #[error("bad version")]
        BadVersion = -103,
        #[error("ephemerals cannot have children")]
        NoChildrenForEphemerals = -108,
        #[error("node exists")]
        NodeExists = -110,
        #[error("directory not empty")]
        NotEmpty = -111,
        #[error("session expired")]
        SessionExpired = -112,
        #[error("invalid callback")]
        InvalidCallback = -113,
        #[error("invalid ACL")]
        InvalidAcl = -114,
        #[error("authentication failed")]
        AuthFailed = -115,
        #[error("session moved")]
        SessionMoved = -118,
        #[error("not a read-only call")]
        NotReadOnly = -119,
        #[error("ephemeral on local session")]
        EphemeralOnLocalSession = -120,
        #[error("no watcher")]
        NoWatcher = -121,
        #[error("request timeout")]
        RequestTimeout = -122,
        #[error("reconfig disabled")]
        ReconfigDisabled = -123,
        #[error("session closed because client failed to authenticate")]
        SessionClosedRequireSaslAuth = -124,
        #[error("quota exceeded")]
        QuotaExceeded = -125,
        #[error("throttled")]
        Throttled = -127,
    }
}

impl KeeperError {
    pub fn code(self) -> i32 {
        self as i32
    }
}

wire_enum! {
    /// `CreateMode`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
    pub enum CreateMode, decoded by from_flags {
        Persistent = 0,
        Ephemeral = 1,
        PersistentSequential = 2,
        EphemeralSequential = 3,
        Container = 4,
        PersistentWithTtl = 5,
        PersistentSequentialWithTtl = 6,
    }
}

impl CreateMode {
    pub fn is_ephemeral(self) -> bool {
        matches!(
            self,
            CreateMode::Ephemeral | CreateMode::EphemeralSequential
        )
    }
    pub fn is_sequential(self) -> bool {
        matches!(
            self,
            CreateMode::PersistentSequential
                | CreateMode::EphemeralSequential
                | CreateMode::PersistentSequentialWithTtl
        )
    }
    pub fn is_container(self) -> bool {
        self == CreateMode::Container
    }
    pub fn is_ttl(self) -> bool {
        matches!(
            self,
            CreateMode::PersistentWithTtl | CreateMode::PersistentSequentialWithTtl
        )
    }
}

/// Which flavour of create the client sent: decides the response shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CreateOp {
    /// opcode 1: response is the path only
    Create,
    /// opcode 15: path and Stat
    Create2,
    /// opcode 19: path and Stat
    Container,
    /// opcode 21: path and Stat
    Ttl,
}

/// `data.Stat`, in wire order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Stat {
    pub czxid: i64,
    pub mzxid: i64,
    pub ctime: i64,
    pub mtime: i64,
    pub version: i32,
    pub cversion: i32,
    pub aversion: i32,
    pub ephemeral_owner: i64,
    pub data_length: i32,
    pub num_children: i32,
    pub pzxid: i64,
}

/// `ZooDefs.Perms` bits.
pub mod perms {
    pub const READ: i32 = 1;
    pub const WRITE: i32 = 2;
    pub const CREATE: i32 = 4;
    pub const DELETE: i32 = 8;
    pub const ADMIN: i32 = 16;
    pub const ALL: i32 = READ | WRITE | CREATE | DELETE | ADMIN;
}

/// `data.Id`: an authentication scheme and an identity within it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Id {
    pub scheme: String,
    pub id: String,
}

impl Id {
    pub fn new(scheme: &str, id: &str) -> Id {
        Id {
            scheme: scheme.to_string(),
            id: id.to_string(),
        }
    }
    pub fn anyone() -> Id {
        Id::new("world", "anyone")
    }
}

/// `data.ACL`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Acl {
    pub perms: i32,
    pub id: Id,
}

impl Acl {
    /// `ZooDefs.Ids.OPEN_ACL_UNSAFE`
    pub fn open_unsafe() -> Vec<Acl> {
        vec![Acl {
            perms: perms::ALL,
            id: Id::anyone(),
        }]
    }
}

wire_enum! {
    /// `Watcher.Event.EventType`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
    pub enum EventType, decoded by from_i32 {
        None = -1,
        NodeCreated = 1,
        NodeDeleted = 2,
        NodeDataChanged = 3,
        NodeChildrenChanged = 4,
        DataWatchRemoved = 5,
        ChildWatchRemoved = 6,
        PersistentWatchRemoved = 7,
    }
}

wire_enum! {
    /// `Watcher.Event.KeeperState`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
    pub enum KeeperState, decoded by from_i32 {
        Disconnected = 0,
        SyncConnected = 3,
        AuthFailed = 4,
        ConnectedReadOnly = 5,
        SaslAuthenticated = 6,
        Expired = -112,
        Closed = 7,
    }
}

/// A notification sent with xid -1.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct WatchedEvent {
    pub kind: EventType,
    pub state: KeeperState,
    pub path: String,
}

wire_enum! {
    /// `Watcher.WatcherType` as used by checkWatches/removeWatches.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
    pub enum WatcherType, decoded by from_i32 {
        Children = 1,
        Data = 2,
        Any = 3,
        Persistent = 4,
        PersistentRecursive = 5,
    }
}

wire_enum! {
    /// `AddWatchMode`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
    pub enum AddWatchMode, decoded by from_i32 {
        Persistent = 0,
        PersistentRecursive = 1,
    }
}

/// `ConnectRequest` (the handshake frame, no header).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectRequest {
    pub protocol_version: i32,
    pub last_zxid_seen: i64,
    pub timeout_ms: i32,
    pub session_id: SessionId,
    #[serde(with = "serde_bytes")]
    pub passwd: Vec<u8>,
    /// `None` when an old client left the byte out; echo the same shape back.
    pub read_only: Option<bool>,
}

/// `ConnectResponse`. A `session_id` of 0 with `timeout_ms` 0 tells the client its session
/// expired.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectResponse {
    pub protocol_version: i32,
    pub timeout_ms: i32,
    pub session_id: SessionId,
    #[serde(with = "serde_bytes")]
    pub passwd: Vec<u8>,
    pub read_only: Option<bool>,
}

/// One operation inside a `multi` (opcode 14).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MultiOp {
    Create {
        op: CreateOp,
        path: String,
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
        acl: Vec<Acl>,
        mode: CreateMode,
        ttl: i64,
    },
    Delete {
        path: String,
        version: i32,
    },
    SetData {
        path: String,
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
        version: i32,
    },
    Check {
        path: String,
        version: i32,
    },
}

/// One operation inside a `multiRead` (opcode 22).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReadOp {
    GetChildren { path: String },
    GetData { path: String },
}

/// A client request after its header. `watch` flags register one-shot watches.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    Create {
        op: CreateOp,
        path: String,
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
        acl: Vec<Acl>,
        mode: CreateMode,
        ttl: i64,
    },
    Delete {
        path: String,
        version: i32,
    },
    Exists {
        path: String,
        watch: bool,
    },
    GetData {
        path: String,
        watch: bool,
    },
    SetData {
        path: String,
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
        version: i32,
    },
    GetAcl {
        path: String,
    },
    SetAcl {
        path: String,
        acl: Vec<Acl>,
        version: i32,
    },
    GetChildren {
        path: String,
        watch: bool,
    },
    GetChildren2 {
        path: String,
        watch: bool,
    },
    Sync {
        path: String,
    },
    Check {
        path: String,
        version: i32,
    },
    Multi(Vec<MultiOp>),
    MultiRead(Vec<ReadOp>),
    GetEphemerals {
        prefix: String,
    },
    GetAllChildrenNumber {
        path: String,
    },
    AddWatch {
        path: String,
        mode: AddWatchMode,
    },
    CheckWatches {
        path: String,
        kind: WatcherType,
    },
    RemoveWatches {
        path: String,
        kind: WatcherType,
    },
    /// setWatches (101) has no persistent lists; setWatches2 (105) has them.
    SetWatches {
        relative_zxid: i64,
        data: Vec<String>,
        exist: Vec<String>,
        child: Vec<String>,
        persistent: Vec<String>,
        persistent_recursive: Vec<String>,
        v2: bool,
    },
    Auth {
        scheme: String,
        #[serde(with = "serde_bytes")]
        auth: Vec<u8>,
    },
    WhoAmI,
    Ping,
    CloseSession,
    /// A create, setData or multi some of whose data buffers were null (length -1) on the
    /// wire, which ZooKeeper keeps apart from empty data (getData then answers null): `ops`
    /// are the indexes of those ops (0 for a lone create or setData). Only the decoder makes
    /// it; everything else looks through it.
    NullData {
        request: Box<Request>,
        ops: Vec<u32>,
    },
    /// ZooKeeper's ReconfigRequest (opcode 16): incremental (`joining` / `leaving`: comma-separated
    /// server specs / ids) or non-incremental (`new_members`); a null string reads as empty.
    /// Last, so that logged requests keep their variant numbers.
    /// `from_config` is the config version it applies to, -1 for any. Answered as getData of
    /// /zookeeper/config (the new config and its Stat).
    Reconfig {
        joining: String,
        leaving: String,
        new_members: String,
        from_config: i64,
    },
}

impl Request {
    pub fn opcode(&self) -> OpCode {
        match self {
            Request::Create { op, .. } => match op {
                CreateOp::Create => OpCode::Create,
                CreateOp::Create2 => OpCode::Create2,
                CreateOp::Container => OpCode::CreateContainer,
                CreateOp::Ttl => OpCode::CreateTtl,
            },
            Request::Delete { .. } => OpCode::Delete,
            Request::Exists { .. } => OpCode::Exists,
            Request::GetData { .. } => OpCode::GetData,
            Request::SetData { .. } => OpCode::SetData,
            Request::GetAcl { .. } => OpCode::GetAcl,
            Request::SetAcl { .. } => OpCode::SetAcl,
            Request::GetChildren { .. } => OpCode::GetChildren,
            Request::GetChildren2 { .. } => OpCode::GetChildren2,
            Request::Sync { .. } => OpCode::Sync,
            Request::Check { .. } => OpCode::Check,
            Request::Multi(_) => OpCode::Multi,
            Request::MultiRead(_) => OpCode::MultiRead,
            Request::GetEphemerals { .. } => OpCode::GetEphemerals,
            Request::GetAllChildrenNumber { .. } => OpCode::GetAllChildrenNumber,
            Request::AddWatch { .. } => OpCode::AddWatch,
            Request::CheckWatches { .. } => OpCode::CheckWatches,
            Request::RemoveWatches { .. } => OpCode::RemoveWatches,
            Request::SetWatches { v2, .. } => {
                if *v2 {
                    OpCode::SetWatches2
                } else {
                    OpCode::SetWatches
                }
            }
            Request::Auth { .. } => OpCode::Auth,
            Request::WhoAmI => OpCode::WhoAmI,
            Request::Ping => OpCode::Ping,
            Request::CloseSession => OpCode::CloseSession,
            Request::Reconfig { .. } => OpCode::Reconfig,
            Request::NullData { request, .. } => request.opcode(),
        }
    }

    /// Writes go through the leader and consensus; everything else is answered locally.
    pub fn is_write(&self) -> bool {
        matches!(
            self,
            Request::Create { .. }
                | Request::Delete { .. }
                | Request::SetData { .. }
                | Request::SetAcl { .. }
                | Request::Check { .. }
                | Request::Multi(_)
                | Request::CloseSession
                | Request::Reconfig { .. }
                | Request::NullData { .. }
        )
    }
}

/// The result of one op of a multi, as `MultiResponse` carries it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OpResult {
    /// create (1) answers with the path; create2/container/ttl with path and Stat.
    Create {
        path: String,
        stat: Option<Stat>,
    },
    Delete,
    SetData(Stat),
    Check,
    /// ZooKeeper's ErrorResult: on rollback every op reports one (0 for ops that would have
    /// succeeded, the real code for the one that failed, RuntimeInconsistency after it).
    Error(i32),
}

/// The result of one op of a multiRead.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReadResult {
    GetChildren(Vec<String>),
    GetData {
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
        stat: Stat,
    },
    /// getData of a znode whose data is null: the buffer is length -1 on the wire.
    GetDataNull {
        stat: Stat,
    },
    Error(KeeperError),
}

/// `ClientInfo` of whoAmI.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientInfo {
    pub auth_scheme: String,
    pub user: String,
}

/// A successful reply body. Errors travel as `Err(KeeperError)` in [`Reply`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// create (1)
    Create {
        path: String,
    },
    /// create2 (15), createContainer (19), createTTL (21)
    Create2 {
        path: String,
        stat: Stat,
    },
    /// exists, setData, setACL
    Stat(Stat),
    GetData {
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
        stat: Stat,
    },
    /// getData of a znode whose data is null: the buffer is length -1 on the wire.
    GetDataNull {
        stat: Stat,
    },
    GetAcl {
        acl: Vec<Acl>,
        stat: Stat,
    },
    GetChildren {
        children: Vec<String>,
    },
    GetChildren2 {
        children: Vec<String>,
        stat: Stat,
    },
    Sync {
        path: String,
    },
    /// multi: a failed multi is still `Ok(Multi(..))` with `OpResult::Error`s; the reply
    /// header's err stays 0, as the recorded ZooKeeper 3.8 frames show.
    Multi(Vec<OpResult>),
    MultiRead(Vec<ReadResult>),
    GetEphemerals {
        paths: Vec<String>,
    },
    AllChildrenNumber(i32),
    WhoAmI(Vec<ClientInfo>),
    /// delete, check, setWatches, addWatch, removeWatches, checkWatches, auth, ping,
    /// closeSession: a header and no body.
    Empty,
}

pub type Reply = Result<Response, KeeperError>;
