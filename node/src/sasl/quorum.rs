//! Quorum SASL, as ZooKeeper's `SaslQuorumAuthLearner` / `SaslQuorumAuthServer` run it on
//! every server-to-server connection: the side that connects authenticates (DIGEST-MD5 with the
//! JAAS `QuorumLearner` section's `username`/`password`) to the side that accepts (the
//! `QuorumServer` section's `user_NAME="password"` options), right after this build's hello.
//! With `Krb5LoginModule` in those sections it is GSSAPI: the learner logs in with its keytab
//! and asks for a ticket to `quorum.auth.kerberos.servicePrincipal` (`_HOST` the peer's host),
//! the server accepts with its keytab and authorizes the learner's principal when its host
//! part is one of the quorum's hosts (`SaslQuorumServerCallbackHandler`).
//!
//! * `quorum.auth.enableSasl`: the server can take part at all;
//! * `quorum.auth.learnerRequireSasl`: it authenticates when it connects (and fails the
//!   connection if refused);
//! * `quorum.auth.serverRequireSasl`: it accepts only peers that authenticated.
//!
//! Auth frames are `[u32 length | 1<<31][i32 status][token]` (a peer message's length never has
//! the top bit), status as `QuorumAuth.Status`: 1 in progress, 0 success, -1 error.

use super::SaslError;
use super::digest_md5::{self, DigestMd5Server, QUORUM_PROTOCOL, QUORUM_SERVER_NAME};
use super::gssapi::{self, GssapiClient, GssapiServer, Krb5Login};
use crate::jaas::{self, JaasConfig};
use libgssapi::credential::Cred;
use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};

const AUTH_BIT: u32 = 1 << 31;
const IN_PROGRESS: i32 = 1;
const SUCCESS: i32 = 0;
const ERROR: i32 = -1;
/// Tokens are small: a longer frame is not an exchange.
const MAX_TOKEN: usize = 64 * 1024;

/// The quorum SASL settings (zoo.cfg `quorum.auth.*`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuorumAuthSettings {
    pub enable: bool,
    pub learner_require: bool,
    pub server_require: bool,
    pub learner_context: String,
    pub server_context: String,
    /// `quorum.auth.kerberos.servicePrincipal` (`_HOST`: the host of the server dialed).
    pub service_principal: String,
}

impl Default for QuorumAuthSettings {
    fn default() -> QuorumAuthSettings {
        QuorumAuthSettings {
            enable: false,
            learner_require: false,
            server_require: false,
            learner_context: "QuorumLearner".into(),
            server_context: "QuorumServer".into(),
            service_principal: "zkquorum/localhost".into(),
        }
    }
}

impl QuorumAuthSettings {
    /// `QuorumPeerConfig`'s checks.
    pub fn validate(&self) -> Result<(), String> {
        if !self.enable && self.server_require {
            return Err("quorum.auth.enableSasl is disabled, so cannot enable quorum.auth.serverRequireSasl".into());
        }
        if !self.enable && self.learner_require {
            return Err("quorum.auth.enableSasl is disabled, so cannot enable quorum.auth.learnerRequireSasl".into());
        }
        if !self.learner_require && self.server_require {
            return Err("quorum.auth.learnerRequireSasl is disabled, so cannot enable quorum.auth.serverRequireSasl".into());
        }
        Ok(())
    }
}

/// How this server logs in when it connects to a peer.
enum LearnerLogin {
    Digest { user: String, password: String },
    Kerberos { cred: Cred, service: String },
}

/// What a server needs for quorum SASL, read once at start.
pub struct QuorumAuth {
    /// How to authenticate when connecting, if `learnerRequireSasl`.
    learner: Option<LearnerLogin>,
    /// The DIGEST-MD5 users accepted from connecting peers.
    users: Arc<BTreeMap<String, String>>,
    /// The Kerberos acceptor, and the hosts a learner's principal may name.
    kerberos: Option<(Cred, Arc<BTreeSet<String>>)>,
    server_require: bool,
}

impl std::fmt::Debug for QuorumAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let learner = self.learner.as_ref().map(|l| match l {
            LearnerLogin::Digest { user, .. } => format!("DIGEST-MD5 {user}"),
            LearnerLogin::Kerberos { service, .. } => format!("GSSAPI to {service}"),
        });
        f.debug_struct("QuorumAuth")
            .field("learner", &learner)
            .field("users", &self.users.keys().collect::<Vec<_>>())
            .field("kerberos", &self.kerberos.is_some())
            .finish()
    }
}

