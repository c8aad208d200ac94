//! The TLS settings, from zoo.cfg and `-Dzookeeper.*` flags, as ZooKeeper 3.8 names them:
//! `secureClientPort`, `secureClientPortAddress`, `client.portUnification`, `sslQuorum`,
//! `portUnification`, `sslQuorumReloadCertFiles`, the `ssl.*` keys of the client port
//! (ClientX509Util) and the `ssl.quorum.*` keys of the quorum and election ports
//! (QuorumX509Util), and `X509AuthenticationProvider.superUser`.
//!
//! Values are kept with where they were set, so a bad store names its setting and file.
//! Passwords never leave this module in a `Debug` or a message.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

/// One value and where it was set (`zoo.cfg:12`, or the flag's variable / env file line).
#[derive(Clone)]
pub struct Setting {
    pub value: String,
    pub at: String,
}

/// The part of an X509Util's keys after its prefix (`ssl.` or `ssl.quorum.`).
const SSL_KEYS: &[&str] = &[
    "keyStore.location",
    "keyStore.password",
    "keyStore.passwordPath",
    "keyStore.type",
    "trustStore.location",
    "trustStore.password",
    "trustStore.passwordPath",
    "trustStore.type",
    "protocol",
    "enabledProtocols",
    "ciphersuites",
    "hostnameVerification",
    "clientAuth",
    "handshakeDetectionTimeoutMillis",
    "authProvider",
    "crl",
    "ocsp",
    "context.supplier.class",
];

/// Keys QuorumPeerConfig reads from zoo.cfg only.
pub const FILE_ONLY_KEYS: &[&str] = &[
    "secureClientPort",
    "secureClientPortAddress",
    "sslQuorum",
    "portUnification",
    "sslQuorumReloadCertFiles",
];

/// Keys that are system properties (`-Dzookeeper.<key>`, or zoo.cfg, which wins).
const PROPERTY_KEYS: &[&str] = &[
    "admin.forceHttps",
    "admin.portUnification",
    "admin.needClientAuth",
    "client.portUnification",
    "client.certReload",
];

/// Which X509Util a key belongs to: the client port's or the quorum's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Client,
    Quorum,
}

impl Side {
    pub fn prefix(self) -> &'static str {
        match self {
            Side::Client => "ssl.",
            Side::Quorum => "ssl.quorum.",
        }
    }
}

fn ssl_key(key: &str) -> Option<(Side, &str)> {
    let (side, rest) = if let Some(r) = key.strip_prefix("ssl.quorum.") {
        (Side::Quorum, r)
    } else {
        (Side::Client, key.strip_prefix("ssl.")?)
    };
    SSL_KEYS.contains(&rest).then_some((side, rest))
}

/// A zoo.cfg key this module takes.
pub fn is_tls_key(key: &str) -> bool {
    FILE_ONLY_KEYS.contains(&key) || PROPERTY_KEYS.contains(&key) || ssl_key(key).is_some()
}

/// A key (after `zookeeper.`) whose `-D` flag ZooKeeper reads.
pub fn is_property_key(key: &str) -> bool {
    PROPERTY_KEYS.contains(&key) || ssl_key(key).is_some()
}

/// What became of a key handed to [`TlsSettings::take`].
pub enum Taken {
    Kept,
    Refuse(String),
}

#[derive(Clone, Default)]
pub struct TlsSettings {
    values: BTreeMap<String, Setting>,
    pub secure_client_port: Option<(u16, String)>,
    pub secure_client_address: Option<String>,
    /// `client.portUnification`: the plaintext client port also takes TLS.
    pub client_port_unification: bool,
    /// `sslQuorum`: the quorum and election ports dial and accept TLS only.
    pub ssl_quorum: bool,
    /// `portUnification`: the quorum and election ports accept TLS and plaintext (a rolling
    /// switch to or from `sslQuorum`).
    pub quorum_port_unification: bool,
    pub quorum_reload: bool,
    /// Reload the client port's stores when their files change (ZooKeeper 3.9's
    /// `client.certReload`; on unless set to false here).
    pub client_reload: bool,
    /// The AdminServer: HTTPS only, HTTPS and HTTP, a client certificate required.
    pub admin_force_https: bool,
    pub admin_port_unification: bool,
    pub admin_need_client_auth: bool,
}

fn truthy(v: &str) -> bool {
    matches!(v.trim().to_ascii_lowercase().as_str(), "true" | "yes")
}

