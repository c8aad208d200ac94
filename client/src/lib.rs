//! ensemble-client: an async ZooKeeper client over the jute codec, used by `ensemble cli` (the
//! [`cli`] module, which the `ensemble` binary runs), the interop tests and the benchmark. It
//! speaks to Ensemble and to Apache ZooKeeper alike.
//!
//! ```no_run
//! # async fn demo() -> Result<(), ensemble_client::ClientError> {
//! use ensemble_client::Client;
//! use ensemble_proto::proto::{Acl, CreateMode};
//! use std::time::Duration;
//! let zk = Client::connect("127.0.0.1:2181,127.0.0.1:2182", Duration::from_secs(10)).await?;
//! let mut events = zk.take_events().expect("first taker");
//! zk.create("/app", b"v1", Acl::open_unsafe(), CreateMode::Persistent).await?;
//! let (data, stat) = zk.get_data("/app", true).await?;
//! zk.set_data("/app", b"v2", Some(stat.version)).await?;
//! let changed = events.recv().await; // NodeDataChanged /app
//! zk.close().await?;
//! # Ok(()) }
//! ```
//!
//! One background task per client owns the connection: requests pipeline (many in flight,
//! answered in order and matched by xid), pings go out after a third of the negotiated timeout
//! of silence, and a lost connection is re-established on the next host with the same session
//! (carrying the last zxid seen), credentials re-sent and watches re-armed with setWatches.
//! Requests in flight when a connection drops fail with `ConnectionLoss`, as in ZooKeeper's
//! own client; the caller decides whether to retry.

pub mod cli;
mod hosts;
pub mod keystore;
mod paths;
mod session;
pub mod tls;
mod watches;

pub use tls::{StoreSpec, TlsOptions};

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use ensemble_proto::proto::{
    Acl, AddWatchMode, ClientInfo, CreateMode, CreateOp, KeeperError, MultiOp, OpCode, OpResult,
    ReadOp, ReadResult, Reply, Request, Response, Stat, WatchedEvent, WatcherType,
};
use tokio::sync::{mpsc, oneshot, watch};

pub use paths::validate_path;
use session::{Command, Config, Session, expect};

/// What can go wrong with a client call.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The server answered with this error.
    #[error("{0}")]
    Keeper(KeeperError),
    /// The connection dropped before the answer came; the request may or may not have run.
    #[error("connection loss")]
    ConnectionLoss,
    #[error("session expired")]
    SessionExpired,
    #[error("authentication failed")]
    AuthFailed,
    /// The client was closed.
    #[error("client closed")]
    Closed,
    /// No server of the list completed a handshake in time.
    #[error("could not connect to {0}")]
    NoServer(String),
    /// The TLS settings cannot be used (file, key or name named in the message).
    #[error("TLS: {0}")]
    Tls(String),
    #[error("bad connect string {0}")]
    BadConnectString(String),
    /// Refused before sending, with ZooKeeper's own wording.
    #[error("{0}")]
    BadPath(String),
    /// A multi rolled back: `error` at op `index`; `results` are the per-op codes.
    #[error("multi failed at op {index}: {error}")]
    MultiFailed {
        index: usize,
        error: KeeperError,
        results: Vec<OpResult>,
    },
    #[error("unexpected response to {0:?}")]
    UnexpectedResponse(OpCode),
    #[error("protocol error: {0}")]
    Protocol(String),
}

impl ClientError {
    /// ZooKeeper's code for this error, where it has one.
    pub fn keeper_code(&self) -> Option<KeeperError> {
        match self {
            ClientError::Keeper(e) => Some(*e),
            ClientError::ConnectionLoss | ClientError::NoServer(_) => {
                Some(KeeperError::ConnectionLoss)
            }
            ClientError::SessionExpired => Some(KeeperError::SessionExpired),
            ClientError::AuthFailed => Some(KeeperError::AuthFailed),
            ClientError::MultiFailed { error, .. } => Some(*error),
            ClientError::Protocol(_) | ClientError::UnexpectedResponse(_) => {
                Some(KeeperError::MarshallingError)
            }
            ClientError::BadPath(_) => Some(KeeperError::BadArguments),
            ClientError::Closed | ClientError::BadConnectString(_) | ClientError::Tls(_) => None,
        }
    }
}

