//! TLS for the client port (`secureClientPort`, `client.portUnification`) and the quorum and
//! election ports (`sslQuorum`, `portUnification`), configured as ZooKeeper 3.8 is (see
//! [`settings`]), with rustls; x509 identities from client certificates ([`x500`]).
//!
//! The stores are read when the server starts, so a bad one refuses to start naming its
//! setting and file; with reloading on, a change of the files is picked up for new
//! connections (ZooKeeper's FileChangeWatcher), and a change that does not load keeps the
//! previous context, as ZooKeeper does.

pub mod admin;
pub mod context;
// the stores are read by the client library too (`ensemble cli -client-configuration`)
use ensemble_client::keystore;
pub mod settings;
mod verify;
pub mod x500;

pub use settings::{Side, TlsSettings};

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// The first byte of a TLS connection (a handshake record): how a unified port tells TLS
/// from plaintext, as ZooKeeper's DualModeSslHandler does.
pub const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// How often the store files are looked at for a change.
const RELOAD_POLL: Duration = Duration::from_millis(500);

/// A TLS context that is rebuilt when its store files change.
pub struct Reloadable<T> {
    current: RwLock<T>,
    settings: TlsSettings,
    side: Side,
    build: fn(&TlsSettings, Side) -> Result<T, String>,
}

impl<T: Clone + Send + Sync + 'static> Reloadable<T> {
    pub(crate) fn new(
        settings: &TlsSettings,
        side: Side,
        build: fn(&TlsSettings, Side) -> Result<T, String>,
    ) -> Result<Arc<Self>, String> {
        Ok(Arc::new(Reloadable {
            current: RwLock::new(build(settings, side)?),
            settings: settings.clone(),
            side,
            build,
        }))
    }

    pub fn get(&self) -> T {
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Watch the store files from a task on the current runtime: a changed file rebuilds the
    /// context for new connections; one that does not load keeps the old one (logged).
    pub fn watch(self: &Arc<Self>, what: &'static str) {
        let me = self.clone();
        let files = me.settings.store_files(me.side);
        tokio::spawn(async move {
            let mut seen = fingerprints(&files);
            loop {
                tokio::time::sleep(RELOAD_POLL).await;
                let now = fingerprints(&files);
                if now == seen {
                    continue;
                }
                seen = now;
                match (me.build)(&me.settings, me.side) {
                    Ok(t) => {
                        match me.current.write() {
                            Ok(mut g) => *g = t,
                            Err(p) => *p.into_inner() = t,
                        }
                        tracing::info!("{what}: key or trust store changed; reloaded");
                    }
                    Err(e) => tracing::warn!(
                        "{what}: key or trust store changed but does not load; keeping the \
                         previous one: {e}"
                    ),
                }
            }
        });
    }
}

fn fingerprints(files: &[PathBuf]) -> Vec<Option<(SystemTime, u64)>> {
    files
        .iter()
        .map(|f| {
            std::fs::metadata(f)
                .ok()
                .map(|m| (m.modified().unwrap_or(SystemTime::UNIX_EPOCH), m.len()))
        })
        .collect()
}

fn acceptor(s: &TlsSettings, side: Side) -> Result<TlsAcceptor, String> {
    context::server_config(s, side).map(|c| TlsAcceptor::from(Arc::new(c)))
}

fn connector(s: &TlsSettings, side: Side) -> Result<TlsConnector, String> {
    context::client_config(s, side).map(|c| TlsConnector::from(Arc::new(c)))
}

/// What a listening port takes.
#[derive(Clone)]
pub enum PortMode {
    Plain,
    /// TLS only.
    Tls(Arc<Reloadable<TlsAcceptor>>),
    /// TLS or plaintext, told apart by the first byte.
    Unified(Arc<Reloadable<TlsAcceptor>>),
}

impl PortMode {
    pub fn acceptor(&self) -> Option<TlsAcceptor> {
        match self {
            PortMode::Plain => None,
            PortMode::Tls(a) | PortMode::Unified(a) => Some(a.get()),
        }
    }
}

