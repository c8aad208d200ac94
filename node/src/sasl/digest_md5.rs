//! The DIGEST-MD5 SASL server (RFC 2831, qop `auth`), as Java's `DigestMD5Server` runs it for
//! ZooKeeper: `Sasl.createSaslServer("DIGEST-MD5", "zookeeper", "zk-sasl-md5", ...)`, so the
//! realm is `zk-sasl-md5` and the digest-uri must be `zookeeper/zk-sasl-md5`. Passwords come
//! from the JAAS `Server` section's `user_NAME` options. The first client token is empty and
//! answered with the challenge; the second carries the response, answered with `rspauth`.

use super::SaslError;
use base64::Engine;
use md5::{Digest, Md5};
use std::collections::BTreeMap;
use std::sync::Arc;

pub const PROTOCOL: &str = "zookeeper";
pub const SERVER_NAME: &str = "zk-sasl-md5";

enum Stage {
    Start,
    Challenged { nonce: String },
    Done,
}

pub struct DigestMd5Server {
    users: Arc<BTreeMap<String, String>>,
    stage: Stage,
    /// The digest-uri's service and host: `zookeeper/zk-sasl-md5` for clients,
    /// `zookeeper-quorum/zk-quorum-sasl-md5` between servers.
    protocol: &'static str,
    server_name: &'static str,
}

/// Quorum SASL's names (`QuorumAuth.QUORUM_SERVER_PROTOCOL_NAME`, `QUORUM_SERVER_SASL_DIGEST`).
pub const QUORUM_PROTOCOL: &str = "zookeeper-quorum";
pub const QUORUM_SERVER_NAME: &str = "zk-quorum-sasl-md5";

/// What a completed exchange established: the authenticated user name.
pub struct Authenticated {
    pub user: String,
    pub reply: Vec<u8>,
}

impl DigestMd5Server {
    pub fn new(users: Arc<BTreeMap<String, String>>) -> DigestMd5Server {
        DigestMd5Server::named(users, PROTOCOL, SERVER_NAME)
    }

    pub fn named(
        users: Arc<BTreeMap<String, String>>,
        protocol: &'static str,
        server_name: &'static str,
    ) -> DigestMd5Server {
        DigestMd5Server {
            users,
            stage: Stage::Start,
            protocol,
            server_name,
        }
    }

    /// One client token in; the server's token out, and the user once authenticated.
    pub fn step(&mut self, token: &[u8]) -> Result<(Vec<u8>, Option<String>), SaslError> {
        match std::mem::replace(&mut self.stage, Stage::Done) {
            Stage::Start => {
                // Java answers any first token with the challenge (the client's is empty).
                let nonce = new_nonce()?;
                let challenge = format!(
                    "realm=\"{}\",nonce=\"{nonce}\",qop=\"auth\",charset=utf-8,algorithm=md5-sess",
                    self.server_name
                );
                self.stage = Stage::Challenged { nonce };
                Ok((challenge.into_bytes(), None))
            }
            Stage::Challenged { nonce } => {
                let done = self.verify(&nonce, token)?;
                Ok((done.reply, Some(done.user)))
            }
            Stage::Done => Err(SaslError::new(
                "DIGEST-MD5: the authentication is already complete",
            )),
        }
    }

