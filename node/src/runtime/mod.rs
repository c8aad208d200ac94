//! The node runtime: a thin interpreter around one core [`Server`].
//!
//! One OS thread (`core`) owns the `Server` and the storage handle: it feeds events in and
//! drives the `Ready` that comes out (`ensemble_core::effect`): durable writes to the disk
//! before the sends and replies that depend on them. Sockets live on a small tokio runtime; they
//! talk to the core thread through one bounded channel (so a flood of requests slows the
//! readers, never the core) and the core thread answers through per-connection queues it only
//! ever `try_send`s to (so a slow reader never stalls it). The txn log's writer thread reports
//! durability on its own channel. There is no protocol logic here.

mod client_port;
pub mod clients;
mod core_loop;
mod disk;
mod outbox;
pub mod peers;
pub(crate) mod quorum_view;
mod snap_send;
mod throttler;
pub mod wire;

use crate::config::NodeConfig;
use crate::storage::log::LogEvent;
use crate::storage::{Storage, StorageError, StorageOptions};
use ensemble_core::server::RecoverError;
use ensemble_core::{ConnId, PeerMsg, Server, ServerId};
use ensemble_proto::proto::ConnectRequest;
use ensemble_proto::proto::Request;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use tokio::sync::{mpsc, oneshot};
use wire::Channel;

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    // The io error is in the message and not a `source`, so `{:#}` does not print it twice.
    #[error("cannot listen on {what} ({addr}): {io}")]
    Bind {
        what: String,
        addr: String,
        io: std::io::Error,
    },
    /// A TLS setting whose stores do not load (names the setting and the file).
    #[error("{0}")]
    Tls(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("recovering the data tree: {0}")]
    Recover(#[from] RecoverError),
    #[error("{0}")]
    Fatal(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// A peer's outbound links: election, quorum, and what the quorum one has yet to write.
pub(crate) type Senders = (
    mpsc::UnboundedSender<peers::OutCmd>,
    mpsc::UnboundedSender<peers::OutCmd>,
    Arc<peers::Backlog>,
);

/// Everything the socket tasks tell the core thread.
pub enum Input {
    PeerOpened {
        sid: ServerId,
        channel: Channel,
        generation: u64,
        kill: oneshot::Sender<()>,
        /// The peer's end of the connection it dialled (a learner's, on a leader).
        addr: SocketAddr,
    },
    /// A server outside the configuration dialled in and said where it listens
    /// (`host:quorumPort:electionPort`): linked back, so that it can sync as a non-voter.
    Guest {
        sid: ServerId,
        addr: String,
    },
    /// Every whole frame one read of the connection delivered, in order.
    PeerMsgs {
        sid: ServerId,
        channel: Channel,
        generation: u64,
        msgs: Vec<PeerMsg>,
    },
    PeerClosed {
        sid: ServerId,
        channel: Channel,
        generation: u64,
    },
    OutboundBroken {
        sid: ServerId,
        channel: Channel,
        epoch: u64,
    },
    ClientOpened {
        conn: ConnId,
        addr: SocketAddr,
        tx: mpsc::Sender<Outgoing>,
        kill: oneshot::Sender<()>,
        queued: Arc<AtomicUsize>,
    },
    ClientConnect {
        conn: ConnId,
        request: ConnectRequest,
        size: usize,
    },
    /// Every whole request one read of the connection delivered, in order: (xid, request,
    /// frame size).
    ClientRequests {
        conn: ConnId,
        requests: Vec<(i32, Request, usize)>,
    },
    /// A request that did not decode but is answered as ZooKeeper answers it.
    ClientRefused {
        conn: ConnId,
        xid: i32,
        opcode: ensemble_proto::proto::OpCode,
        reply: ensemble_proto::proto::Reply,
        close: bool,
        size: usize,
    },
    ClientClosed {
        conn: ConnId,
    },
    /// The connection's task established an identity (a SASL exchange completed).
    ClientAuthenticated {
        conn: ConnId,
        id: ensemble_proto::proto::Id,
    },
    FourLetter {
        word: &'static str,
        addr: SocketAddr,
        reply: oneshot::Sender<String>,
    },
    /// An AdminServer command, by its primary name.
    Admin {
        command: &'static str,
        params: std::collections::BTreeMap<String, String>,
        reply: oneshot::Sender<crate::admin::json::Json>,
    },
    /// `snapshot`/`restore` for a caller with these ids: authorised against `/`, then the
    /// snapshot taken (restore only authorised).
    AdminGuarded {
        command: &'static str,
        ids: Vec<ensemble_proto::proto::Id>,
        reply: oneshot::Sender<crate::admin::backup::Taken>,
    },
    /// A scrape of `/metrics`.
    Metrics {
        reply: oneshot::Sender<Vec<crate::metrics::monitor::Sample>>,
    },
    /// `zk-observe`: what the observer of Apache ZooKeeper's leader tells
    /// the core (`ensemble_core::foreign`).
    Foreign(ensemble_core::foreign::Foreign),
    Shutdown,
}

/// What the core thread queues to a client connection.
pub enum Outgoing {
    /// Whole encoded frames.
    Bytes(Vec<u8>),
    /// Flush what is queued, then close. Carries the connection's kill switch so that it is
    /// not tripped before the flush.
    Close(Option<oneshot::Sender<()>>),
}

/// A client address as ZooKeeper logs it: `/ip:port`, IPv4-mapped addresses shown as IPv4.
pub fn show(addr: SocketAddr) -> String {
    format!("/{}:{}", addr.ip().to_canonical(), addr.port())
}

/// Wall-clock milliseconds that never go backwards (monotonic-derived after start).
#[derive(Clone, Copy)]
pub struct Clock {
    wall0: u64,
    mono0: std::time::Instant,
}

impl Clock {
    pub fn new() -> Clock {
        let wall0 = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        Clock {
            wall0,
            mono0: std::time::Instant::now(),
        }
    }
    pub fn now(&self) -> u64 {
        self.wall0 + self.mono0.elapsed().as_millis() as u64
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

fn bind_error(what: &str, addr: String, source: std::io::Error) -> RuntimeError {
    RuntimeError::Bind {
        what: what.to_string(),
        addr,
        io: source,
    }
}

/// The client port: a concrete address if configured, else every address (IPv6 dual-stack
/// when the host has IPv6, as the JVM's wildcard bind is).
fn bind_client(cfg: &NodeConfig) -> Result<std::net::TcpListener, RuntimeError> {
    let port = cfg.client_port;
    let what = format!("client port {port}");
    let listener = match cfg.client_address.as_deref() {
        Some(a) if a != "0.0.0.0" && a != "::" => std::net::TcpListener::bind((a, port))
            .map_err(|e| bind_error(&what, format!("{a}:{port}"), e))?,
        _ => bind_any(port).map_err(|e| bind_error(&what, format!("0.0.0.0:{port}"), e))?,
    };
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// Every address of the machine: IPv6 dual-stack when the host has IPv6, else IPv4.
fn bind_any(port: u16) -> std::io::Result<std::net::TcpListener> {
    let l = match bind_dual_stack(port) {
        Ok(l) => l,
        Err(_) => std::net::TcpListener::bind(("0.0.0.0", port))?,
    };
    l.set_nonblocking(true)?;
    Ok(l)
}

fn bind_dual_stack(port: u16) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::IPV6, Type::STREAM, None)?;
    s.set_only_v6(false)?;
    s.set_reuse_address(true)?;
    let addr: SocketAddr = (std::net::Ipv6Addr::UNSPECIFIED, port).into();
    s.bind(&addr.into())?;
    s.listen(1024)?;
    Ok(s.into())
}

/// A quorum or election port on the address of our own server line (falling back to every
/// address when that name is not local, as with quorumListenOnAllIPs).
fn bind_peer_port(
    what: &str,
    host: &str,
    port: u16,
) -> Result<std::net::TcpListener, RuntimeError> {
    use std::net::ToSocketAddrs;
    let mut addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| bind_error(what, format!("{host}:{port}"), e))?
        .collect();
    addrs.sort_by_key(|a| !a.is_ipv4());
    let mut last = None;
    for a in addrs {
        match std::net::TcpListener::bind(a) {
            Ok(l) => {
                l.set_nonblocking(true)?;
                return Ok(l);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AddrNotAvailable => last = Some(e),
            Err(e) => return Err(bind_error(what, a.to_string(), e)),
        }
    }
    tracing::warn!("{host} is not an address of this machine; {what} listens on all addresses");
    let l = std::net::TcpListener::bind(("0.0.0.0", port))
        .map_err(|e| bind_error(what, format!("0.0.0.0:{port}"), last.unwrap_or(e)))?;
    l.set_nonblocking(true)?;
    Ok(l)
}

/// `secureClientPort`, on `secureClientPortAddress` or every address.
fn bind_secure_client(cfg: &NodeConfig) -> Result<Option<std::net::TcpListener>, RuntimeError> {
    let Some((port, _)) = cfg.tls.secure_client_port else {
        return Ok(None);
    };
    let what = format!("secureClientPort {port}");
    let listener = match cfg.tls.secure_client_address.as_deref() {
        Some(a) if a != "0.0.0.0" && a != "::" => {
            let a = a.trim_matches(['[', ']']);
            std::net::TcpListener::bind((a, port))
                .map_err(|e| bind_error(&what, format!("{a}:{port}"), e))?
        }
        _ => match bind_dual_stack(port) {
            Ok(l) => l,
            Err(_) => std::net::TcpListener::bind(("0.0.0.0", port))
                .map_err(|e| bind_error(&what, format!("0.0.0.0:{port}"), e))?,
        },
    };
    listener.set_nonblocking(true)?;
    Ok(Some(listener))
}

/// Listening sockets, bound before anything else so a taken port fails fast; the TLS
/// contexts, read before them so a bad store refuses to start.
pub struct Listeners {
    client: std::net::TcpListener,
    secure_client: Option<std::net::TcpListener>,
    tls: crate::tls::Contexts,
    quorum: Option<std::net::TcpListener>,
    election: Option<std::net::TcpListener>,
    /// The AdminServer's, when enabled and its port could be bound.
    admin: Option<std::net::TcpListener>,
    /// admin.forceHttps / admin.portUnification: the AdminServer's TLS context.
    admin_tls: Option<Arc<crate::tls::Reloadable<Arc<rustls::ServerConfig>>>>,
    /// The Prometheus endpoint's, when configured.
    metrics: Option<std::net::TcpListener>,
}

pub fn bind(cfg: &NodeConfig) -> Result<Listeners, RuntimeError> {
    let hosts: Vec<String> = cfg.servers.values().map(|s| s.host.clone()).collect();
    let tls = crate::tls::Contexts::build(&cfg.tls, &hosts).map_err(RuntimeError::Tls)?;
    let client = bind_client(cfg)?;
    let secure_client = bind_secure_client(cfg)?;
    let (quorum, election) = match cfg.me() {
        // a foreign leader's observer speaks ZooKeeper's quorum protocol on its own sockets
        Some(me) if !cfg.standalone && !cfg.core.foreign_leader => (
            Some(bind_peer_port(
                &format!("quorum port {} (server.{})", me.quorum_port, me.id),
                &me.host,
                me.quorum_port,
            )?),
            Some(bind_peer_port(
                &format!("election port {} (server.{})", me.election_port, me.id),
                &me.host,
                me.election_port,
            )?),
        ),
        _ => (None, None),
    };
    let metrics = match &cfg.metrics {
        Some(m) => Some(crate::metrics::endpoint::bind(m).map_err(|e| {
            bind_error(
                "the Prometheus endpoint (metricsProvider.httpPort)",
                format!("{}:{}", m.host, m.port),
                e,
            )
        })?),
        None => None,
    };
    // As ZooKeeper: an AdminServer that cannot start is logged, and the server runs without.
    let admin_tls = match cfg.admin.enabled && crate::tls::admin::wanted(&cfg.tls) {
        true => Some(crate::tls::admin::context(&cfg.tls).map_err(|e| {
            RuntimeError::Tls(format!(
                "the AdminServer's HTTPS (admin.forceHttps, admin.portUnification): {e}"
            ))
        })?),
        false => None,
    };
    let admin = match cfg.admin.enabled {
        false => None,
        true => match crate::admin::bind(&cfg.admin) {
            Ok(l) => Some(l),
            Err(e) => {
                tracing::warn!(
                    "AdminServer not started: cannot listen on {}:{} (admin.serverPort): {e}",
                    cfg.admin.address,
                    cfg.admin.port
                );
                None
            }
        },
    };
    Ok(Listeners {
        client,
        secure_client,
        tls,
        quorum,
        election,
        admin,
        admin_tls,
        metrics,
    })
}

/// Run a server until SIGTERM/SIGINT. `ready` is called once every port listens and the
/// state on disk is recovered.
pub fn run(
    cfg: NodeConfig,
    listeners: Listeners,
    ready: impl FnOnce(),
) -> Result<(), RuntimeError> {
    run_with(cfg, listeners, ready, None)
}

/// What a server following Apache ZooKeeper's leader (`zk-observe`) runs
/// besides the node: the link its core's learner messages leave by, and the observer that
/// feeds the core, started with the core loop's input once the ports listen. It ends the
/// server by sending `Input::Shutdown`.
pub struct ForeignFeed {
    pub link: Arc<crate::zookeeper::leader_link::ForeignLeaderLink>,
    pub start: Box<dyn FnOnce(mpsc::Sender<Input>) + Send>,
}

/// [`run`], or with `foreign` a server whose leader is Apache ZooKeeper's
/// (`cfg.core.foreign_leader`): no peer links or election of its own.
pub fn run_with(
    cfg: NodeConfig,
    listeners: Listeners,
    ready: impl FnOnce(),
    foreign: Option<ForeignFeed>,
) -> Result<(), RuntimeError> {
    assert_eq!(
        foreign.is_some(),
        cfg.core.foreign_leader,
        "a foreign leader's server runs with its feed, and only it"
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("net")
        .enable_all()
        .build()?;
    let cfg = Arc::new(cfg);
    let clock = Clock::new();
    // Before anything is written: a JAAS file or section missing refuses to start.
    let sasl = crate::sasl::ServerSasl::from_settings(&cfg.auth)
        .map_err(RuntimeError::Fatal)?
        .map(Arc::new);
    let quorum_hosts: Vec<String> = cfg.servers.values().map(|s| s.host.clone()).collect();
    let quorum_auth = crate::sasl::quorum::QuorumAuth::from_settings(
        &cfg.auth.quorum,
        cfg.auth.jaas_file.as_ref(),
        &quorum_hosts,
    )
    .map_err(RuntimeError::Fatal)?
    .map(Arc::new);

    let (storage_tx, storage_rx) = mpsc::unbounded_channel::<LogEvent>();
    let db_init = std::time::Instant::now();
    let opened = Storage::open(
        StorageOptions {
            snap_dir: cfg.snap_dir(),
            log_dir: cfg.log_dir(),
            prealloc: cfg.prealloc_size,
            force_sync: cfg.force_sync,
            snap_retain: cfg.snap_retain_count as usize,
            compression: cfg.snapshot_compression,
            tree: Some(cfg.core.tree_options()),
        },
        move |e| {
            let _ = storage_tx.send(e);
        },
    )?;
    for w in &opened.warnings {
        tracing::warn!("{w}");
    }
    let r = &opened.recovered;
    tracing::info!(
        "recovered: snapshot {}, {} logged txns after it, acceptedEpoch {}, currentEpoch {}",
        r.snapshot
            .as_ref()
            .map(|(z, _)| z.to_string())
            .unwrap_or_else(|| "none".into()),
        r.log.len(),
        r.epochs.accepted_epoch,
        r.epochs.current_epoch
    );
    if r.epochs.current_epoch == 0 && cfg.core.members.len() > 1 {
        if cfg.core.trust_empty_data_dirs {
            tracing::warn!(
                "no currentEpoch in the data dir, and ensemble.trustEmptyDataDirs=true: this \
                 server counts in quorums as a new one, as ZooKeeper's would; if its disk was \
                 lost or put back older, a leader without committed txns can be elected"
            );
        } else {
            tracing::warn!(
                "no currentEpoch in the data dir (a new server, a lost disk, or an older copy \
                 put back): this server counts in no quorum until it has synced from a leader; \
                 a new ensemble forms once every voter is up (ensemble.trustEmptyDataDirs=true \
                 forms it with a majority, as ZooKeeper does, at the risk the README describes)"
            );
        }
    }
    let txns_loaded = opened.recovered.log.len() as u64;
    let server = Server::new(cfg.core.clone(), opened.recovered, clock.now())?;
    let m = crate::metrics::server_metrics();
    m.summary("dbinittime")
        .observe(db_init.elapsed().as_millis() as u64);
    m.summary("startup_txns_loaded").observe(txns_loaded);
    let storage = opened.storage;

    let (input_tx, input_rx) = mpsc::channel::<Input>(8192);
    let me = cfg.core.my_id;

    let client_rejected;
    // a foreign leader's observer links with no peer: its leader is reached through the feed
    let view_cfg = match cfg.core.foreign_leader {
        true => Arc::new(NodeConfig {
            standalone: true,
            ..(*cfg).clone()
        }),
        false => cfg.clone(),
    };
    let (mut view, senders) = quorum_view::QuorumView::start(
        rt.handle().clone(),
        &view_cfg,
        peers::PeerSecurity {
            tls: listeners.tls.quorum.clone(),
            auth: quorum_auth.clone(),
        },
        input_tx.clone(),
    );
    if cfg.core.reconfig_enabled && !cfg.standalone && cfg.dynamic_file.is_none() {
        // backupOldConfig: the static file as written, before a reconfig rewrites it
        match crate::dynamic_config::backup_static(&cfg.path) {
            Ok(bak) => tracing::info!(
                "reconfigEnabled: {} kept as {}",
                cfg.path.display(),
                bak.display()
            ),
            Err(e) => tracing::warn!(
                "reconfigEnabled: cannot back up {}: {e}",
                cfg.path.display()
            ),
        }
    }
    {
        let _guard = rt.enter();
        listeners.tls.watch();
        let quorum_tls = listeners.tls.quorum.clone();
        if !cfg.standalone && !cfg.core.foreign_leader {
            let generations = Arc::new(AtomicU64::new(0));
            for (l, channel) in [
                (listeners.quorum, Channel::Quorum),
                (listeners.election, Channel::Election),
            ] {
                let Some(l) = l else { continue };
                let l = tokio::net::TcpListener::from_std(l)?;
                let ctx = Arc::new(peers::AcceptCtx {
                    me,
                    channel,
                    members: view.accepted(),
                    input: input_tx.clone(),
                    generations: generations.clone(),
                    tls: quorum_tls.clone(),
                    auth: quorum_auth.clone(),
                });
                rt.spawn(peers::accept_loop(l, ctx));
            }
        }
        let shared = Arc::new(clients::ClientShared {
            max_per_ip: cfg.max_client_cnxns,
            max_cnxns: cfg.max_cnxns,
            total: Default::default(),
            throttle: std::sync::Mutex::new(crate::limits::ConnectionThrottle::new(
                cfg.connection_throttle.clone(),
                0,
                std::process::id() as u64 ^ 0x5eed,
            )),
            started: std::time::Instant::now(),
            max_buffer: cfg.max_buffer,
            whitelist: cfg.whitelist.clone(),
            next_conn: AtomicU64::new(0),
            per_ip: Default::default(),
            input: input_tx.clone(),
            rejected: AtomicU64::new(0),
            auth: clients::ClientAuth {
                sasl,
                enforced: cfg.auth.enforced_schemes(),
                sasl_required: cfg.auth.sasl_required(),
                allow_sasl_failed: cfg.auth.allow_sasl_failed_clients,
            },
            outstanding: Arc::new(crate::limits::Outstanding::new(
                cfg.global_outstanding_limit,
            )),
        });
        client_rejected = shared.clone();
        let timeout = listeners.tls.client_handshake_timeout;
        let l = tokio::net::TcpListener::from_std(listeners.client)?;
        let plain = Arc::new(clients::PortTls {
            mode: listeners.tls.client_port.clone(),
            handshake_timeout: timeout,
        });
        let task = rt.spawn(clients::accept_loop(l, shared.clone(), plain.clone()));
        let mine = server
            .membership()
            .servers
            .get(&me)
            .and_then(|s| s.client.clone());
        view.set_client_port(client_port::ClientPort::new(
            rt.handle().clone(),
            shared.clone(),
            plain,
            task,
            mine,
        ));
        if let (Some(l), Some(acceptor)) = (listeners.secure_client, &listeners.tls.secure_client) {
            let l = tokio::net::TcpListener::from_std(l)?;
            let secure = Arc::new(clients::PortTls {
                mode: crate::tls::PortMode::Tls(acceptor.clone()),
                handshake_timeout: timeout,
            });
            rt.spawn(clients::accept_loop(l, shared, secure));
        }
    }

    let mut core = core_loop::CoreLoop::new(
        server,
        Box::new(storage),
        cfg.clone(),
        clock,
        senders,
        Some(view),
        client_rejected,
    );
    let feed = foreign.map(|f| {
        core.set_foreign_leader(f.link);
        f.start
    });
    let core_thread = std::thread::Builder::new()
        .name("core".into())
        .spawn(move || {
            let local = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()?;
            local.block_on(core.run(input_rx, storage_rx))
        })?;

    if let Some(l) = listeners.admin {
        match &listeners.admin_tls {
            Some(context) => crate::admin::start(
                crate::tls::admin::HttpsAcceptor {
                    listener: l,
                    context: context.clone(),
                    unified: !cfg.tls.admin_force_https,
                },
                &cfg.admin,
                cfg.core.super_digest.clone(),
                input_tx.clone(),
            )?,
            None => crate::admin::start(
                l,
                &cfg.admin,
                cfg.core.super_digest.clone(),
                input_tx.clone(),
            )?,
        }
        tracing::info!(
            "AdminServer on {}:{}{}",
            cfg.admin.address,
            cfg.admin.port,
            cfg.admin.command_url
        );
    }
    if let (Some(l), Some(m)) = (listeners.metrics, &cfg.metrics) {
        crate::metrics::endpoint::start(l, input_tx.clone())?;
        tracing::info!("Prometheus metrics on {}:{}/metrics", m.host, m.port);
    }
    tracing::info!(
        "server {} serving clients on port {}{} ({} members{})",
        me,
        cfg.client_port,
        match cfg.tls.secure_client_port {
            Some((p, _)) => format!(" and TLS port {p}"),
            None => String::new(),
        },
        cfg.core.members.len(),
        if cfg.tls.ssl_quorum {
            ", quorum over TLS"
        } else {
            ""
        }
    );
    ready();
    if let Some(start) = feed {
        start(input_tx.clone());
    }

    // Wait for a signal to stop, or for the core thread to end on its own (a fatal error).
    let stop_tx = input_tx.clone();
    rt.spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            return;
        };
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
            _ = int.recv() => tracing::info!("SIGINT: shutting down"),
        }
        let _ = stop_tx.send(Input::Shutdown).await;
    });
    drop(input_tx);
    let result = match core_thread.join() {
        Ok(r) => r,
        Err(_) => Err(RuntimeError::Fatal(
            "the core thread panicked (see the log above)".into(),
        )),
    };
    rt.shutdown_timeout(std::time::Duration::from_millis(200));
    result
}