impl QuorumAuth {
    /// `None` without `quorum.auth.enableSasl`. Both JAAS sections must be there (ZooKeeper
    /// logs in with both at start), or the server refuses to start naming what is missing;
    /// so does a Kerberos keytab that cannot be read or lacks its principal. `hosts` are the
    /// quorum's hosts (`server.N`), the ones a Kerberos learner's principal may name.
    pub fn from_settings(
        q: &QuorumAuthSettings,
        jaas_file: Option<&PathBuf>,
        hosts: &[String],
    ) -> Result<Option<QuorumAuth>, String> {
        if !q.enable {
            return Ok(None);
        }
        let path = jaas_file.ok_or_else(|| {
            "quorum.auth.enableSasl is set but no JAAS file is (-Djava.security.auth.login.config)"
                .to_string()
        })?;
        let cfg = JaasConfig::load(path)
            .map_err(|e| format!("-Djava.security.auth.login.config={}: {e}", path.display()))?;
        let server = cfg.section(&q.server_context)?;
        let learner = cfg.section(&q.learner_context)?;
        let kerberos = match Krb5Login::from_section(path, &q.server_context, server) {
            Some(login) => {
                let hosts = hosts.iter().map(|h| h.to_ascii_lowercase()).collect();
                Some((login.acceptor()?, Arc::new(hosts)))
            }
            None => None,
        };
        let users = jaas::digest_users(server);
        if users.is_empty() && kerberos.is_none() {
            return Err(format!(
                "{}: section '{}' has no {} with user_NAME=\"password\" options and no \
                 Krb5LoginModule",
                path.display(),
                q.server_context,
                jaas::DIGEST_LOGIN_MODULE
            ));
        }
        let login = if let Some(k) = Krb5Login::from_section(path, &q.learner_context, learner) {
            LearnerLogin::Kerberos {
                cred: k.initiator()?,
                service: q.service_principal.clone(),
            }
        } else {
            let creds = learner
                .iter()
                .filter(|m| m.class == jaas::DIGEST_LOGIN_MODULE)
                .find_map(|m| {
                    Some((
                        m.options.get("username")?.clone(),
                        m.options.get("password")?.clone(),
                    ))
                });
            let Some((user, password)) = creds else {
                return Err(format!(
                    "{}: section '{}' has no {} with username and password, and no \
                     Krb5LoginModule",
                    path.display(),
                    q.learner_context,
                    jaas::DIGEST_LOGIN_MODULE
                ));
            };
            LearnerLogin::Digest { user, password }
        };
        Ok(Some(QuorumAuth {
            learner: q.learner_require.then_some(login),
            users: Arc::new(users),
            kerberos,
            server_require: q.server_require,
        }))
    }

    /// `SaslQuorumAuthLearner.authenticate` on a connection we dialed (after the hello) to
    /// the server at `host`.
    pub async fn learn<R, W>(&self, host: &str, rd: &mut R, wr: &mut W) -> Result<(), String>
    where
        R: AsyncReadExt + Unpin,
        W: AsyncWrite + Unpin,
    {
        match &self.learner {
            // learnerRequireSasl off: ZooKeeper's learner skips SASL
            None => Ok(()),
            Some(LearnerLogin::Digest { user, password }) => {
                learn_digest(user, password, rd, wr).await
            }
            Some(LearnerLogin::Kerberos { cred, service }) => {
                let service = service_principal(service, host);
                learn_gssapi(cred.clone(), &service, rd, wr).await
            }
        }
    }

    /// `SaslQuorumAuthServer.authenticate` on a connection we accepted (after the hello).
    /// `first` are the 4 bytes read after the hello: an auth frame's head, or a peer
    /// message's (then returned, for the frame reader). `Err` refuses the peer.
    pub async fn serve<R, W>(
        &self,
        first: [u8; 4],
        rd: &mut R,
        wr: &mut W,
    ) -> Result<Option<[u8; 4]>, String>
    where
        R: AsyncReadExt + Unpin,
        W: AsyncWrite + Unpin,
    {
        let head = u32::from_be_bytes(first);
        if head & AUTH_BIT == 0 {
            if self.server_require {
                return Err(
                    "it did not authenticate, and quorum.auth.serverRequireSasl is set".into(),
                );
            }
            return Ok(Some(first));
        }
        let mut token = read_body(rd, head).await?.1;
        // DIGEST-MD5's first token is empty, GSSAPI's a context token
        if let Some((cred, hosts)) = &self.kerberos
            && (!token.is_empty() || self.users.is_empty())
        {
            return self.serve_gssapi(cred, hosts, token, rd, wr).await;
        }
        let mut server =
            DigestMd5Server::named(self.users.clone(), QUORUM_PROTOCOL, QUORUM_SERVER_NAME);
        let mut rounds = 0;
        loop {
            rounds += 1;
            match server.step(&token) {
                Ok((reply, Some(user))) => {
                    send(wr, SUCCESS, &reply).await?;
                    tracing::info!("quorum SASL: authenticated learner user {user}");
                    return Ok(None);
                }
                Ok((challenge, None)) if rounds < 3 => {
                    send(wr, IN_PROGRESS, &challenge).await?;
                    token = receive(rd).await?.1;
                }
                Ok(_) => return self.failed(wr, SaslError::new("too many rounds")).await,
                Err(e) => return self.failed(wr, e).await,
            }
        }
    }