/// The session as the client sees it (`ZooKeeper.States`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionState {
    Connecting,
    Connected,
    ConnectedReadOnly,
    Expired,
    AuthFailed,
    Closed,
}

impl SessionState {
    /// The name `zkCli.sh` shows in its prompt.
    pub fn java_name(self) -> &'static str {
        match self {
            SessionState::Connecting => "CONNECTING",
            SessionState::Connected => "CONNECTED",
            SessionState::ConnectedReadOnly => "CONNECTEDREADONLY",
            SessionState::Expired | SessionState::Closed => "CLOSED",
            SessionState::AuthFailed => "AUTH_FAILED",
        }
    }
    pub fn is_connected(self) -> bool {
        matches!(
            self,
            SessionState::Connected | SessionState::ConnectedReadOnly
        )
    }
    /// Closed, expired or refused: nothing more will happen on this session.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            SessionState::Expired | SessionState::AuthFailed | SessionState::Closed
        )
    }
}

/// The session's identity and what was negotiated.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionInfo {
    pub session_id: i64,
    pub passwd: Vec<u8>,
    /// The negotiated session timeout.
    pub timeout: Duration,
    pub last_zxid_seen: i64,
    /// `host:port` of the current (or last) server.
    pub server: Option<String>,
    pub read_only: bool,
}

pub(crate) struct Shared {
    state: watch::Sender<SessionState>,
    info: Mutex<SessionInfo>,
}

impl Shared {
    pub(crate) fn lock_info(&self) -> MutexGuard<'_, SessionInfo> {
        // a panic elsewhere while holding this lock leaves plain data behind: still usable
        self.info.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// How to connect.
#[derive(Clone, Debug)]
pub struct ConnectOptions {
    /// `host:port[,host:port...][/chroot]`
    pub connect_string: String,
    /// The session timeout asked for; the server clamps it.
    pub session_timeout: Duration,
    /// How long `connect` waits for the first session (default: the session timeout).
    pub connect_timeout: Option<Duration>,
    /// Accept read-only servers (`-r`).
    pub read_only: bool,
    /// Re-attach to an existing session (id, password) instead of creating one.
    pub session: Option<(i64, Vec<u8>)>,
    /// Credentials sent right after the handshake, e.g. `("digest", b"user:pw")`.
    pub auth: Vec<(String, Vec<u8>)>,
    /// Speak TLS (to a `secureClientPort`).
    pub tls: Option<TlsOptions>,
}

impl ConnectOptions {
    pub fn new(connect_string: &str, session_timeout: Duration) -> ConnectOptions {
        ConnectOptions {
            connect_string: connect_string.to_string(),
            session_timeout,
            connect_timeout: None,
            read_only: false,
            session: None,
            auth: Vec::new(),
            tls: None,
        }
    }
}

/// A ZooKeeper session. Cheap to clone; every clone drives the same session. When the last
/// clone is dropped the session is closed.
#[derive(Clone)]
pub struct Client {
    tx: mpsc::UnboundedSender<Command>,
    shared: Arc<Shared>,
    events: Arc<Mutex<Option<mpsc::UnboundedReceiver<WatchedEvent>>>>,
    chroot: Option<String>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("session", &*self.shared.lock_info())
            .finish()
    }
}

impl Client {
    /// Connects to one of `hosts` (`host:port[,host:port...][/chroot]`, tried from a random
    /// start) and establishes a new session, waiting up to `timeout` for it.
    pub async fn connect(hosts: &str, timeout: Duration) -> Result<Client, ClientError> {
        Client::connect_with(ConnectOptions::new(hosts, timeout)).await
    }