/// The quorum's TLS: how its ports accept, and how it dials.
#[derive(Clone)]
pub struct QuorumTls {
    pub accept: PortMode,
    /// `sslQuorum=true`: dial the other servers with TLS.
    pub dial: Option<Arc<Reloadable<TlsConnector>>>,
    /// Check a peer's certificate against its address (ssl.quorum.hostnameVerification).
    pub hostname_verification: bool,
    /// The servers' hosts with their addresses, to match the certificate of a peer that
    /// dialled in.
    pub hosts: Vec<(String, Vec<IpAddr>)>,
    pub handshake_timeout: Duration,
}

/// Every TLS context the server needs, built at start (a bad store stops it there).
pub struct Contexts {
    /// `secureClientPort`'s context.
    pub secure_client: Option<Arc<Reloadable<TlsAcceptor>>>,
    /// The plaintext client port's mode (unified with `client.portUnification`).
    pub client_port: PortMode,
    pub quorum: Option<QuorumTls>,
    pub client_handshake_timeout: Duration,
    watch_client: bool,
    watch_quorum: bool,
}

impl Contexts {
    pub fn build(s: &TlsSettings, hosts: &[String]) -> Result<Contexts, String> {
        let client = if s.client_tls() {
            Some(Reloadable::new(s, Side::Client, acceptor)?)
        } else {
            None
        };
        let client_port = match (&client, s.client_port_unification) {
            (Some(a), true) => PortMode::Unified(a.clone()),
            _ => PortMode::Plain,
        };
        let secure_client = client.filter(|_| s.secure_client_port.is_some());
        let quorum = if s.quorum_tls() {
            let a = Reloadable::new(s, Side::Quorum, acceptor)?;
            let dial = if s.ssl_quorum {
                Some(Reloadable::new(s, Side::Quorum, connector)?)
            } else {
                // Still check the dialling side's stores: the switch to sslQuorum needs them.
                connector(s, Side::Quorum)?;
                None
            };
            let accept = if s.quorum_port_unification {
                PortMode::Unified(a)
            } else {
                PortMode::Tls(a)
            };
            let hosts = hosts
                .iter()
                .map(|h| {
                    use std::net::ToSocketAddrs;
                    let addrs = (h.as_str(), 0)
                        .to_socket_addrs()
                        .map(|it| it.map(|a| a.ip()).collect())
                        .unwrap_or_default();
                    (h.clone(), addrs)
                })
                .collect();
            Some(QuorumTls {
                accept,
                dial,
                hostname_verification: context::hostname_verification(s, Side::Quorum),
                hosts,
                handshake_timeout: context::handshake_timeout(s, Side::Quorum),
            })
        } else {
            None
        };
        Ok(Contexts {
            secure_client,
            client_port,
            quorum,
            client_handshake_timeout: context::handshake_timeout(s, Side::Client),
            watch_client: s.client_reload,
            watch_quorum: s.quorum_reload,
        })
    }

    /// Start watching the store files (from within the runtime), as configured.
    pub fn watch(&self) {
        if self.watch_client {
            match (&self.secure_client, &self.client_port) {
                (Some(a), _) | (None, PortMode::Unified(a)) => a.watch("client port TLS"),
                _ => {}
            }
        }
        if let Some(q) = self.quorum.as_ref().filter(|_| self.watch_quorum) {
            if let PortMode::Tls(a) | PortMode::Unified(a) = &q.accept {
                a.watch("quorum TLS (accepting)");
            }
            if let Some(d) = &q.dial {
                d.watch("quorum TLS (dialling)");
            }
        }
    }
}

/// The server name to check a dialled peer's certificate against.
pub fn server_name(host: &str) -> Result<rustls::pki_types::ServerName<'static>, String> {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    rustls::pki_types::ServerName::try_from(h.to_string())
        .map_err(|e| format!("{host} is not a name a certificate can be checked against: {e}"))
}

/// The identity a client certificate gives (its subject, as Java prints it).
pub fn client_identity(conn: &rustls::ServerConnection) -> Option<String> {
    let cert = conn.peer_certificates()?.first()?;
    x500::subject_of(cert).ok()
}

/// Whether a quorum peer that dialled in presented a certificate for its address.
pub fn peer_matches(conn: &rustls::ServerConnection, ip: IpAddr, q: &QuorumTls) -> bool {
    if !q.hostname_verification {
        return true;
    }
    match conn.peer_certificates().and_then(|c| c.first()) {
        Some(cert) => verify::peer_names_match(cert, ip, &q.hosts),
        None => false,
    }
}
