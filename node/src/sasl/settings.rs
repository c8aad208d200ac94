//! The authentication settings, where ZooKeeper's operators put them: zoo.cfg keys (which
//! ZooKeeper turns into `zookeeper.<key>` system properties) or `-Dzookeeper.<key>` flags,
//! and `-Djava.security.auth.login.config` for the JAAS file.

use ensemble_core::acl::AuthProviders;
use std::path::PathBuf;

pub const SASL_PROVIDER: &str = "org.apache.zookeeper.server.auth.SASLAuthenticationProvider";
pub const X509_PROVIDER: &str = "org.apache.zookeeper.server.auth.X509AuthenticationProvider";
pub const DIGEST_PROVIDER: &str = "org.apache.zookeeper.server.auth.DigestAuthenticationProvider";
pub const IP_PROVIDER: &str = "org.apache.zookeeper.server.auth.IPAuthenticationProvider";
/// The system property naming the JAAS file.
pub const LOGIN_CONFIG: &str = "java.security.auth.login.config";
/// The system property naming the Kerberos configuration (`KRB5_CONFIG` for the GSS-API
/// library, set from it at start).
pub const KRB5_CONF: &str = "java.security.krb5.conf";

/// Keys (without `zookeeper.`) whose `-D` flag is read as the zoo.cfg key is.
pub const PROPERTY_KEYS: &[&str] = &[
    "superUser",
    "X509AuthenticationProvider.superUser",
    "kerberos.removeHostFromPrincipal",
    "kerberos.removeRealmFromPrincipal",
    "allowSaslFailedClients",
    "sessionRequireClientSASLAuth",
    "enforce.auth.enabled",
    "enforce.auth.schemes",
    "sasl.serverconfig",
];