    pub async fn connect_with(opts: ConnectOptions) -> Result<Client, ClientError> {
        let client = Client::start(opts.clone())?;
        let wait = opts.connect_timeout.unwrap_or(opts.session_timeout);
        let mut state = client.shared.state.subscribe();
        let outcome = tokio::time::timeout(wait, async {
            loop {
                let s = *state.borrow_and_update();
                if s.is_connected() || s.is_terminal() {
                    return s;
                }
                if state.changed().await.is_err() {
                    return SessionState::Closed;
                }
            }
        })
        .await;
        match outcome {
            Ok(s) if s.is_connected() => Ok(client),
            Ok(SessionState::Expired) => Err(ClientError::SessionExpired),
            Ok(SessionState::AuthFailed) => Err(ClientError::AuthFailed),
            // dropping `client` ends the task
            _ => Err(ClientError::NoServer(opts.connect_string)),
        }
    }

    /// Starts the session task without waiting for a connection (ZooKeeper's constructor
    /// semantics): requests made before the handshake completes wait for it.
    pub fn start(opts: ConnectOptions) -> Result<Client, ClientError> {
        let cs = hosts::ConnectString::parse(&opts.connect_string)?;
        let (session_id, passwd) = opts.session.clone().unwrap_or((0, vec![0; 16]));
        let cfg = Config {
            hosts: cs.hosts,
            chroot: cs.chroot.clone(),
            timeout: opts.session_timeout,
            read_only: opts.read_only,
            session_id,
            passwd,
            auths: opts.auth,
            tls: opts.tls.as_ref().map(tls::Connector::new).transpose()?,
        };
        let (state, _) = watch::channel(SessionState::Connecting);
        let shared = Arc::new(Shared {
            state,
            info: Mutex::new(SessionInfo::default()),
        });
        let (tx, cmd_rx) = mpsc::unbounded_channel();
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        tokio::spawn(Session::new(cfg, shared.clone(), cmd_rx, events_tx).run());
        Ok(Client {
            tx,
            shared,
            events: Arc::new(Mutex::new(Some(events_rx))),
            chroot: cs.chroot,
        })
    }

    /// The stream of watch notifications and session events (type `None`: SyncConnected,
    /// Disconnected, Expired, AuthFailed, Closed), in the order they happened. Only the
    /// first caller gets it.
    pub fn take_events(&self) -> Option<mpsc::UnboundedReceiver<WatchedEvent>> {
        self.events.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    pub fn state(&self) -> SessionState {
        *self.shared.state.borrow()
    }

    /// A receiver that sees every state change.
    pub fn state_watcher(&self) -> watch::Receiver<SessionState> {
        self.shared.state.subscribe()
    }

    pub fn session(&self) -> SessionInfo {
        self.shared.lock_info().clone()
    }

    pub fn session_id(&self) -> i64 {
        self.shared.lock_info().session_id
    }

    pub fn negotiated_timeout(&self) -> Duration {
        self.shared.lock_info().timeout
    }

    /// Sends any request as it is (paths are not checked; the chroot is applied) and returns
    /// the server's answer. Use [`Client::close`] for closeSession.
    pub async fn request(&self, req: Request) -> Result<Reply, ClientError> {
        let req = self.map_request(req);
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Command::Request { req, tx })
            .map_err(|_| ClientError::Closed)?;
        let reply = rx.await.map_err(|_| ClientError::Closed)??;
        Ok(self.map_reply(reply))
    }

    async fn call<T>(
        &self,
        req: Request,
        f: impl FnOnce(Response) -> Option<T>,
    ) -> Result<T, ClientError> {
        let opcode = req.opcode();
        let reply = self.request(req).await?;
        expect(opcode, reply, f)
    }

    /// create (opcode 1). Returns the created path (with its sequence suffix).
    pub async fn create(
        &self,
        path: &str,
        data: &[u8],
        acl: Vec<Acl>,
        mode: CreateMode,
    ) -> Result<String, ClientError> {
        check_create_path(path, mode)?;
        let req = Request::Create {
            op: CreateOp::Create,
            path: path.to_string(),
            data: data.to_vec(),
            acl,
            mode,
            ttl: 0,
        };
        self.call(req, |r| match r {
            Response::Create { path } => Some(path),
            _ => None,
        })
        .await
    }

