//! TLS to a `secureClientPort` (ZooKeeper's `zookeeper.client.secure=true`): rustls, trusting a
//! PEM CA file, optionally presenting a PEM certificate and key, and verifying the server's
//! certificate against the host name or IP address connected to (or an explicit name), as
//! ZooKeeper's `ssl.hostnameVerification` does by default.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::ClientError;

/// How to speak TLS to the servers.
#[derive(Clone, Debug)]
pub struct TlsOptions {
    /// PEM file of the certificate authorities trusted to sign the servers' certificates.
    pub ca_file: PathBuf,
    /// PEM certificate chain presented to servers that ask for one (`ssl.clientAuth`).
    pub cert_file: Option<PathBuf>,
    /// PEM private key of `cert_file`.
    pub key_file: Option<PathBuf>,
    /// The name the server's certificate must carry; default: the host of each `host:port`.
    pub server_name: Option<String>,
}

impl TlsOptions {
    pub fn new(ca_file: impl Into<PathBuf>) -> TlsOptions {
        TlsOptions {
            ca_file: ca_file.into(),
            cert_file: None,
            key_file: None,
            server_name: None,
        }
    }
}

/// A ready connector: the files are read once, when the client starts.
#[derive(Clone)]
pub(crate) struct Connector {
    inner: TlsConnector,
    server_name: Option<ServerName<'static>>,
}

fn bad(path: &Path, what: &str) -> ClientError {
    ClientError::Tls(format!("{}: {what}", path.display()))
}

impl Connector {
    pub(crate) fn new(opts: &TlsOptions) -> Result<Connector, ClientError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        let certs = CertificateDer::pem_file_iter(&opts.ca_file)
            .map_err(|e| bad(&opts.ca_file, &e.to_string()))?;
        for c in certs {
            let c = c.map_err(|e| bad(&opts.ca_file, &e.to_string()))?;
            roots
                .add(c)
                .map_err(|e| bad(&opts.ca_file, &format!("not a CA certificate: {e}")))?;
        }
        if roots.is_empty() {
            return Err(bad(&opts.ca_file, "no certificate in it"));
        }
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| ClientError::Tls(e.to_string()))?
            .with_root_certificates(roots);
        let config = match (&opts.cert_file, &opts.key_file) {
            (Some(cert), Some(key)) => {
                let chain = CertificateDer::pem_file_iter(cert)
                    .map_err(|e| bad(cert, &e.to_string()))?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| bad(cert, &e.to_string()))?;
                if chain.is_empty() {
                    return Err(bad(cert, "no certificate in it"));
                }
                let key =
                    PrivateKeyDer::from_pem_file(key).map_err(|e| bad(key, &e.to_string()))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| bad(cert, &e.to_string()))?
            }
            (None, None) => builder.with_no_client_auth(),
            _ => {
                return Err(ClientError::Tls(
                    "a client certificate needs its key, and a key its certificate".into(),
                ));
            }
        };
        let server_name = match &opts.server_name {
            Some(n) => Some(
                ServerName::try_from(n.clone())
                    .map_err(|_| ClientError::Tls(format!("bad TLS server name {n:?}")))?,
            ),
            None => None,
        };
        Ok(Connector {
            inner: TlsConnector::from(Arc::new(config)),
            server_name,
        })
    }

    /// The TLS handshake over a connected socket to `host` (`host:port`).
    pub(crate) async fn connect(
        &self,
        host: &str,
        tcp: TcpStream,
    ) -> Result<TlsStream<TcpStream>, String> {
        let name = match &self.server_name {
            Some(n) => n.clone(),
            None => {
                let h = host_of(host);
                ServerName::try_from(h.to_string())
                    .map_err(|_| format!("{h:?} is not a name a certificate can carry"))?
            }
        };
        self.inner
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS handshake: {e}"))
    }
}

/// The host of `host:port`, `[v6]:port` unbracketed.
fn host_of(hostport: &str) -> &str {
    let h = match hostport.rfind(':') {
        Some(i) if !hostport[..i].is_empty() => &hostport[..i],
        _ => hostport,
    };
    h.trim_start_matches('[').trim_end_matches(']')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_of_names_and_addresses() {
        assert_eq!(host_of("localhost:2281"), "localhost");
        assert_eq!(host_of("127.0.0.1:2281"), "127.0.0.1");
        assert_eq!(host_of("[::1]:2281"), "::1");
    }

    #[test]
    fn missing_or_empty_ca_file_is_refused_by_name() {
        let err = Connector::new(&TlsOptions::new("/nonexistent/ca.pem"))
            .err()
            .expect("refused");
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
        let empty = std::env::temp_dir().join(format!("ens-empty-ca-{}.pem", std::process::id()));
        std::fs::write(&empty, "").expect("write");
        let err = Connector::new(&TlsOptions::new(&empty))
            .err()
            .expect("refused");
        assert!(err.to_string().contains("no certificate"), "{err}");
        let _ = std::fs::remove_file(&empty);
    }
}
