//! TLS to a `secureClientPort` (ZooKeeper's `zookeeper.client.secure=true`): rustls, trusting a
//! PEM CA file or a trust store (JKS, PKCS12, PEM: `zookeeper.ssl.trustStore.*`), optionally
//! presenting a PEM certificate and key or a key store's (`zookeeper.ssl.keyStore.*`), and
//! verifying the server's certificate against the host name or IP address connected to (or an
//! explicit name), as ZooKeeper's `ssl.hostnameVerification` does by default.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::ClientError;
use crate::keystore::{self, StoreType};

/// webpki's server verifier, with ZooKeeper's `ssl.hostnameVerification`: when false, a
/// certificate for another name passes once its chain does. Shared with the node (quorum TLS).
#[derive(Debug)]
pub struct ServerVerifier {
    pub inner: Arc<dyn rustls::client::danger::ServerCertVerifier>,
    pub hostname_verification: bool,
}

impl rustls::client::danger::ServerCertVerifier for ServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        use rustls::CertificateError::{NotValidForName, NotValidForNameContext};
        match self
            .inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                NotValidForName | NotValidForNameContext { .. },
            )) if !self.hostname_verification => {
                Ok(rustls::client::danger::ServerCertVerified::assertion())
            }
            r => r,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

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
    /// `ca_file` is a trust store of this type, opened with this password (ZooKeeper's
    /// `zookeeper.ssl.trustStore.type` / `.password`); `None`: a PEM file.
    pub trust_store: Option<StoreSpec>,
    /// The client's certificate and key from a key store (`zookeeper.ssl.keyStore.*`), instead
    /// of `cert_file` and `key_file`.
    pub key_store: Option<(PathBuf, StoreSpec)>,
    /// `zookeeper.ssl.hostnameVerification` (default true): false still verifies the chain, not
    /// the name.
    pub verify_hostname: bool,
}

/// How to open a store: its type (`None`: from the file's extension, as ZooKeeper's
/// `KeyStoreFileType`) and password.
#[derive(Clone, Debug, Default)]
pub struct StoreSpec {
    pub kind: Option<String>,
    pub password: String,
}

impl TlsOptions {
    pub fn new(ca_file: impl Into<PathBuf>) -> TlsOptions {
        TlsOptions {
            ca_file: ca_file.into(),
            cert_file: None,
            key_file: None,
            server_name: None,
            trust_store: None,
            key_store: None,
            verify_hostname: true,
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
        let certs = match &opts.trust_store {
            None => CertificateDer::pem_file_iter(&opts.ca_file)
                .map_err(|e| bad(&opts.ca_file, &e.to_string()))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| bad(&opts.ca_file, &e.to_string()))?,
            Some(spec) => {
                let kind = StoreType::of(spec.kind.as_deref(), &opts.ca_file)
                    .map_err(|e| bad(&opts.ca_file, &e))?;
                keystore::load_trust_store(&opts.ca_file, &spec.password, kind)
                    .map_err(|e| bad(&opts.ca_file, &e))?
            }
        };
        for c in certs {
            roots
                .add(c)
                .map_err(|e| bad(&opts.ca_file, &format!("not a CA certificate: {e}")))?;
        }
        if roots.is_empty() {
            return Err(bad(&opts.ca_file, "no certificate in it"));
        }
        let roots = Arc::new(roots);
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| ClientError::Tls(e.to_string()))?;
        let builder = if opts.verify_hostname {
            builder.with_root_certificates(roots)
        } else {
            let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(
                roots,
                provider.clone(),
            )
            .build()
            .map_err(|e| bad(&opts.ca_file, &e.to_string()))?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(ServerVerifier {
                    inner,
                    hostname_verification: false,
                }))
        };
        let config = match (&opts.key_store, &opts.cert_file, &opts.key_file) {
            (Some((path, spec)), None, None) => {
                let kind = StoreType::of(spec.kind.as_deref(), path).map_err(|e| bad(path, &e))?;
                let m = keystore::load_key_store(path, &spec.password, kind)
                    .map_err(|e| bad(path, &e))?;
                builder
                    .with_client_auth_cert(m.chain, m.key)
                    .map_err(|e| bad(path, &e.to_string()))?
            }
            (Some(_), _, _) => {
                return Err(ClientError::Tls(
                    "a key store, or a certificate and key file: not both".into(),
                ));
            }
            (None, Some(cert), Some(key)) => {
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
            (None, None, None) => builder.with_no_client_auth(),
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
