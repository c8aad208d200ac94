//! Client SASL, as ZooKeeper 3.8's server runs it (`ZooKeeperServer.processSasl`,
//! `ZooKeeperSaslServer`, `SaslServerCallbackHandler`): opcode 102 requests carry the client's
//! tokens inside the session, each answered with the server's at once (zxid 0); when the
//! exchange completes the authorization id becomes the connection's `sasl` identity
//! (`Event::ClientAuthenticated`). A failed exchange is answered AUTHFAILED (or
//! SESSIONCLOSEDREQUIRESASLAUTH where SASL is enforced) and that connection closed.
//!
//! The mechanism follows the JAAS `Server` section, as ZooKeeper's does: DIGEST-MD5 with
//! `DigestLoginModule`'s `user_NAME="password"` options, GSSAPI (Kerberos) with
//! `Krb5LoginModule`'s keytab and principal ([`gssapi`]). Settings: [`settings`].

pub mod digest_md5;
pub mod gssapi;
pub mod quorum;
pub mod settings;
pub mod wire;

use crate::jaas::{self, JaasConfig};
use settings::AuthSettings;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// Why an exchange failed (never holds a password).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaslError(String);

impl SaslError {
    pub fn new(why: impl Into<String>) -> SaslError {
        SaslError(why.into())
    }
}

impl fmt::Display for SaslError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The server side of client SASL, built once from the settings and the JAAS file.
pub struct ServerSasl {
    /// DigestLoginModule's users (empty: no DIGEST-MD5).
    users: Arc<BTreeMap<String, String>>,
    /// Krb5LoginModule's acceptor credentials (GSSAPI).
    kerberos: Option<(Arc<gssapi::Krb5Login>, libgssapi::credential::Cred)>,
    remove_host: bool,
    remove_realm: bool,
}

impl fmt::Debug for ServerSasl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerSasl")
            .field("users", &self.users.keys().collect::<Vec<_>>())
            .field(
                "kerberos",
                &self.kerberos.as_ref().map(|(k, _)| k.principal()),
            )
            .finish()
    }
}

impl ServerSasl {
    /// ZooKeeper's `ServerCnxnFactory.configureSaslLogin`: with no
    /// `java.security.auth.login.config`, no SASL (clients that try it fail); a file that
    /// cannot be read or parsed refuses to start; a file without the `Server` section (or
    /// `zookeeper.sasl.serverconfig`'s) means no client SASL, as in ZooKeeper, unless SASL is
    /// required (then the server does not start, naming section and file). A
    /// `Krb5LoginModule` entry's keys are read at start: a keytab that cannot be read or
    /// holds no key of the principal refuses to start, naming them.
    pub fn from_settings(auth: &AuthSettings) -> Result<Option<ServerSasl>, String> {
        let Some(path) = &auth.jaas_file else {
            return Ok(None);
        };
        let cfg = JaasConfig::load(path)
            .map_err(|e| format!("-Djava.security.auth.login.config={}: {e}", path.display()))?;
        let section = match cfg.section(&auth.server_section) {
            Ok(s) => s,
            Err(e) if auth.sasl_required() => return Err(e),
            Err(e) => {
                tracing::warn!("{e}: clients cannot authenticate with SASL");
                return Ok(None);
            }
        };
        let kerberos = match gssapi::Krb5Login::from_section(path, &auth.server_section, section) {
            Some(login) => {
                let cred = login.acceptor()?;
                tracing::info!(
                    "client SASL GSSAPI: accepting Kerberos clients as {}",
                    login.principal().unwrap_or("any principal of the keytab")
                );
                Some((Arc::new(login), cred))
            }
            None => None,
        };
        let users = jaas::digest_users(section);
        if users.is_empty() && kerberos.is_none() {
            return Err(format!(
                "{}: section '{}' has no {} with user_NAME=\"password\" options and no \
                 Krb5LoginModule",
                path.display(),
                auth.server_section,
                jaas::DIGEST_LOGIN_MODULE
            ));
        }
        Ok(Some(ServerSasl {
            users: Arc::new(users),
            kerberos,
            remove_host: auth.remove_host_from_principal,
            remove_realm: auth.remove_realm_from_principal,
        }))
    }