impl TlsSettings {
    pub fn new() -> TlsSettings {
        TlsSettings {
            client_reload: true,
            ..TlsSettings::default()
        }
    }

    /// Take one key; a later call for the same key wins (zoo.cfg after the flags). `Err` is a
    /// malformed value.
    pub fn take(&mut self, key: &str, value: &str, at: String) -> Result<Taken, String> {
        let v = value.trim();
        match key {
            "secureClientPort" => {
                let port: u16 = v
                    .parse()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| format!("secureClientPort={v}: not a port number"))?;
                self.secure_client_port = Some((port, at));
            }
            "secureClientPortAddress" => self.secure_client_address = Some(v.to_string()),
            "sslQuorum" => self.ssl_quorum = truthy(v),
            "portUnification" => self.quorum_port_unification = truthy(v),
            "sslQuorumReloadCertFiles" => self.quorum_reload = truthy(v),
            "client.portUnification" => self.client_port_unification = truthy(v),
            "client.certReload" => self.client_reload = truthy(v),
            "admin.forceHttps" => self.admin_force_https = truthy(v),
            "admin.portUnification" => self.admin_port_unification = truthy(v),
            "admin.needClientAuth" => self.admin_need_client_auth = truthy(v),
            k => {
                let Some((_, rest)) = ssl_key(k) else {
                    return Err(format!("{k}: not a TLS setting"));
                };
                match rest {
                    "crl" | "ocsp" if truthy(v) => {
                        return Ok(Taken::Refuse(
                            "certificate revocation checking (CRL, OCSP) is not implemented in \
                             this build; refusing to start rather than accept revoked \
                             certificates"
                                .into(),
                        ));
                    }
                    "context.supplier.class" if !v.is_empty() => {
                        return Ok(Taken::Refuse(format!(
                            "{v} is a Java class; this build builds its TLS context from the \
                             ssl.* settings only"
                        )));
                    }
                    "hostnameVerification"
                        if !matches!(v.to_ascii_lowercase().as_str(), "true" | "false") =>
                    {
                        return Err(format!("{k}={v}: expected true or false"));
                    }
                    "handshakeDetectionTimeoutMillis" if !v.parse::<u64>().is_ok_and(|n| n > 0) => {
                        return Err(format!("{k}={v}: expected a positive number"));
                    }
                    "clientAuth" => {
                        crate::tls::context::ClientAuth::parse(v)
                            .map_err(|e| format!("{k}: {e}"))?;
                    }
                    _ => {}
                }
                self.values.insert(
                    k.to_string(),
                    Setting {
                        value: v.to_string(),
                        at,
                    },
                );
            }
        }
        Ok(Taken::Kept)
    }

    /// The value of `ssl.<rest>` or `ssl.quorum.<rest>`.
    pub fn get(&self, side: Side, rest: &str) -> Option<&Setting> {
        self.values
            .get(&format!("{}{rest}", side.prefix()))
            .filter(|s| !s.value.is_empty())
    }

    /// The client port speaks TLS somewhere (secureClientPort, or port unification).
    pub fn client_tls(&self) -> bool {
        self.secure_client_port.is_some() || self.client_port_unification
    }

    /// The quorum and election ports speak TLS (only, or besides plaintext).
    pub fn quorum_tls(&self) -> bool {
        self.ssl_quorum || self.quorum_port_unification
    }

    /// `ssl.authProvider`: the scheme x509 identities are given under (default `x509`).
    pub fn auth_provider(&self) -> &str {
        self.get(Side::Client, "authProvider")
            .map(|s| s.value.as_str())
            .unwrap_or("x509")
    }

    /// The store files to watch for a reload.
    pub fn store_files(&self, side: Side) -> Vec<PathBuf> {
        ["keyStore.location", "trustStore.location"]
            .iter()
            .filter_map(|k| self.get(side, k))
            .map(|s| PathBuf::from(&s.value))
            .collect()
    }
}

impl fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown: BTreeMap<&str, &str> = self
            .values
            .iter()
            .map(|(k, s)| {
                let v = if k.ends_with(".password") {
                    "****"
                } else {
                    s.value.as_str()
                };
                (k.as_str(), v)
            })
            .collect();
        f.debug_struct("TlsSettings")
            .field("values", &shown)
            .field("secure_client_port", &self.secure_client_port)
            .field("client_port_unification", &self.client_port_unification)
            .field("ssl_quorum", &self.ssl_quorum)
            .field("quorum_port_unification", &self.quorum_port_unification)
            .finish()
    }
}
