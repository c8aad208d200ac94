//! rustls configurations from the `ssl.*` (client port) or `ssl.quorum.*` (quorum) settings,
//! as ZooKeeper's X509Util builds its SSLContext: the key store is what this server presents,
//! the trust store what it accepts; `ssl.clientAuth` (need by default), `ssl.protocol` /
//! `ssl.enabledProtocols`, `ssl.ciphersuites` (Java's names), `ssl.hostnameVerification`.

use super::keystore::{self, StoreType};
use super::settings::{Side, TlsSettings};
use super::verify::{ClientVerifier, ServerVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore, ServerConfig, SupportedProtocolVersion};
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAuth {
    None,
    Want,
    Need,
}

impl ClientAuth {
    /// `X509Util.ClientAuth.fromPropertyValue`: empty is NEED, else the name in any case.
    pub fn parse(v: &str) -> Result<ClientAuth, String> {
        match v.trim().to_ascii_lowercase().as_str() {
            "" | "need" => Ok(ClientAuth::Need),
            "want" => Ok(ClientAuth::Want),
            "none" => Ok(ClientAuth::None),
            _ => Err(format!("'{v}' is not one of need, want, none")),
        }
    }
}

/// The message for a setting: `zoo.cfg:7: ssl.keyStore.location=/k.jks: <why>`.
fn at(s: &TlsSettings, side: Side, rest: &str, why: impl std::fmt::Display) -> String {
    match s.get(side, rest) {
        Some(v) => format!("{}: {}{rest}={}: {why}", v.at, side.prefix(), v.value),
        None => format!("{}{rest} is not set: {why}", side.prefix()),
    }
}

/// `ssl.<store>.password`, or the first line of the file `ssl.<store>.passwordPath` names
/// (ZooKeeper's SecretUtils drops one trailing line break). Absent: empty.
fn password(s: &TlsSettings, side: Side, store: &str) -> Result<String, String> {
    if let Some(p) = s.get(side, &format!("{store}.password")) {
        return Ok(p.value.clone());
    }
    let key = format!("{store}.passwordPath");
    match s.get(side, &key) {
        None => Ok(String::new()),
        Some(p) => {
            let text = std::fs::read_to_string(&p.value)
                .map_err(|e| at(s, side, &key, format!("cannot read: {e}")))?;
            let text = text.strip_suffix('\n').unwrap_or(&text);
            Ok(text.strip_suffix('\r').unwrap_or(text).to_string())
        }
    }
}

fn store_path(s: &TlsSettings, side: Side, store: &str) -> Option<PathBuf> {
    s.get(side, &format!("{store}.location"))
        .map(|v| PathBuf::from(&v.value))
}

fn store_type(s: &TlsSettings, side: Side, store: &str, path: &Path) -> Result<StoreType, String> {
    let key = format!("{store}.type");
    StoreType::of(s.get(side, &key).map(|v| v.value.as_str()), path).map_err(|e| {
        if s.get(side, &key).is_some() {
            at(s, side, &key, e)
        } else {
            at(s, side, &format!("{store}.location"), e)
        }
    })
}

fn key_material(s: &TlsSettings, side: Side) -> Result<keystore::KeyMaterial, String> {
    let loc = "keyStore.location";
    let path = store_path(s, side, "keyStore").ok_or_else(|| {
        format!(
            "{}{loc} is not set: TLS needs this server's certificate and key",
            side.prefix()
        )
    })?;
    let kind = store_type(s, side, "keyStore", &path)?;
    let pw = password(s, side, "keyStore")?;
    keystore::load_key_store(&path, &pw, kind).map_err(|e| at(s, side, loc, e))
}

fn trust_roots(
    s: &TlsSettings,
    side: Side,
) -> Result<(RootCertStore, Vec<CertificateDer<'static>>), String> {
    let loc = "trustStore.location";
    let path = store_path(s, side, "trustStore").ok_or_else(|| {
        format!(
            "{}{loc} is not set: this build has no default trust store (Java's cacerts); \
             set it to the CA that signs the certificates to accept",
            side.prefix()
        )
    })?;
    let kind = store_type(s, side, "trustStore", &path)?;
    let pw = password(s, side, "trustStore")?;
    let certs = keystore::load_trust_store(&path, &pw, kind).map_err(|e| at(s, side, loc, e))?;
    let mut roots = RootCertStore::empty();
    for c in &certs {
        roots
            .add(c.clone())
            .map_err(|e| at(s, side, loc, format!("a certificate is not usable: {e}")))?;
    }
    Ok((roots, certs))
}