    fn verify(&self, nonce: &str, token: &[u8]) -> Result<Authenticated, SaslError> {
        let text = std::str::from_utf8(token)
            .map_err(|_| SaslError::new("DIGEST-MD5: the response is not UTF-8"))?;
        let d = parse_directives(text)?;
        let get = |k: &str| d.get(k).map(String::as_str);
        let violation = |what: &str| {
            SaslError::new(format!(
                "DIGEST-MD5: digest response format violation. {what}"
            ))
        };
        if let Some(cs) = get("charset")
            && !cs.eq_ignore_ascii_case("utf-8")
        {
            return Err(violation("Unrecognised charset"));
        }
        let user = get("username").ok_or_else(|| violation("Missing username."))?;
        let realm = get("realm").unwrap_or("");
        if !realm.is_empty() && realm != self.server_name {
            return Err(violation("Nonmatching realm."));
        }
        if get("nonce") != Some(nonce) {
            return Err(violation("Mismatched nonce."));
        }
        let nc = get("nc").unwrap_or("");
        if u32::from_str_radix(nc, 16) != Ok(1) {
            return Err(violation("Nonce count does not match."));
        }
        let cnonce = get("cnonce").ok_or_else(|| violation("Missing cnonce."))?;
        let qop = get("qop").unwrap_or("auth");
        if qop != "auth" {
            return Err(violation("Invalid QOP."));
        }
        let uri = get("digest-uri").ok_or_else(|| violation("Missing digest-uri."))?;
        let uri_ok = uri.split_once('/').is_some_and(|(serv, host)| {
            serv.eq_ignore_ascii_case(self.protocol) && host.eq_ignore_ascii_case(self.server_name)
        });
        if !uri_ok {
            return Err(violation("Nonmatching digest-uri."));
        }
        let response = get("response").ok_or_else(|| violation("Missing response."))?;
        let authzid = get("authzid").filter(|a| !a.is_empty());
        // an unknown user fails as a wrong password does: no hint which it was
        let password = self.users.get(user);
        let ha1 = password.map(|pw| {
            let mut inner = Md5::new();
            inner.update(latin1_or_utf8(user));
            inner.update(b":");
            inner.update(latin1_or_utf8(realm));
            inner.update(b":");
            inner.update(latin1_or_utf8(pw));
            let mut a1 = Md5::new();
            a1.update(inner.finalize());
            a1.update(format!(":{nonce}:{cnonce}").as_bytes());
            if let Some(z) = authzid {
                a1.update(b":");
                a1.update(z.as_bytes());
            }
            hex(&a1.finalize())
        });
        let kd = |ha1: &str, a2: &str| {
            let ha2 = hex(&Md5::digest(a2.as_bytes()));
            hex(&Md5::digest(
                format!("{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}").as_bytes(),
            ))
        };
        let Some(ha1) = ha1 else {
            return Err(SaslError::new(
                "DIGEST-MD5: cannot acquire password for the user",
            ));
        };
        let expected = kd(&ha1, &format!("AUTHENTICATE:{uri}"));
        if !constant_time_eq(
            expected.as_bytes(),
            response.to_ascii_lowercase().as_bytes(),
        ) {
            return Err(violation("Mismatched response."));
        }
        let rspauth = kd(&ha1, &format!(":{uri}"));
        Ok(Authenticated {
            user: user.to_string(),
            reply: format!("rspauth={rspauth}").into_bytes(),
        })
    }
}

/// The client side (what a learner runs against another server's `QuorumServer` users):
/// the response to `challenge`, and the `rspauth` the server must answer with.
pub fn client_response(
    challenge: &[u8],
    user: &str,
    password: &str,
    protocol: &str,
) -> Result<(Vec<u8>, Vec<u8>), SaslError> {
    let text = std::str::from_utf8(challenge)
        .map_err(|_| SaslError::new("DIGEST-MD5: the challenge is not UTF-8"))?;
    let d = parse_directives(text)?;
    let nonce = d
        .get("nonce")
        .ok_or_else(|| SaslError::new("DIGEST-MD5: the challenge has no nonce"))?;
    let realm = d.get("realm").map(String::as_str).unwrap_or("");
    let uri = format!("{protocol}/{realm}");
    let cnonce = new_nonce()?;
    let mut inner = Md5::new();
    inner.update(latin1_or_utf8(user));
    inner.update(b":");
    inner.update(latin1_or_utf8(realm));
    inner.update(b":");
    inner.update(latin1_or_utf8(password));
    let mut a1 = Md5::new();
    a1.update(inner.finalize());
    a1.update(format!(":{nonce}:{cnonce}").as_bytes());
    let ha1 = hex(&a1.finalize());
    let kd = |a2: &str| {
        let ha2 = hex(&Md5::digest(a2.as_bytes()));
        hex(&Md5::digest(
            format!("{ha1}:{nonce}:00000001:{cnonce}:auth:{ha2}").as_bytes(),
        ))
    };
    let response = kd(&format!("AUTHENTICATE:{uri}"));
    let rspauth = format!("rspauth={}", kd(&format!(":{uri}")));
    let quote = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
    let answer = format!(
        "charset=utf-8,username=\"{}\",realm=\"{}\",nonce=\"{nonce}\",nc=00000001,cnonce=\"{cnonce}\",digest-uri=\"{uri}\",maxbuf=65536,response={response},qop=auth",
        quote(user),
        quote(realm)
    );
    Ok((answer.into_bytes(), rspauth.into_bytes()))
}

