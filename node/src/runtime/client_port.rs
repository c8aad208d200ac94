//! The client port as the configuration in force names it: a reconfig that changes this
//! server's client address (`server.N=...;clientHost:clientPort`) moves the listener there on
//! activation, as ZooKeeper's QuorumPeer.processReconfig has its ServerCnxnFactory
//! reconfigure: the new address bound, the old listening socket closed. Connections already
//! made stay until they close (their clients reconnect through their connection string).

use super::clients::{self, ClientShared, PortTls};
use std::sync::Arc;

pub(crate) struct ClientPort {
    handle: tokio::runtime::Handle,
    shared: Arc<ClientShared>,
    port: Arc<PortTls>,
    /// The accept loop of the address listened on.
    task: tokio::task::JoinHandle<()>,
    /// `clientHost:clientPort` as the configuration in force says it (None: the static
    /// configuration's `clientPort`, which no configuration's line names).
    addr: Option<String>,
}

impl ClientPort {
    pub(crate) fn new(
        handle: tokio::runtime::Handle,
        shared: Arc<ClientShared>,
        port: Arc<PortTls>,
        task: tokio::task::JoinHandle<()>,
        addr: Option<String>,
    ) -> ClientPort {
        ClientPort {
            handle,
            shared,
            port,
            task,
            addr,
        }
    }

    /// The configuration in force names `addr` for us: listen there if it moved. A bind
    /// that fails keeps the old listener, said at error (the configuration is in force
    /// anyway; a restart binds what the dynamic file says).
    pub(crate) fn follow(&mut self, addr: Option<&str>) {
        let Some(addr) = addr else { return };
        if self.addr.as_deref() == Some(addr) {
            return;
        }
        let Some((host, port)) = addr
            .rsplit_once(':')
            .and_then(|(h, p)| Some((h.trim_matches(['[', ']']), p.parse::<u16>().ok()?)))
        else {
            tracing::error!(
                "client address {addr:?} of the configuration in force is not host:port"
            );
            return;
        };
        let bound = match host {
            "0.0.0.0" | "::" => super::bind_any(port),
            _ => std::net::TcpListener::bind((host, port)).and_then(|l| {
                l.set_nonblocking(true)?;
                Ok(l)
            }),
        };
        let listener = match bound {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(
                    "the configuration in force moves the client port to {addr}, but it cannot \
                     be bound ({e}): still listening on {}",
                    self.addr.as_deref().unwrap_or("the static clientPort")
                );
                return;
            }
        };
        let _guard = self.handle.enter();
        let listener = match tokio::net::TcpListener::from_std(listener) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!("client port {addr}: {e}");
                return;
            }
        };
        let task = self.handle.spawn(clients::accept_loop(
            listener,
            self.shared.clone(),
            self.port.clone(),
        ));
        // the old accept loop owns the old listening socket: ending it closes the port
        std::mem::replace(&mut self.task, task).abort();
        tracing::info!(
            "client port moved by the configuration in force: {} -> {addr}",
            self.addr.as_deref().unwrap_or("the static clientPort")
        );
        self.addr = Some(addr.to_string());
    }
}