/// The versions and the cipher suites this side allows.
fn provider(
    s: &TlsSettings,
    side: Side,
) -> Result<(Arc<CryptoProvider>, Vec<&'static SupportedProtocolVersion>), String> {
    let mut provider = rustls::crypto::ring::default_provider();
    let version = |name: &str| -> Option<&'static SupportedProtocolVersion> {
        match name.trim() {
            "TLSv1.3" => Some(&rustls::version::TLS13),
            "TLSv1.2" => Some(&rustls::version::TLS12),
            _ => None,
        }
    };
    let versions: Vec<&'static SupportedProtocolVersion> =
        if let Some(list) = s.get(side, "enabledProtocols") {
            let names: Vec<&str> = list.value.split(',').map(str::trim).collect();
            let v: Vec<_> = names.iter().filter_map(|n| version(n)).collect();
            if v.is_empty() {
                return Err(at(
                    s,
                    side,
                    "enabledProtocols",
                    "none of these is TLSv1.2 or TLSv1.3, the versions this build speaks",
                ));
            }
            v
        } else if let Some(p) = s.get(side, "protocol") {
            match p.value.as_str() {
                // Java's "TLS" context: whatever the JVM offers.
                "TLS" => vec![&rustls::version::TLS13, &rustls::version::TLS12],
                "TLSv1.3" => vec![&rustls::version::TLS13, &rustls::version::TLS12],
                "TLSv1.2" => vec![&rustls::version::TLS12],
                _ => {
                    return Err(at(
                        s,
                        side,
                        "protocol",
                        "expected TLSv1.2 or TLSv1.3 (older versions are not spoken)",
                    ));
                }
            }
        } else {
            vec![&rustls::version::TLS13, &rustls::version::TLS12]
        };
    if let Some(list) = s.get(side, "ciphersuites") {
        // Java names TLS 1.3 suites TLS_AES_...; rustls TLS13_AES_....
        let wanted: Vec<String> = list
            .value
            .split(',')
            .map(|n| {
                n.trim()
                    .replace("TLS_AES_", "TLS13_AES_")
                    .replace("TLS_CHACHA20_", "TLS13_CHACHA20_")
            })
            .collect();
        provider.cipher_suites.retain(|cs| {
            let name = cs.suite().as_str().unwrap_or_default();
            wanted.iter().any(|w| w == name)
        });
        if provider.cipher_suites.is_empty() {
            return Err(at(
                s,
                side,
                "ciphersuites",
                "none of these suites is available (this build has the AES-GCM and \
                 ChaCha20-Poly1305 suites, with ECDHE for TLS 1.2)",
            ));
        }
    }
    Ok((Arc::new(provider), versions))
}

/// What a listening side (the client port, or a quorum port) serves.
pub fn server_config(s: &TlsSettings, side: Side) -> Result<ServerConfig, String> {
    let auth = match s.get(side, "clientAuth") {
        Some(v) => ClientAuth::parse(&v.value).map_err(|e| at(s, side, "clientAuth", e))?,
        None => ClientAuth::Need,
    };
    server_config_with(s, side, auth)
}

/// [`server_config`] with the client certificate policy given (the AdminServer's).
pub fn server_config_with(
    s: &TlsSettings,
    side: Side,
    auth: ClientAuth,
) -> Result<ServerConfig, String> {
    let (provider, versions) = provider(s, side)?;
    let keys = key_material(s, side)?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| at(s, side, "enabledProtocols", e))?;
    let builder = if auth == ClientAuth::None {
        builder.with_no_client_auth()
    } else {
        let (roots, certs) = trust_roots(s, side)?;
        let mut b = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        );
        if auth == ClientAuth::Want {
            b = b.allow_unauthenticated();
        }
        let inner = b
            .build()
            .map_err(|e| at(s, side, "trustStore.location", e))?;
        builder.with_client_cert_verifier(Arc::new(ClientVerifier {
            inner,
            roots: certs,
            algs: provider.signature_verification_algorithms,
        }))
    };
    let mut config = builder
        .with_single_cert(keys.chain, keys.key)
        .map_err(|e| at(s, side, "keyStore.location", e))?;
    config.ignore_client_order = false;
    Ok(config)
}

/// What a dialling side (a quorum peer connecting out) presents and accepts.
pub fn client_config(s: &TlsSettings, side: Side) -> Result<ClientConfig, String> {
    let (provider, versions) = provider(s, side)?;
    let keys = key_material(s, side)?;
    let (roots, _) = trust_roots(s, side)?;
    let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .map_err(|e| at(s, side, "trustStore.location", e))?;
    let verifier = ServerVerifier {
        inner,
        hostname_verification: hostname_verification(s, side),
    };
    ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions)
        .map_err(|e| at(s, side, "enabledProtocols", e))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_client_auth_cert(keys.chain, keys.key)
        .map_err(|e| at(s, side, "keyStore.location", e))
}

/// `ssl[.quorum].hostnameVerification`, true unless set to false.
pub fn hostname_verification(s: &TlsSettings, side: Side) -> bool {
    s.get(side, "hostnameVerification")
        .is_none_or(|v| !v.value.eq_ignore_ascii_case("false"))
}

/// `ssl[.quorum].handshakeDetectionTimeoutMillis`, 5 s unless set.
pub fn handshake_timeout(s: &TlsSettings, side: Side) -> std::time::Duration {
    let ms = s
        .get(side, "handshakeDetectionTimeoutMillis")
        .and_then(|v| v.value.parse::<u64>().ok())
        .unwrap_or(5000);
    std::time::Duration::from_millis(ms)
}