/// Is `-D<name>` one of these settings (`zookeeper.authProvider.N` included)?
pub fn is_property_key(key: &str) -> bool {
    PROPERTY_KEYS.contains(&key) || key.starts_with("authProvider.")
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthSettings {
    pub providers: AuthProviders,
    /// `zookeeper.superUser`.
    pub sasl_super_user: Option<String>,
    /// `zookeeper.X509AuthenticationProvider.superUser`.
    pub x509_super_user: Option<String>,
    pub jaas_file: Option<PathBuf>,
    /// `-Djava.security.krb5.conf`.
    pub krb5_conf: Option<PathBuf>,
    /// `zookeeper.sasl.serverconfig`: the JAAS section of the server (default `Server`).
    pub server_section: String,
    pub remove_host_from_principal: bool,
    pub remove_realm_from_principal: bool,
    /// `zookeeper.allowSaslFailedClients`: keep a connection whose SASL failed.
    pub allow_sasl_failed_clients: bool,
    session_require_sasl: bool,
    enforce_enabled: bool,
    enforce_schemes: Vec<String>,
    /// `quorum.auth.*`.
    pub quorum: super::quorum::QuorumAuthSettings,
}

impl Default for AuthSettings {
    fn default() -> AuthSettings {
        AuthSettings {
            providers: AuthProviders::default(),
            sasl_super_user: None,
            x509_super_user: None,
            jaas_file: None,
            krb5_conf: None,
            server_section: "Server".into(),
            remove_host_from_principal: false,
            remove_realm_from_principal: false,
            allow_sasl_failed_clients: false,
            session_require_sasl: false,
            enforce_enabled: false,
            enforce_schemes: Vec::new(),
            quorum: Default::default(),
        }
    }
}

/// Java's `Boolean.parseBoolean`: "true" in any case is true, anything else false.
fn java_bool(v: &str) -> bool {
    v.trim().eq_ignore_ascii_case("true")
}

impl AuthSettings {
    /// Take `key=value` if it is one of these settings: `None` if not, `Some(Err)` if its
    /// value is refused.
    pub fn take(&mut self, key: &str, value: &str) -> Option<Result<(), String>> {
        let v = value.trim();
        match key {
            k if k.starts_with("authProvider.") => match v {
                SASL_PROVIDER => self.providers.sasl = true,
                X509_PROVIDER => self.providers.x509 = true,
                DIGEST_PROVIDER | IP_PROVIDER => {}
                other => {
                    return Some(Err(format!(
                        "authentication provider {other} is not implemented in this build \
                             (digest, ip, sasl and x509 are); refusing to start rather than \
                             refuse or misjudge its clients"
                    )));
                }
            },
            "superUser" => self.sasl_super_user = Some(v.to_string()),
            "X509AuthenticationProvider.superUser" => self.x509_super_user = Some(v.to_string()),
            LOGIN_CONFIG => self.jaas_file = Some(PathBuf::from(v)),
            KRB5_CONF => self.krb5_conf = Some(PathBuf::from(v)),
            "quorum.auth.kerberos.servicePrincipal" => {
                self.quorum.service_principal = v.to_string()
            }
            "sasl.serverconfig" => self.server_section = v.to_string(),
            "kerberos.removeHostFromPrincipal" => self.remove_host_from_principal = java_bool(v),
            "kerberos.removeRealmFromPrincipal" => self.remove_realm_from_principal = java_bool(v),
            "allowSaslFailedClients" => self.allow_sasl_failed_clients = java_bool(v),
            "sessionRequireClientSASLAuth" => self.session_require_sasl = java_bool(v),
            "enforce.auth.enabled" => self.enforce_enabled = java_bool(v),
            "quorum.auth.enableSasl" => self.quorum.enable = java_bool(v),
            "quorum.auth.learnerRequireSasl" => self.quorum.learner_require = java_bool(v),
            "quorum.auth.serverRequireSasl" => self.quorum.server_require = java_bool(v),
            "quorum.auth.learner.saslLoginContext" => self.quorum.learner_context = v.to_string(),
            "quorum.auth.server.saslLoginContext" => self.quorum.server_context = v.to_string(),
            "enforce.auth.schemes" => {
                self.enforce_schemes = v
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            }
            _ => return None,
        }
        Some(Ok(()))
    }

    /// The schemes a connection must have authenticated with before any request but
    /// auth and SASL (ZooKeeper's `AuthenticationHelper`): `sessionRequireClientSASLAuth`
    /// means `sasl`, and wins over `enforce.auth.*`. Empty: not enforced.
    pub fn enforced_schemes(&self) -> Vec<String> {
        if self.session_require_sasl {
            vec!["sasl".into()]
        } else if self.enforce_enabled {
            self.enforce_schemes.clone()
        } else {
            Vec::new()
        }
    }

    /// `AuthenticationHelper.isSaslAuthRequired`.
    pub fn sasl_required(&self) -> bool {
        self.enforced_schemes().iter().any(|s| s == "sasl")
    }

    /// `AuthenticationHelper.validateConfiguredProperties`, and what SASL needs to work.
    pub fn validate(&self) -> Result<(), String> {
        self.quorum.validate()?;
        if self.quorum.enable && self.jaas_file.is_none() {
            return Err(format!(
                "quorum.auth.enableSasl is set but no JAAS file is (-D{LOGIN_CONFIG})"
            ));
        }
        let enforced = self.session_require_sasl || self.enforce_enabled;
        if enforced && self.enforced_schemes().is_empty() {
            return Err(
                "zookeeper.enforce.auth.enabled is true zookeeper.enforce.auth.schemes must be  configured."
                    .into(),
            );
        }
        for scheme in self.enforced_schemes() {
            let available = match scheme.as_str() {
                "ip" | "digest" => true,
                "sasl" => self.providers.sasl,
                "x509" => self.providers.x509,
                _ => false,
            };
            if !available {
                return Err(format!("Authentication scheme {scheme} is not available."));
            }
        }
        if self.sasl_required() && self.jaas_file.is_none() {
            return Err(format!(
                "SASL authentication is required (sessionRequireClientSASLAuth or \
                 enforce.auth.schemes=sasl) but no JAAS file is set (-D{LOGIN_CONFIG})"
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn providers_super_users_and_enforcement() {
        let mut a = AuthSettings::default();
        assert_eq!(a.take("authProvider.1", SASL_PROVIDER), Some(Ok(())));
        assert!(a.providers.sasl && !a.providers.x509);
        assert_eq!(a.take("authProvider.x509", X509_PROVIDER), Some(Ok(())));
        assert!(a.providers.x509);
        assert!(
            matches!(a.take("authProvider.2", "com.example.Mine"), Some(Err(e)) if e.contains("com.example.Mine"))
        );
        assert_eq!(a.take("superUser", "admin"), Some(Ok(())));
        assert_eq!(a.sasl_super_user.as_deref(), Some("admin"));
        assert_eq!(a.take("tickTime", "2000"), None);
        assert!(a.enforced_schemes().is_empty());
        assert!(a.validate().is_ok());
        a.take("enforce.auth.enabled", "true");
        assert!(
            a.validate()
                .expect_err("no schemes")
                .contains("enforce.auth.schemes")
        );
        a.take("enforce.auth.schemes", "sasl, digest");
        assert_eq!(a.enforced_schemes(), ["sasl", "digest"]);
        assert!(a.validate().expect_err("no JAAS").contains(LOGIN_CONFIG));
        a.take(LOGIN_CONFIG, "/etc/jaas.conf");
        assert!(a.validate().is_ok());
        a.take("enforce.auth.schemes", "kerberos");
        assert_eq!(
            a.validate(),
            Err("Authentication scheme kerberos is not available.".into())
        );
        // sessionRequireClientSASLAuth means sasl, whatever enforce.auth.* say
        a.take("sessionRequireClientSASLAuth", "TRUE");
        assert_eq!(a.enforced_schemes(), ["sasl"]);
        assert!(a.sasl_required());
        let mut b = AuthSettings::default();
        b.take("sessionRequireClientSASLAuth", "true");
        assert_eq!(
            b.validate(),
            Err("Authentication scheme sasl is not available.".into())
        );
    }
}