    /// create2 (15), or createContainer (19) / createTTL (21) as the mode requires: the path
    /// and the new node's Stat. `ttl` is milliseconds, for the TTL modes only.
    pub async fn create2(
        &self,
        path: &str,
        data: &[u8],
        acl: Vec<Acl>,
        mode: CreateMode,
        ttl: Option<i64>,
    ) -> Result<(String, Stat), ClientError> {
        check_create_path(path, mode)?;
        let op = create_op(mode, CreateOp::Create2);
        let req = Request::Create {
            op,
            path: path.to_string(),
            data: data.to_vec(),
            acl,
            mode,
            ttl: ttl.unwrap_or(0),
        };
        self.call(req, |r| match r {
            Response::Create2 { path, stat } => Some((path, stat)),
            _ => None,
        })
        .await
    }

    /// `version` None deletes whatever the version (-1).
    pub async fn delete(&self, path: &str, version: Option<i32>) -> Result<(), ClientError> {
        check_path(path)?;
        let req = Request::Delete {
            path: path.to_string(),
            version: version.unwrap_or(-1),
        };
        self.call(req, |r| matches!(r, Response::Empty).then_some(()))
            .await
    }

    /// The node's Stat, or None if it does not exist. With `watch`, a watch is left either
    /// way (data watch if it exists, exist watch if not).
    pub async fn exists(&self, path: &str, watch: bool) -> Result<Option<Stat>, ClientError> {
        check_path(path)?;
        let req = Request::Exists {
            path: path.to_string(),
            watch,
        };
        match self
            .call(req, |r| {
                if let Response::Stat(s) = r {
                    Some(s)
                } else {
                    None
                }
            })
            .await
        {
            Ok(s) => Ok(Some(s)),
            Err(ClientError::Keeper(KeeperError::NoNode)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// ZooKeeperAdmin's reconfig (opcode 16): incremental (`joining` server specs
    /// `server.N=host:quorumPort:electionPort[:role];[clientHost:]clientPort`, comma-separated,
    /// and `leaving` ids) or a whole new member list (`new_members`); `from_config` is the
    /// configuration version it applies to (`None`: any). Returns the new configuration's
    /// text, as `/zookeeper/config` holds it, and that node's Stat.
    pub async fn reconfig(
        &self,
        joining: &str,
        leaving: &str,
        new_members: &str,
        from_config: Option<i64>,
    ) -> Result<(Vec<u8>, Stat), ClientError> {
        let req = Request::Reconfig {
            joining: joining.to_string(),
            leaving: leaving.to_string(),
            new_members: new_members.to_string(),
            from_config: from_config.unwrap_or(-1),
        };
        self.call(req, |r| match r {
            Response::GetData { data, stat } => Some((data, stat)),
            Response::GetDataNull { stat } => Some((Vec::new(), stat)),
            _ => None,
        })
        .await
    }

    /// The node's data (null data reads as empty; see `get_data_or_null`) and Stat.
    pub async fn get_data(&self, path: &str, watch: bool) -> Result<(Vec<u8>, Stat), ClientError> {
        let (data, stat) = self.get_data_or_null(path, watch).await?;
        Ok((data.unwrap_or_default(), stat))
    }

    /// The node's data, `None` when it is null (created or set with null data, as zkCli's
    /// `create /x` does), and its Stat.
    pub async fn get_data_or_null(
        &self,
        path: &str,
        watch: bool,
    ) -> Result<(Option<Vec<u8>>, Stat), ClientError> {
        check_path(path)?;
        let req = Request::GetData {
            path: path.to_string(),
            watch,
        };
        self.call(req, |r| match r {
            Response::GetData { data, stat } => Some((Some(data), stat)),
            Response::GetDataNull { stat } => Some((None, stat)),
            _ => None,
        })
        .await
    }

    /// create as zkCli does it: opcode create (1), or createContainer / createTTL as the mode
    /// requires, with `None` data sent as a null buffer. Returns the created path.
    pub async fn create_with(
        &self,
        path: &str,
        data: Option<&[u8]>,
        acl: Vec<Acl>,
        mode: CreateMode,
        ttl: Option<i64>,
    ) -> Result<String, ClientError> {
        check_create_path(path, mode)?;
        let op = create_op(mode, CreateOp::Create);
        let req = Request::Create {
            op,
            path: path.to_string(),
            data: data.unwrap_or_default().to_vec(),
            acl,
            mode,
            ttl: ttl.unwrap_or(0),
        };
        let req = match data {
            Some(_) => req,
            None => Request::NullData {
                request: Box::new(req),
                ops: vec![0],
            },
        };
        self.call(req, |r| match r {
            Response::Create { path } | Response::Create2 { path, .. } => Some(path),
            _ => None,
        })
        .await
    }

    pub async fn set_data(
        &self,
        path: &str,
        data: &[u8],
        version: Option<i32>,
    ) -> Result<Stat, ClientError> {
        check_path(path)?;
        let req = Request::SetData {
            path: path.to_string(),
            data: data.to_vec(),
            version: version.unwrap_or(-1),
        };
        self.call(req, |r| {
            if let Response::Stat(s) = r {
                Some(s)
            } else {
                None
            }
        })
        .await
    }

    pub async fn get_acl(&self, path: &str) -> Result<(Vec<Acl>, Stat), ClientError> {
        check_path(path)?;
        let req = Request::GetAcl {
            path: path.to_string(),
        };
        self.call(req, |r| match r {
            Response::GetAcl { acl, stat } => Some((acl, stat)),
            _ => None,
        })
        .await
    }

    pub async fn set_acl(
        &self,
        path: &str,
        acl: Vec<Acl>,
        version: Option<i32>,
    ) -> Result<Stat, ClientError> {
        check_path(path)?;
        let req = Request::SetAcl {
            path: path.to_string(),
            acl,
            version: version.unwrap_or(-1),
        };
        self.call(req, |r| {
            if let Response::Stat(s) = r {
                Some(s)
            } else {
                None
            }
        })
        .await
    }

    /// getChildren (8).
    pub async fn get_children(&self, path: &str, watch: bool) -> Result<Vec<String>, ClientError> {
        check_path(path)?;
        let req = Request::GetChildren {
            path: path.to_string(),
            watch,
        };
        self.call(req, |r| match r {
            Response::GetChildren { children } => Some(children),
            _ => None,
        })
        .await
    }

    /// getChildren2 (12): the children and the parent's Stat.
    pub async fn get_children2(
        &self,
        path: &str,
        watch: bool,
    ) -> Result<(Vec<String>, Stat), ClientError> {
        check_path(path)?;
        let req = Request::GetChildren2 {
            path: path.to_string(),
            watch,
        };
        self.call(req, |r| match r {
            Response::GetChildren2 { children, stat } => Some((children, stat)),
            _ => None,
        })
        .await
    }

    /// sync: returns once the server this client talks to has caught up with the leader.
    pub async fn sync(&self, path: &str) -> Result<String, ClientError> {
        check_path(path)?;
        let req = Request::Sync {
            path: path.to_string(),
        };
        self.call(req, |r| {
            if let Response::Sync { path } = r {
                Some(path)
            } else {
                None
            }
        })
        .await
    }

    /// A transaction: all ops commit or none. A rollback is `MultiFailed` with the first
    /// failing op and every op's result code.
    pub async fn multi(&self, ops: Vec<MultiOp>) -> Result<Vec<OpResult>, ClientError> {
        for op in &ops {
            match op {
                MultiOp::Create { path, mode, .. } => check_create_path(path, *mode)?,
                MultiOp::Delete { path, .. }
                | MultiOp::SetData { path, .. }
                | MultiOp::Check { path, .. } => check_path(path)?,
            }
        }
        let results = self
            .call(Request::Multi(ops), |r| {
                if let Response::Multi(v) = r {
                    Some(v)
                } else {
                    None
                }
            })
            .await?;
        let failed = results.iter().enumerate().find_map(|(i, r)| match r {
            OpResult::Error(code) if *code != 0 => Some((i, *code)),
            _ => None,
        });
        match failed {
            None => Ok(results),
            Some((index, code)) => Err(ClientError::MultiFailed {
                index,
                error: KeeperError::from_code(code).unwrap_or(KeeperError::SystemError),
                results,
            }),
        }
    }

    /// Several reads answered together; each op succeeds or fails on its own.
    pub async fn multi_read(&self, ops: Vec<ReadOp>) -> Result<Vec<ReadResult>, ClientError> {
        for op in &ops {
            match op {
                ReadOp::GetChildren { path } | ReadOp::GetData { path } => check_path(path)?,
            }
        }
        self.call(Request::MultiRead(ops), |r| {
            if let Response::MultiRead(v) = r {
                Some(v)
            } else {
                None
            }
        })
        .await
    }

    /// A persistent (optionally recursive) watch; it stays until removed.
    pub async fn add_watch(&self, path: &str, mode: AddWatchMode) -> Result<(), ClientError> {
        check_path(path)?;
        let req = Request::AddWatch {
            path: path.to_string(),
            mode,
        };
        self.call(req, |r| matches!(r, Response::Empty).then_some(()))
            .await
    }

    /// Asks the server whether this session has a watch of `kind` on `path` (NoWatcher if not).
    pub async fn check_watches(&self, path: &str, kind: WatcherType) -> Result<(), ClientError> {
        check_path(path)?;
        let req = Request::CheckWatches {
            path: path.to_string(),
            kind,
        };
        self.call(req, |r| matches!(r, Response::Empty).then_some(()))
            .await
    }

    /// Removes this session's watches of `kind` on `path`; with `local`, forgets them on the
    /// client side too when the server cannot be asked. Removed watches are reported on the
    /// event stream as DataWatchRemoved / ChildWatchRemoved / PersistentWatchRemoved.
    pub async fn remove_watches(
        &self,
        path: &str,
        kind: WatcherType,
        local: bool,
    ) -> Result<(), ClientError> {
        check_path(path)?;
        let req = Request::RemoveWatches {
            path: path.to_string(),
            kind,
        };
        match self
            .call(req, |r| matches!(r, Response::Empty).then_some(()))
            .await
        {
            Err(ClientError::ConnectionLoss) if local => {
                let (tx, rx) = oneshot::channel();
                let path = paths::to_server(self.chroot.as_deref(), path);
                self.tx
                    .send(Command::RemoveLocal { path, kind, tx })
                    .map_err(|_| ClientError::Closed)?;
                rx.await.map_err(|_| ClientError::Closed)?
            }
            other => other,
        }
    }

    /// This session's ephemeral nodes under `prefix` ("/" for all).
    pub async fn get_ephemerals(&self, prefix: &str) -> Result<Vec<String>, ClientError> {
        check_path(prefix)?;
        let req = Request::GetEphemerals {
            prefix: prefix.to_string(),
        };
        self.call(req, |r| match r {
            Response::GetEphemerals { paths } => Some(paths),
            _ => None,
        })
        .await
    }

    /// How many nodes are below `path`, at any depth.
    pub async fn get_all_children_number(&self, path: &str) -> Result<i32, ClientError> {
        check_path(path)?;
        let req = Request::GetAllChildrenNumber {
            path: path.to_string(),
        };
        self.call(req, |r| {
            if let Response::AllChildrenNumber(n) = r {
                Some(n)
            } else {
                None
            }
        })
        .await
    }

    /// The identities the server associates with this session.
    pub async fn who_am_i(&self) -> Result<Vec<ClientInfo>, ClientError> {
        self.call(Request::WhoAmI, |r| {
            if let Response::WhoAmI(v) = r {
                Some(v)
            } else {
                None
            }
        })
        .await
    }

    /// Adds credentials, e.g. `add_auth("digest", b"user:password")`. They are re-sent on
    /// every reconnect. A refusal ends the session (AuthFailed), as in ZooKeeper.
    pub async fn add_auth(&self, scheme: &str, auth: &[u8]) -> Result<(), ClientError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Command::AddAuth {
                scheme: scheme.to_string(),
                auth: auth.to_vec(),
                tx,
            })
            .map_err(|_| ClientError::Closed)?;
        rx.await.map_err(|_| ClientError::Closed)?
    }

    /// Closes the session (closeSession): its ephemeral nodes go at once.
    pub async fn close(&self) -> Result<(), ClientError> {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Command::Close { tx }).is_err() {
            return Ok(());
        }
        rx.await.unwrap_or(Ok(()))
    }

