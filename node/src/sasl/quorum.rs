//! Quorum SASL, as ZooKeeper's `SaslQuorumAuthLearner` / `SaslQuorumAuthServer` run it on
//! every server-to-server connection: the side that connects authenticates (DIGEST-MD5 with the
//! JAAS `QuorumLearner` section's `username`/`password`) to the side that accepts (the
//! `QuorumServer` section's `user_NAME="password"` options), right after this build's hello.
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
use crate::jaas::{self, JaasConfig};
use std::collections::BTreeMap;
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
}

impl Default for QuorumAuthSettings {
    fn default() -> QuorumAuthSettings {
        QuorumAuthSettings {
            enable: false,
            learner_require: false,
            server_require: false,
            learner_context: "QuorumLearner".into(),
            server_context: "QuorumServer".into(),
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

/// What a server needs for quorum SASL, read once at start.
pub struct QuorumAuth {
    /// (username, password) to authenticate with when connecting, if `learnerRequireSasl`.
    learner: Option<(String, String)>,
    /// The users accepted from connecting peers.
    users: Arc<BTreeMap<String, String>>,
    server_require: bool,
}

impl std::fmt::Debug for QuorumAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuorumAuth")
            .field("learner", &self.learner.as_ref().map(|(u, _)| u))
            .field("users", &self.users.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl QuorumAuth {
    /// `None` without `quorum.auth.enableSasl`. Both JAAS sections must be there (ZooKeeper
    /// logs in with both at start), or the server refuses to start naming what is missing.
    pub fn from_settings(
        q: &QuorumAuthSettings,
        jaas_file: Option<&PathBuf>,
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
        for (name, section) in [(&q.server_context, server), (&q.learner_context, learner)] {
            if section.iter().any(|m| jaas::is_krb5_module(&m.class)) {
                return Err(format!(
                    "{}: section '{name}' uses Kerberos (Krb5LoginModule): quorum GSSAPI is not \
                     implemented in this build; refusing to start",
                    path.display()
                ));
            }
        }
        let users = jaas::digest_users(server);
        if users.is_empty() {
            return Err(format!(
                "{}: section '{}' has no {} with user_NAME=\"password\" options",
                path.display(),
                q.server_context,
                jaas::DIGEST_LOGIN_MODULE
            ));
        }
        let creds = learner
            .iter()
            .filter(|m| m.class == jaas::DIGEST_LOGIN_MODULE)
            .find_map(|m| {
                Some((
                    m.options.get("username")?.clone(),
                    m.options.get("password")?.clone(),
                ))
            });
        let Some(creds) = creds else {
            return Err(format!(
                "{}: section '{}' has no {} with username and password",
                path.display(),
                q.learner_context,
                jaas::DIGEST_LOGIN_MODULE
            ));
        };
        Ok(Some(QuorumAuth {
            learner: q.learner_require.then_some(creds),
            users: Arc::new(users),
            server_require: q.server_require,
        }))
    }

    /// `SaslQuorumAuthLearner.authenticate` on a connection we dialed (after the hello).
    pub async fn learn<R, W>(&self, rd: &mut R, wr: &mut W) -> Result<(), String>
    where
        R: AsyncReadExt + Unpin,
        W: AsyncWrite + Unpin,
    {
        let Some((user, password)) = &self.learner else {
            return Ok(()); // learnerRequireSasl off: ZooKeeper's learner skips SASL
        };
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
