//! HTTPS for the AdminServer, as ZooKeeper's JettyAdminServer: `admin.forceHttps=true` serves
//! HTTPS only, `admin.portUnification=true` HTTPS and HTTP on one port, with the quorum's
//! stores (`ssl.quorum.keyStore.*`, `ssl.quorum.trustStore.*`, as its QuorumX509Util);
//! `admin.needClientAuth=true` (ZooKeeper 3.9) requires a client certificate the trust store
//! accepts. A layer over the listener: the AdminServer's handlers never know.

use super::context::{self, ClientAuth};
use super::{Reloadable, Side, TLS_HANDSHAKE_RECORD, TlsSettings};
use crate::admin::http::Acceptor;
use rustls::{ServerConfig, ServerConnection, StreamOwned};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

/// The admin settings this module reads, when HTTPS is on.
pub fn wanted(s: &TlsSettings) -> bool {
    s.admin_force_https || s.admin_port_unification
}

fn config(s: &TlsSettings, _side: Side) -> Result<Arc<ServerConfig>, String> {
    let auth = if s.admin_need_client_auth {
        ClientAuth::Need
    } else {
        ClientAuth::None
    };
    context::server_config_with(s, Side::Quorum, auth).map(Arc::new)
}

/// Build the AdminServer's TLS context (at start: a bad store refuses to start).
pub fn context(s: &TlsSettings) -> Result<Arc<Reloadable<Arc<ServerConfig>>>, String> {
    Reloadable::new(s, Side::Quorum, config)
}

/// A stream that is TLS or, on a unified port, plaintext.
pub enum AdminStream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ServerConnection, TcpStream>>),
}

impl AdminStream {
    fn tcp(&self) -> &TcpStream {
        match self {
            AdminStream::Plain(s) => s,
            AdminStream::Tls(t) => &t.sock,
        }
    }
}

impl Read for AdminStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            AdminStream::Plain(s) => s.read(buf),
            AdminStream::Tls(t) => t.read(buf),
        }
    }
}

impl Write for AdminStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            AdminStream::Plain(s) => s.write(buf),
            AdminStream::Tls(t) => t.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            AdminStream::Plain(s) => s.flush(),
            AdminStream::Tls(t) => t.flush(),
        }
    }
}

pub struct HttpsAcceptor {
    pub listener: TcpListener,
    pub context: Arc<Reloadable<Arc<ServerConfig>>>,
    /// `admin.portUnification`: plaintext too.
    pub unified: bool,
}

impl Acceptor for HttpsAcceptor {
    type Stream = AdminStream;
    fn accept(&self) -> io::Result<(AdminStream, SocketAddr)> {
        let (s, peer) = self.listener.accept()?;
        if self.unified {
            // The first byte tells (bounded: the accepting thread must not hang on a client).
            s.set_read_timeout(Some(Duration::from_secs(5)))?;
            let mut first = [0u8; 1];
            let n = s.peek(&mut first)?;
            if n == 0 || first[0] != TLS_HANDSHAKE_RECORD {
                return Ok((AdminStream::Plain(s), peer));
            }
        }
        let conn = ServerConnection::new(self.context.get()).map_err(io::Error::other)?;
        // The handshake runs on the connection's own thread, at its first read.
        Ok((AdminStream::Tls(Box::new(StreamOwned::new(conn, s))), peer))
    }
    fn set_idle(stream: &AdminStream, idle: Duration) -> io::Result<()> {
        stream
            .tcp()
            .set_read_timeout(Some(idle.max(Duration::from_millis(1))))
    }
}