/// RFC 2831: with `charset=utf-8`, names and passwords whose characters all fit ISO 8859-1
/// are hashed in it.
fn latin1_or_utf8(s: &str) -> Vec<u8> {
    if s.chars().all(|c| (c as u32) < 256) {
        s.chars().map(|c| c as u8).collect()
    } else {
        s.as_bytes().to_vec()
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Java's nonce: 30 random bytes, base64.
fn new_nonce() -> Result<String, SaslError> {
    let mut b = [0u8; 30];
    getrandom::getrandom(&mut b)
        .map_err(|e| SaslError::new(format!("DIGEST-MD5: no randomness for a nonce: {e}")))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(b))
}

/// `key=value` directives, comma separated; values plain or quoted with `\` escapes. Keys are
/// case-insensitive; a directive given twice is a violation.
fn parse_directives(text: &str) -> Result<BTreeMap<String, String>, SaslError> {
    let mut out = BTreeMap::new();
    let b: Vec<char> = text.chars().collect();
    let mut i = 0;
    let bad = || SaslError::new("DIGEST-MD5: digest response format violation.");
    while i < b.len() {
        while i < b.len() && (b[i].is_whitespace() || b[i] == ',') {
            i += 1;
        }
        if i == b.len() {
            break;
        }
        let start = i;
        while i < b.len() && b[i] != '=' {
            i += 1;
        }
        if i == b.len() {
            return Err(bad());
        }
        let key = b[start..i]
            .iter()
            .collect::<String>()
            .trim()
            .to_ascii_lowercase();
        i += 1;
        while i < b.len() && b[i].is_whitespace() {
            i += 1;
        }
        let mut value = String::new();
        if b.get(i) == Some(&'"') {
            i += 1;
            loop {
                match b.get(i) {
                    Some('"') => {
                        i += 1;
                        break;
                    }
                    Some('\\') => {
                        value.push(*b.get(i + 1).ok_or_else(bad)?);
                        i += 2;
                    }
                    Some(c) => {
                        value.push(*c);
                        i += 1;
                    }
                    None => return Err(bad()),
                }
            }
        } else {
            while i < b.len() && b[i] != ',' {
                value.push(b[i]);
                i += 1;
            }
            value = value.trim().to_string();
        }
        if key.is_empty() || out.insert(key, value).is_some() {
            return Err(bad());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server() -> DigestMd5Server {
        let users: BTreeMap<String, String> =
            [("jaasuser".to_string(), "jaas_password".to_string())].into();
        DigestMd5Server::new(Arc::new(users))
    }

    /// A client's answer, computed as RFC 2831 says (what pure-sasl and Java's client send).
    fn answer(challenge: &str, user: &str, pw: &str, uri: &str) -> String {
        let d = parse_directives(challenge).expect("challenge parses");
        let nonce = &d["nonce"];
        let cnonce = "OA6MHXh6VqTrRk";
        let mut inner = Md5::new();
        inner.update(format!("{user}:{SERVER_NAME}:{pw}").as_bytes());
        let mut a1 = Md5::new();
        a1.update(inner.finalize());
        a1.update(format!(":{nonce}:{cnonce}").as_bytes());
        let ha1 = hex(&a1.finalize());
        let ha2 = hex(&Md5::digest(format!("AUTHENTICATE:{uri}").as_bytes()));
        let resp = hex(&Md5::digest(
            format!("{ha1}:{nonce}:00000001:{cnonce}:auth:{ha2}").as_bytes(),
        ));
        format!(
            "charset=utf-8,username=\"{user}\",realm=\"{SERVER_NAME}\",nonce=\"{nonce}\",nc=00000001,cnonce=\"{cnonce}\",digest-uri=\"{uri}\",maxbuf=65536,response={resp},qop=auth"
        )
    }

    #[test]
    fn the_exchange_as_java_runs_it() {
        let mut s = server();
        let (challenge, who) = s.step(b"").expect("challenge");
        assert!(who.is_none());
        let challenge = String::from_utf8(challenge).expect("text");
        assert!(
            challenge.starts_with("realm=\"zk-sasl-md5\",nonce=\""),
            "{challenge}"
        );
        assert!(challenge.ends_with(",qop=\"auth\",charset=utf-8,algorithm=md5-sess"));
        let resp = answer(
            &challenge,
            "jaasuser",
            "jaas_password",
            "zookeeper/zk-sasl-md5",
        );
        let (rspauth, who) = s.step(resp.as_bytes()).expect("authenticated");
        assert_eq!(who.as_deref(), Some("jaasuser"));
        assert!(rspauth.starts_with(b"rspauth="));
        assert_eq!(rspauth.len(), "rspauth=".len() + 32);
        assert!(s.step(b"again").is_err());
    }

    #[test]
    fn wrong_password_unknown_user_and_bad_uri_fail() {
        for (user, pw, uri) in [
            ("jaasuser", "wrong", "zookeeper/zk-sasl-md5"),
            ("baduser", "badpassword", "zookeeper/zk-sasl-md5"),
            ("jaasuser", "jaas_password", "ldap/zk-sasl-md5"),
        ] {
            let mut s = server();
            let (c, _) = s.step(b"").expect("challenge");
            let resp = answer(&String::from_utf8(c).expect("text"), user, pw, uri);
            let e = s.step(resp.as_bytes()).expect_err(user);
            assert!(!e.to_string().contains(pw), "{e}");
        }
        // a replayed or foreign nonce
        let mut s = server();
        s.step(b"").expect("challenge");
        let other =
            "realm=\"zk-sasl-md5\",nonce=\"abc\",qop=\"auth\",charset=utf-8,algorithm=md5-sess";
        let resp = answer(other, "jaasuser", "jaas_password", "zookeeper/zk-sasl-md5");
        assert!(s.step(resp.as_bytes()).is_err());
        // garbage
        let mut s = server();
        s.step(b"").expect("challenge");
        assert!(s.step(b"username=\"unterminated").is_err());
    }

    #[test]
    fn directives_parse_as_rfc_2831() {
        let d = parse_directives("a=1, B=\"x\\\"y,z\" ,c=").expect("parses");
        assert_eq!(d["a"], "1");
        assert_eq!(d["b"], "x\"y,z");
        assert_eq!(d["c"], "");
        assert!(parse_directives("a=1,a=2").is_err());
        assert!(parse_directives("novalue").is_err());
    }

    #[test]
    fn our_client_against_our_server_on_the_quorum_names() {
        let users: BTreeMap<String, String> = [("learner".to_string(), "pw".to_string())].into();
        let users = Arc::new(users);
        for (pw, ok) in [("pw", true), ("bad", false)] {
            let mut s = DigestMd5Server::named(users.clone(), QUORUM_PROTOCOL, QUORUM_SERVER_NAME);
            let (challenge, _) = s.step(b"").expect("challenge");
            let (resp, rspauth) =
                client_response(&challenge, "learner", pw, QUORUM_PROTOCOL).expect("response");
            match s.step(&resp) {
                Ok((reply, who)) => {
                    assert!(ok);
                    assert_eq!(reply, rspauth);
                    assert_eq!(who.as_deref(), Some("learner"));
                }
                Err(_) => assert!(!ok),
            }
        }
        // a client's name for the service does not pass on the quorum's
        let mut s = DigestMd5Server::named(users, QUORUM_PROTOCOL, QUORUM_SERVER_NAME);
        let (challenge, _) = s.step(b"").expect("challenge");
        let (resp, _) = client_response(&challenge, "learner", "pw", PROTOCOL).expect("response");
        assert!(s.step(&resp).is_err());
    }
}