    async fn serve_gssapi<R, W>(
        &self,
        cred: &Cred,
        hosts: &BTreeSet<String>,
        mut token: Vec<u8>,
        rd: &mut R,
        wr: &mut W,
    ) -> Result<Option<[u8; 4]>, String>
    where
        R: AsyncReadExt + Unpin,
        W: AsyncWrite + Unpin,
    {
        let mut server = GssapiServer::new(cred.clone());
        for _ in 0..6 {
            match server.step(&token) {
                Ok((
                    reply,
                    Some(gssapi::Authenticated {
                        principal: peer,
                        authzid,
                    }),
                )) => {
                    if let Err(e) = authorize_learner(&peer, &authzid, hosts) {
                        return self.failed(wr, e).await;
                    }
                    send(wr, SUCCESS, &reply).await?;
                    tracing::info!("quorum SASL: authenticated learner {peer} (GSSAPI)");
                    return Ok(None);
                }
                Ok((reply, None)) => {
                    send(wr, IN_PROGRESS, &reply).await?;
                    token = receive(rd).await?.1;
                }
                Err(e) => return self.failed(wr, e).await,
            }
        }
        self.failed(wr, SaslError::new("too many rounds")).await
    }

    async fn failed<W: AsyncWrite + Unpin>(
        &self,
        wr: &mut W,
        e: SaslError,
    ) -> Result<Option<[u8; 4]>, String> {
        let _ = send(wr, ERROR, b"").await;
        if self.server_require {
            Err(format!("quorum SASL failed: {e}"))
        } else {
            tracing::warn!(
                "quorum SASL failed ({e}); keeping the connection: quorum.auth.serverRequireSasl is off"
            );
            Ok(None)
        }
    }
}

/// `SaslQuorumServerCallbackHandler.handleAuthorizeCallback` for Kerberos: the learner asks
/// for no other identity than its own, and a principal with a host part names one of the
/// quorum's hosts.
fn authorize_learner(peer: &str, authzid: &str, hosts: &BTreeSet<String>) -> Result<(), SaslError> {
    if peer != authzid {
        return Err(SaslError::new(format!(
            "learner {peer} asked to act as {authzid}: not authorized"
        )));
    }
    let parts: Vec<&str> = peer.split(['/', '@']).collect();
    if parts.len() == 3 && !hosts.contains(&parts[1].to_ascii_lowercase()) {
        return Err(SaslError::new(format!(
            "{peer} is not authorized to connect: host {} is not one of the quorum's",
            parts[1]
        )));
    }
    Ok(())
}

/// `SecurityUtils.getServerPrincipal`: `_HOST` in the service principal is the host dialed,
/// in lower case.
pub fn service_principal(configured: &str, host: &str) -> String {
    configured.replace("_HOST", &host.to_ascii_lowercase())
}

async fn learn_digest<R, W>(
    user: &str,
    password: &str,
    rd: &mut R,
    wr: &mut W,
) -> Result<(), String>
where
    R: AsyncReadExt + Unpin,
    W: AsyncWrite + Unpin,
{
    send(wr, IN_PROGRESS, b"").await?;
    let (status, challenge) = receive(rd).await?;
    if status != IN_PROGRESS {
        return Err("the server refused to start quorum SASL".into());
    }
    let (response, rspauth) =
        digest_md5::client_response(&challenge, user, password, QUORUM_PROTOCOL)
            .map_err(|e| e.to_string())?;
    send(wr, IN_PROGRESS, &response).await?;
    match receive(rd).await? {
        (SUCCESS, token) if token == rspauth => Ok(()),
        (SUCCESS, _) => Err("the server's DIGEST-MD5 rspauth does not match".into()),
        _ => Err(format!(
            "the server refused our quorum SASL credentials (user {user})"
        )),
    }
}