    fn map_request(&self, mut req: Request) -> Request {
        let Some(root) = self.chroot.as_deref() else {
            return req;
        };
        // Every request names its paths in one of these fields; each is put under the root in
        // place, so that the rest of the request passes through untouched.
        let m = |p: &mut String| *p = paths::to_server(Some(root), p);
        match &mut req {
            Request::Create { path, .. }
            | Request::Delete { path, .. }
            | Request::Exists { path, .. }
            | Request::GetData { path, .. }
            | Request::SetData { path, .. }
            | Request::GetAcl { path }
            | Request::SetAcl { path, .. }
            | Request::GetChildren { path, .. }
            | Request::GetChildren2 { path, .. }
            | Request::Sync { path }
            | Request::Check { path, .. }
            | Request::GetAllChildrenNumber { path }
            | Request::AddWatch { path, .. }
            | Request::CheckWatches { path, .. }
            | Request::RemoveWatches { path, .. }
            | Request::GetEphemerals { prefix: path } => m(path),
            Request::Multi(ops) => {
                for op in ops {
                    match op {
                        MultiOp::Create { path, .. }
                        | MultiOp::Delete { path, .. }
                        | MultiOp::SetData { path, .. }
                        | MultiOp::Check { path, .. } => m(path),
                    }
                }
            }
            Request::MultiRead(ops) => {
                for op in ops {
                    match op {
                        ReadOp::GetChildren { path } | ReadOp::GetData { path } => m(path),
                    }
                }
            }
            Request::SetWatches {
                data,
                exist,
                child,
                persistent,
                persistent_recursive,
                ..
            } => {
                for list in [data, exist, child, persistent, persistent_recursive] {
                    list.iter_mut().for_each(m);
                }
            }
            _ => {}
        }
        req
    }