    /// A connection's exchange, started at its first SASL request, whose token picks the
    /// mechanism: ZooKeeper's server has one (GSSAPI when its section has Kerberos keys,
    /// else DIGEST-MD5); with both kinds of entry in the section this one serves both, telling
    /// them apart by the first token (DIGEST-MD5's is empty, GSSAPI's a context token).
    pub fn start(self: &Arc<Self>, first: &[u8]) -> SaslSession {
        let digest = || Mech::Digest(digest_md5::DigestMd5Server::new(self.users.clone()));
        let mech = match &self.kerberos {
            Some((_, cred)) if !first.is_empty() || self.users.is_empty() => {
                Mech::Gssapi(Box::new(gssapi::GssapiServer::new(cred.clone())))
            }
            _ => digest(),
        };
        SaslSession {
            server: self.clone(),
            mech,
        }
    }

    /// `SaslServerCallbackHandler.handleAuthorizeCallback`: the authorization id is the
    /// authenticated name canonicalized as a Kerberos name, without its host or realm as
    /// `kerberos.removeHostFromPrincipal` / `kerberos.removeRealmFromPrincipal` say.
    pub fn authorization_id(&self, authenticated: &str) -> String {
        canonical_name(authenticated, self.remove_host, self.remove_realm)
    }
}

enum Mech {
    Digest(digest_md5::DigestMd5Server),
    Gssapi(Box<gssapi::GssapiServer>),
}

/// One connection's SASL exchange.
pub struct SaslSession {
    server: Arc<ServerSasl>,
    mech: Mech,
}

impl SaslSession {
    /// The client's token in; the server's token out (`None`: a null token), and the
    /// authorization id once complete.
    pub fn step(&mut self, token: &[u8]) -> Result<(Option<Vec<u8>>, Option<String>), SaslError> {
        let (reply, user) = match &mut self.mech {
            Mech::Digest(m) => {
                let (reply, user) = m.step(token)?;
                (Some(reply), user)
            }
            Mech::Gssapi(m) => match m.step(token)? {
                (reply, None) => (Some(reply), None),
                // GSSAPI's last answer is a null token: Java's client waits for exactly that
                // (ZooKeeperSaslClient's gotLastPacket) before it sends any request
                (
                    _,
                    Some(gssapi::Authenticated {
                        principal: peer,
                        authzid,
                    }),
                ) => {
                    tracing::info!(
                        "Successfully authenticated client: authenticationID={peer};  \
                         authorizationID={authzid}."
                    );
                    (None, Some(peer))
                }
            },
        };
        Ok((reply, user.map(|u| self.server.authorization_id(&u))))
    }
}

/// What every client connection shares: the SASL server and the enforcement settings.
#[derive(Debug, Default)]
pub struct ClientAuth {
    pub sasl: Option<Arc<ServerSasl>>,
    /// `AuthenticationHelper`'s enforced schemes (empty: not enforced).
    pub enforced: Vec<String>,
    pub sasl_required: bool,
    pub allow_sasl_failed: bool,
}

/// ZooKeeper's error codes these answers carry.
const AUTH_FAILED: i32 = -115;
const SESSION_CLOSED_REQUIRE_SASL_AUTH: i32 = -124;

/// What a SASL request comes to: the reply frame, the identity established (if it just
/// completed), and whether the connection closes after the reply.
pub struct SaslOutcome {
    pub reply: Vec<u8>,
    pub identity: Option<ensemble_proto::proto::Id>,
    pub close: bool,
}

/// One connection's authentication state: its SASL exchange and the schemes it holds ids of
/// (for enforcement; `ip` from the start, as ZooKeeper adds the ip id at accept).
pub struct ConnAuth {
    session: Option<SaslSession>,
    schemes: Vec<String>,
}

impl Default for ConnAuth {
    fn default() -> ConnAuth {
        ConnAuth {
            session: None,
            schemes: vec!["ip".into()],
        }
    }
}

impl ConnAuth {
    /// A scheme the connection now holds an id of (an addAuth the core takes or refuses with
    /// the connection closed; a certificate).
    pub fn add_scheme(&mut self, scheme: &str) {
        if !self.schemes.iter().any(|s| s == scheme) {
            self.schemes.push(scheme.to_string());
        }
    }