/// One GSSAPI step off the async threads: the first may ask the KDC for tickets.
async fn client_step(
    client: GssapiClient,
    challenge: Option<Vec<u8>>,
) -> Result<(GssapiClient, Vec<u8>, bool), String> {
    tokio::task::spawn_blocking(move || {
        let mut client = client;
        let (tok, done) = client.step(challenge.as_deref())?;
        Ok((client, tok, done))
    })
    .await
    .map_err(|e| format!("GSSAPI: {e}"))?
}

async fn learn_gssapi<R, W>(cred: Cred, service: &str, rd: &mut R, wr: &mut W) -> Result<(), String>
where
    R: AsyncReadExt + Unpin,
    W: AsyncWrite + Unpin,
{
    let client = GssapiClient::new(cred, service)?;
    let (mut client, tok, _) = client_step(client, None)
        .await
        .map_err(|e| format!("cannot get a ticket for {service}: {e}"))?;
    send(wr, IN_PROGRESS, &tok).await?;
    let mut done = false;
    for _ in 0..6 {
        match receive(rd).await? {
            (SUCCESS, _) if done => return Ok(()),
            (IN_PROGRESS, challenge) if !done => {
                let (c, tok, d) = client_step(client, Some(challenge)).await?;
                client = c;
                done = d;
                send(wr, IN_PROGRESS, &tok).await?;
            }
            (SUCCESS, _) => return Err("the server ended quorum SASL early".into()),
            _ => {
                return Err(format!(
                    "the server ({service}) refused our Kerberos credentials"
                ));
            }
        }
    }
    Err("quorum SASL: too many rounds".into())
}

async fn send<W: AsyncWrite + Unpin>(wr: &mut W, status: i32, token: &[u8]) -> Result<(), String> {
    let len = (4 + token.len()) as u32 | AUTH_BIT;
    let mut f = len.to_be_bytes().to_vec();
    f.extend_from_slice(&status.to_be_bytes());
    f.extend_from_slice(token);
    wr.write_all(&f).await.map_err(|e| e.to_string())
}

async fn receive<R: AsyncReadExt + Unpin>(rd: &mut R) -> Result<(i32, Vec<u8>), String> {
    let mut head = [0u8; 4];
    rd.read_exact(&mut head).await.map_err(|e| e.to_string())?;
    let head = u32::from_be_bytes(head);
    if head & AUTH_BIT == 0 {
        return Err("expected a quorum SASL frame".into());
    }
    read_body(rd, head).await
}

async fn read_body<R: AsyncReadExt + Unpin>(
    rd: &mut R,
    head: u32,
) -> Result<(i32, Vec<u8>), String> {
    let len = (head & !AUTH_BIT) as usize;
    if !(4..=MAX_TOKEN).contains(&len) {
        return Err(format!("a quorum SASL frame of {len} bytes"));
    }
    let mut body = vec![0u8; len];
    rd.read_exact(&mut body).await.map_err(|e| e.to_string())?;
    let status = i32::from_be_bytes([body[0], body[1], body[2], body[3]]);
    Ok((status, body[4..].to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_is_the_dialed_one_in_lower_case() {
        assert_eq!(
            service_principal("zkquorum/_HOST", "ZK1.Example.COM"),
            "zkquorum/zk1.example.com"
        );
        assert_eq!(
            service_principal("zkquorum/localhost", "10.0.0.1"),
            "zkquorum/localhost"
        );
    }

    #[test]
    fn a_learner_is_authorized_as_itself_from_a_quorum_host() {
        let hosts: BTreeSet<String> = ["127.0.0.1".to_string(), "zk2".to_string()].into();
        let p = "zkquorum/127.0.0.1@KAZOOTEST.ORG";
        assert!(authorize_learner(p, p, &hosts).is_ok());
        assert!(authorize_learner("zkquorum/ZK2@R", "zkquorum/ZK2@R", &hosts).is_ok());
        // no host part: nothing to check but the identity
        assert!(authorize_learner("learner@R", "learner@R", &hosts).is_ok());
        let e = authorize_learner("zkquorum/10.0.0.9@R", "zkquorum/10.0.0.9@R", &hosts);
        assert!(e.is_err_and(|e| e.to_string().contains("10.0.0.9")));
        assert!(authorize_learner(p, "zkquorum/zk2@KAZOOTEST.ORG", &hosts).is_err());
    }
}