    fn map_reply(&self, reply: Reply) -> Reply {
        let Some(root) = self.chroot.as_deref() else {
            return reply;
        };
        let m = |p: String| paths::from_server(Some(root), &p);
        reply.map(|resp| match resp {
            Response::Create { path } => Response::Create { path: m(path) },
            Response::Create2 { path, stat } => Response::Create2 {
                path: m(path),
                stat,
            },
            Response::Sync { path } => Response::Sync { path: m(path) },
            Response::GetEphemerals { paths } => Response::GetEphemerals {
                paths: paths.into_iter().map(m).collect(),
            },
            Response::Multi(results) => Response::Multi(
                results
                    .into_iter()
                    .map(|r| match r {
                        OpResult::Create { path, stat } => OpResult::Create {
                            path: m(path),
                            stat,
                        },
                        other => other,
                    })
                    .collect(),
            ),
            other => other,
        })
    }
}

fn check_path(path: &str) -> Result<(), ClientError> {
    validate_path(path).map_err(ClientError::BadPath)
}

/// Sequential creates may end in '/': the server appends the counter (as
/// `PathUtils.validatePath(path, isSequential)`).
/// The create opcode a mode needs: TTL and container nodes have their own, else `plain`.
fn create_op(mode: CreateMode, plain: CreateOp) -> CreateOp {
    if mode.is_ttl() {
        CreateOp::Ttl
    } else if mode.is_container() {
        CreateOp::Container
    } else {
        plain
    }
}

fn check_create_path(path: &str, mode: CreateMode) -> Result<(), ClientError> {
    if mode.is_sequential() {
        validate_path(&format!("{path}1")).map_err(ClientError::BadPath)
    } else {
        check_path(path)
    }
}