    /// `ZooKeeperServer.processSasl` for one opcode-102 frame. `None`: the frame does not
    /// decode (the connection is closed as for any malformed request).
    pub fn on_sasl(&mut self, auth: &ClientAuth, frame: &[u8], peer: &str) -> Option<SaslOutcome> {
        let (xid, token) = wire::decode_request(frame)?;
        let step = match (&mut self.session, &auth.sasl) {
            (Some(s), _) => s.step(&token),
            (None, Some(server)) => {
                let mut s = server.start(&token);
                let r = s.step(&token);
                self.session = Some(s);
                r
            }
            // ZooKeeper has no SASL server without a JAAS file: the client cannot authenticate
            (None, None) => Err(SaslError::new(
                "no SASL server is configured (no -Djava.security.auth.login.config)",
            )),
        };
        Some(match step {
            Ok((token, authorized)) => {
                let identity = authorized.map(|a| {
                    tracing::info!(
                        "client {peer}: adding SASL authorization for authorizationID: {a}"
                    );
                    self.add_scheme("sasl");
                    ensemble_proto::proto::Id::new("sasl", &a)
                });
                SaslOutcome {
                    reply: wire::encode_reply(xid, 0, token.as_deref()),
                    identity,
                    close: false,
                }
            }
            Err(e) => {
                tracing::warn!("client {peer} failed to SASL authenticate: {e}");
                if auth.allow_sasl_failed && !auth.sasl_required {
                    tracing::warn!(
                        "maintaining client connection despite SASL authentication failure"
                    );
                    SaslOutcome {
                        reply: wire::encode_reply(xid, 0, None),
                        identity: None,
                        close: false,
                    }
                } else {
                    let err = if auth.sasl_required {
                        SESSION_CLOSED_REQUIRE_SASL_AUTH
                    } else {
                        AUTH_FAILED
                    };
                    SaslOutcome {
                        reply: wire::encode_reply(xid, err, None),
                        identity: None,
                        close: true,
                    }
                }
            }
        })
    }

    /// `AuthenticationHelper.enforceAuthentication` for any other request: the reply header
    /// to send before closing when the connection holds no id of an enforced scheme.
    pub fn enforce(&self, auth: &ClientAuth, xid: i32, peer: &str) -> Option<Vec<u8>> {
        if auth.enforced.is_empty() || self.schemes.iter().any(|s| auth.enforced.contains(s)) {
            return None;
        }
        tracing::error!(
            "client {peer}: authentication scheme(s) {:?} does not match with any of the expected \
             authentication scheme {:?}, closing session",
            self.schemes,
            auth.enforced
        );
        Some(wire::encode_header(xid, SESSION_CLOSED_REQUIRE_SASL_AUTH))
    }
}

/// `KerberosName(name)` split into service, host and realm, rebuilt as ZooKeeper's callback
/// handler does: the short name (the service name: the DEFAULT rule's, with the realm taken
/// as the default one), then `/host` and `@realm` unless removed. A name without `@` is a bare
/// service name and stays whole; one that is no Kerberos name stays whole too.
pub fn canonical_name(name: &str, remove_host: bool, remove_realm: bool) -> String {
    let Some((principal, realm)) = name.split_once('@') else {
        return name.to_string();
    };
    if realm.contains(['/', '@']) {
        return name.to_string();
    }
    let (service, host) = match principal.split_once('/') {
        Some((_, h)) if h.contains('/') => return name.to_string(),
        Some((s, h)) => (s, Some(h)),
        None => (principal, None),
    };
    let mut out = service.to_string();
    if let Some(h) = host.filter(|_| !remove_host) {
        out.push('/');
        out.push_str(h);
    }
    if !remove_realm {
        out.push('@');
        out.push_str(realm);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_as_the_callback_handler_canonicalizes_them() {
        assert_eq!(canonical_name("jaasuser", true, true), "jaasuser");
        let p = "zookeeper/127.0.0.1@KAZOOTEST.ORG";
        assert_eq!(canonical_name(p, false, false), p);
        assert_eq!(canonical_name(p, true, false), "zookeeper@KAZOOTEST.ORG");
        assert_eq!(canonical_name(p, false, true), "zookeeper/127.0.0.1");
        assert_eq!(canonical_name(p, true, true), "zookeeper");
        assert_eq!(canonical_name("client@KAZOOTEST.ORG", true, true), "client");
        assert_eq!(
            canonical_name("client@KAZOOTEST.ORG", false, false),
            "client@KAZOOTEST.ORG"
        );
        // not a Kerberos name: kept whole
        assert_eq!(canonical_name("a@b@c", true, true), "a@b@c");
    }
}
