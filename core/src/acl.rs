//! ACLs as ZooKeeper checks them (`ZooKeeperServer.checkACL`), validates and expands them
//! (`PrepRequestProcessor.fixupACL`), with the providers ZooKeeper registers by default:
//! `world`, `digest` (`DigestAuthenticationProvider`) and `ip` (`IPAuthenticationProvider`,
//! IPv4 with an optional `/bits` mask), and those an operator adds with `authProvider.N`:
//! `sasl` (`SASLAuthenticationProvider`) and `x509` (`X509AuthenticationProvider`), whose ids
//! the runtime establishes (a SASL exchange, a client certificate) and hands the core with
//! `Event::ClientAuthenticated`. A connection whose ids include `super` passes every check, as
//! in ZooKeeper.

use base64::Engine;
use ensemble_proto::proto::{Acl, Id, KeeperError};
use serde::{Deserialize, Serialize};
use sha1::{Digest, Sha1};

pub const WORLD: &str = "world";
pub const ANYONE: &str = "anyone";
pub const AUTH: &str = "auth";
pub const DIGEST: &str = "digest";
pub const IP: &str = "ip";
pub const SUPER: &str = "super";
pub const SASL: &str = "sasl";
pub const X509: &str = "x509";

/// The providers configured beyond ZooKeeper's defaults (`authProvider.N=<class>` in zoo.cfg
/// or `-Dzookeeper.authProvider.N`): a scheme whose provider is not registered is unknown to
/// ZooKeeper, so its ACL ids are refused (InvalidACL) and its identities never established.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AuthProviders {
    /// `org.apache.zookeeper.server.auth.SASLAuthenticationProvider`.
    pub sasl: bool,
    /// `org.apache.zookeeper.server.auth.X509AuthenticationProvider`.
    pub x509: bool,
}

impl AuthProviders {
    /// Is `scheme` one the runtime may establish identities of (with
    /// `Event::ClientAuthenticated`)?
    pub fn establishes(self, scheme: &str) -> bool {
        match scheme {
            SASL => self.sasl,
            X509 => self.x509,
            _ => false,
        }
    }
}

/// Does `acl` grant any of the permission bits in `perm` to a client with ids `auth`?
/// An empty ACL grants everything (ZooKeeper's rule for nodes without ACL).
pub fn check(acl: &[Acl], perm: i32, auth: &[Id]) -> bool {
    assert!(
        perm != 0,
        "an ACL check must ask for at least one permission"
    );
    if acl.is_empty() || auth.iter().any(|id| id.scheme == SUPER) {
        return true;
    }
    acl.iter().filter(|a| a.perms & perm != 0).any(|a| {
        let id = &a.id;
        if id.scheme == WORLD && id.id == ANYONE {
            return true;
        }
        auth.iter()
            .filter(|mine| mine.scheme == id.scheme)
            .any(|mine| provider_matches(&id.scheme, &mine.id, &id.id))
    })
}

/// A registered provider's `matches(clientId, aclExpr)`; unknown schemes never match. A
/// connection holds `sasl` and `x509` ids only where their provider is configured (the core
/// refuses to establish others), so no provider set is needed here.
fn provider_matches(scheme: &str, client_id: &str, acl_expr: &str) -> bool {
    match scheme {
        DIGEST => client_id == acl_expr,
        IP => ip_matches(client_id, acl_expr),
        // SASLAuthenticationProvider: a principal literally named `super` matches every
        // `sasl` ACL (ZooKeeper's rule, kept for compatibility).
        SASL => client_id == SUPER || client_id == acl_expr,
        // X509AuthenticationProvider also lets its configured superUser match every `x509`
        // ACL; that connection holds the `super` id besides (`x509_auth_ids`), which passes
        // every check before any ACL entry is looked at.
        X509 => client_id == acl_expr,
        _ => false,
    }
}

/// The ids an identity established by the runtime gives a connection, in the order
/// ZooKeeper adds them: `ZooKeeperServer.processSasl` adds the `sasl` id, then `super` when
/// it is `zookeeper.superUser`; `X509AuthenticationProvider.handleAuthentication` adds
/// `super:<subject>` first when the subject is its `superUser`, then the `x509` id.
pub fn established_ids(id: &Id, sasl_super: Option<&str>, x509_super: Option<&str>) -> Vec<Id> {
    match id.scheme.as_str() {
        SASL if sasl_super == Some(id.id.as_str()) => vec![id.clone(), Id::new(SUPER, "")],
        X509 if x509_super == Some(id.id.as_str()) => vec![Id::new(SUPER, &id.id), id.clone()],
        _ => vec![id.clone()],
    }
}

/// `DigestAuthenticationProvider.generateDigest`: `user:base64(sha1("user:password"))`.
/// The user is everything before the first `:` (the whole string if there is none).
pub fn digest_id(id_password: &str) -> String {
    let user = id_password.split(':').next().unwrap_or_default();
    let hash = Sha1::digest(id_password.as_bytes());
    format!(
        "{user}:{}",
        base64::engine::general_purpose::STANDARD.encode(hash)
    )
}

/// The ids a successful `addauth digest user:password` gives a connection, as
/// `DigestAuthenticationProvider.handleAuthentication` does: the digest id, and the `super` id
/// first when that digest id is the configured super digest.
pub fn digest_auth_ids(id_password: &str, super_digest: Option<&str>) -> Vec<Id> {
    let digest = digest_id(id_password);
    let mut ids = Vec::with_capacity(2);
    if super_digest == Some(digest.as_str()) {
        ids.push(Id::new(SUPER, ""));
    }
    ids.push(Id::new(DIGEST, &digest));
    ids
}

/// `ServerAuthenticationProvider.isAuthenticated`: may ids of this scheme stand in for the
/// `auth` scheme? (`ip` is not an authentication, only an address.) A connection holds `sasl`
/// and `x509` ids only where their provider is registered.
pub fn is_authenticated_scheme(scheme: &str) -> bool {
    matches!(scheme, DIGEST | SASL | X509)
}

/// `ServerAuthenticationProvider.isValid` for the registered providers: ZooKeeper's defaults
/// and those `providers` adds.
pub fn is_valid_id(providers: AuthProviders, scheme: &str, id: &str) -> bool {
    match scheme {
        SASL if providers.sasl => is_kerberos_name(id),
        X509 if providers.x509 => is_x500_name(id),
        WORLD => id == ANYONE,
        // Java's `id.split(":")` drops trailing empty strings: `u:h:` counts as two parts.
        DIGEST => java_split_count(id, ':') == 2,
        IP => {
            let (addr, bits) = split_mask(id);
            parse_v4(addr).is_some() && bits.is_none_or(|b| parse_bits(b).is_some())
        }
        _ => false,
    }
}

/// `PrepRequestProcessor.fixupACL`: drop duplicates, refuse an empty list, unknown schemes and
/// malformed ids, and expand `auth` into the client's authenticated ids.
pub fn fixup(acl: &[Acl], auth: &[Id], providers: AuthProviders) -> Result<Vec<Acl>, KeeperError> {
    let mut unique: Vec<&Acl> = Vec::with_capacity(acl.len());
    for a in acl {
        if !unique.contains(&a) {
            unique.push(a);
        }
    }
    if unique.is_empty() {
        return Err(KeeperError::InvalidAcl);
    }
    let mut fixed = Vec::with_capacity(unique.len());
    for a in unique {
        if a.id.scheme == AUTH {
            let before = fixed.len();
            for mine in auth
                .iter()
                .filter(|mine| is_authenticated_scheme(&mine.scheme))
            {
                fixed.push(Acl {
                    perms: a.perms,
                    id: mine.clone(),
                });
            }
            if fixed.len() == before {
                return Err(KeeperError::InvalidAcl);
            }
        } else if is_valid_id(providers, &a.id.scheme, &a.id.id) {
            fixed.push(a.clone());
        } else {
            return Err(KeeperError::InvalidAcl);
        }
    }
    assert!(!fixed.is_empty());
    Ok(fixed)
}

/// [`fixup`] without a copy when it would change nothing (no duplicates, no `auth` ids, every
/// id valid): the common case of a create with a fixed ACL such as OPEN_ACL_UNSAFE.
pub fn fixup_cow<'a>(
    acl: &'a [Acl],
    auth: &[Id],
    providers: AuthProviders,
) -> Result<std::borrow::Cow<'a, [Acl]>, KeeperError> {
    let unchanged = !acl.is_empty()
        && acl.iter().enumerate().all(|(i, a)| {
            a.id.scheme != AUTH
                && is_valid_id(providers, &a.id.scheme, &a.id.id)
                && !acl[..i].contains(a)
        });
    if unchanged {
        Ok(std::borrow::Cow::Borrowed(acl))
    } else {
        fixup(acl, auth, providers).map(std::borrow::Cow::Owned)
    }
}

/// What getACL shows a client without ADMIN permission: digest ids with the hash hidden
/// (`user:x`), as ZooKeeper does since 3.6.
pub fn mask_digests(acl: &[Acl]) -> Vec<Acl> {
    acl.iter()
        .map(|a| {
            if a.id.scheme == DIGEST {
                // Java's `replaceAll(":.*", ":x")`: everything from the first ':' on.
                let user = match a.id.id.find(':') {
                    Some(i) => format!("{}:x", &a.id.id[..i]),
                    None => a.id.id.clone(),
                };
                Acl {
                    perms: a.perms,
                    id: Id {
                        scheme: DIGEST.to_string(),
                        id: user,
                    },
                }
            } else {
                a.clone()
            }
        })
        .collect()
}

/// `IPAuthenticationProvider.matches`: does client address `client` fall in `acl_expr`
/// (`a.b.c.d` or `a.b.c.d/bits`)? Only IPv4, as in ZooKeeper 3.8.0.
pub fn ip_matches(client: &str, acl_expr: &str) -> bool {
    let (addr, bits) = split_mask(acl_expr);
    let Some(acl_addr) = parse_v4(addr) else {
        return false;
    };
    let bits = match bits {
        Some(b) => match parse_bits(b) {
            Some(b) => b,
            None => return false,
        },
        None => 32,
    };
    let Some(client_addr) = parse_v4(client) else {
        return false;
    };
    assert!(bits <= 32, "a shift within the address");
    let mask = if bits == 0 {
        0
    } else {
        u32::MAX << (32 - bits)
    };
    acl_addr & mask == client_addr & mask
}

fn split_mask(expr: &str) -> (&str, Option<&str>) {
    match expr.split_once('/') {
        Some((addr, bits)) => (addr, Some(bits)),
        None => (expr, None),
    }
}

/// `Integer.parseInt` of a mask length in 0..=32.
fn parse_bits(s: &str) -> Option<u32> {
    let b: i32 = s.parse().ok()?;
    (0..=32).contains(&b).then_some(b as u32)
}

/// `v4addr2Bytes`: exactly four dot-separated `Integer.parseInt` values in 0..=255.
fn parse_v4(addr: &str) -> Option<u32> {
    let mut out = 0u32;
    let mut parts = 0;
    for part in addr.split('.') {
        parts += 1;
        if parts > 4 {
            return None;
        }
        let v: i32 = part.parse().ok()?;
        if !(0..=255).contains(&v) {
            return None;
        }
        out = (out << 8) | v as u32;
    }
    (parts == 4).then_some(out)
}

/// `new KerberosName(id)` succeeds: a name without `@` is a bare service name; one with `@`
/// must be `service[/host]@realm`, none of the parts holding `/` or `@`.
fn is_kerberos_name(id: &str) -> bool {
    let Some((principal, realm)) = id.split_once('@') else {
        return true;
    };
    if realm.contains(['/', '@']) {
        return false;
    }
    match principal.split_once('/') {
        Some((service, host)) => !service.contains('@') && !host.contains(['/', '@']),
        None => true,
    }
}

/// `new X500Principal(id)` succeeds: an RFC 2253 (or RFC 1779) distinguished name, RDNs
/// separated by `,` or `;`, each `type=value` pairs joined by `+`; the type a keyword Java knows
/// or a dotted OID; the value plain (with `\` escapes), quoted, or `#` hex. The empty name is
/// valid.
fn is_x500_name(id: &str) -> bool {
    dn::is_valid(id)
}

mod dn {
    /// Attribute keywords `X500Principal` accepts (RFC 2253's, RFC 1779's and Java's own).
    const KEYWORDS: [&str; 20] = [
        "CN",
        "C",
        "L",
        "S",
        "ST",
        "O",
        "OU",
        "T",
        "IP",
        "STREET",
        "DC",
        "DNQUALIFIER",
        "DNQ",
        "EMAILADDRESS",
        "GENERATION",
        "GIVENNAME",
        "INITIALS",
        "SERIALNUMBER",
        "SURNAME",
        "UID",
    ];

    pub(super) fn is_valid(dn: &str) -> bool {
        let b = dn.as_bytes();
        let mut i = skip_ws(b, 0);
        if i == b.len() {
            return true;
        }
        loop {
            // one attribute type and value
            let Some(after_type) = attr_type(b, i) else {
                return false;
            };
            i = skip_ws(b, after_type);
            if b.get(i) != Some(&b'=') {
                return false;
            }
            let Some(after_value) = attr_value(b, skip_ws(b, i + 1)) else {
                return false;
            };
            i = skip_ws(b, after_value);
            match b.get(i) {
                None => return true,
                Some(b',' | b';' | b'+') => i = skip_ws(b, i + 1),
                Some(_) => return false,
            }
            if i == b.len() {
                return false; // a separator with nothing after it
            }
        }
    }

    fn skip_ws(b: &[u8], mut i: usize) -> usize {
        while b.get(i) == Some(&b' ') {
            i += 1;
        }
        i
    }

    fn attr_type(b: &[u8], start: usize) -> Option<usize> {
        let mut end = start;
        while b
            .get(end)
            .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'.' || *c == b'-')
        {
            end += 1;
        }
        let word = std::str::from_utf8(&b[start..end]).ok()?;
        let oid = word
            .strip_prefix("OID.")
            .or_else(|| word.strip_prefix("oid."))
            .unwrap_or(word);
        let is_oid = !oid.is_empty()
            && oid.split('.').count() >= 2
            && oid
                .split('.')
                .all(|n| !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()));
        let known = KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(word));
        (is_oid || known).then_some(end)
    }

    /// The end of a value starting at `i`.
    fn attr_value(b: &[u8], mut i: usize) -> Option<usize> {
        match b.get(i) {
            Some(b'"') => {
                i += 1;
                loop {
                    match b.get(i)? {
                        b'"' => return Some(i + 1),
                        b'\\' => i += 2,
                        _ => i += 1,
                    }
                }
            }
            Some(b'#') => {
                let start = i + 1;
                i = start;
                while b.get(i).is_some_and(|c| c.is_ascii_hexdigit()) {
                    i += 1;
                }
                (i > start && (i - start).is_multiple_of(2)).then_some(i)
            }
            _ => {
                while let Some(&c) = b.get(i) {
                    match c {
                        b',' | b';' | b'+' => break,
                        b'\\' => {
                            b.get(i + 1)?;
                            i += 2;
                        }
                        b'"' | b'<' | b'>' => return None,
                        _ => i += 1,
                    }
                }
                Some(i)
            }
        }
    }
}

/// How many parts Java's `s.split(regex)` returns for a one-char separator: trailing empty
/// strings are removed (so `"::"` gives zero parts and `""` one).
fn java_split_count(s: &str, sep: char) -> usize {
    if s.is_empty() {
        return 1;
    }
    let parts: Vec<&str> = s.split(sep).collect();
    let trailing_empty = parts.iter().rev().take_while(|p| p.is_empty()).count();
    parts.len() - trailing_empty
}

#[cfg(test)]
mod tests {
    use super::*;
    use ensemble_proto::proto::perms;

    const NONE: AuthProviders = AuthProviders {
        sasl: false,
        x509: false,
    };
    const BOTH: AuthProviders = AuthProviders {
        sasl: true,
        x509: true,
    };

    fn acl(perms: i32, scheme: &str, id: &str) -> Acl {
        Acl {
            perms,
            id: Id::new(scheme, id),
        }
    }

    #[test]
    fn digest_matches_zookeeper() {
        // Recorded from a real ZooKeeper 3.8 (getACL after `addauth digest bob:pw`).
        assert_eq!(digest_id("bob:pw"), "bob:ikIaKsbtGweaHnb/jKn7OHqbunM=");
        // No colon: the whole string is the user.
        assert!(digest_id("bob").starts_with("bob:"));
        // A colon in the password stays in the hashed text.
        assert_ne!(digest_id("bob:p:w"), digest_id("bob:p"));
        assert!(digest_id("bob:p:w").starts_with("bob:"));
    }

    #[test]
    fn world_anyone_and_empty_acl() {
        assert!(check(&Acl::open_unsafe(), perms::ADMIN, &[]));
        assert!(check(&[], perms::WRITE, &[]));
        let read_only = vec![acl(perms::READ, WORLD, ANYONE)];
        assert!(check(&read_only, perms::READ, &[]));
        assert!(!check(&read_only, perms::WRITE, &[]));
        // Any of the requested bits is enough (getACL asks READ | ADMIN).
        assert!(check(&read_only, perms::READ | perms::ADMIN, &[]));
        // world with another id never matches.
        assert!(!check(
            &[acl(perms::ALL, WORLD, "someone")],
            perms::READ,
            &[]
        ));
    }

    #[test]
    fn digest_and_super() {
        let bob = Id::new(DIGEST, &digest_id("bob:pw"));
        let eve = Id::new(DIGEST, &digest_id("bob:wrong"));
        let a = vec![acl(perms::READ | perms::WRITE, DIGEST, &bob.id)];
        assert!(check(&a, perms::READ, std::slice::from_ref(&bob)));
        assert!(!check(&a, perms::DELETE, std::slice::from_ref(&bob)));
        assert!(!check(&a, perms::READ, &[eve]));
        assert!(!check(&a, perms::READ, &[Id::new(IP, "127.0.0.1")]));
        assert!(check(&a, perms::DELETE, &[Id::new(SUPER, "")]));
    }

    #[test]
    fn super_digest_makes_the_super_user() {
        let configured = digest_id("super:secret");
        let ids = digest_auth_ids("super:secret", Some(&configured));
        assert_eq!(ids, [Id::new(SUPER, ""), Id::new(DIGEST, &configured)]);
        let a = vec![acl(perms::READ, DIGEST, &digest_id("bob:pw"))];
        assert!(check(&a, perms::ADMIN | perms::DELETE, &ids));
        // A wrong password, or no super digest configured, is only a digest id.
        let wrong = digest_auth_ids("super:guess", Some(&configured));
        assert_eq!(wrong, [Id::new(DIGEST, &digest_id("super:guess"))]);
        assert!(!check(&a, perms::READ, &wrong));
        let unset = digest_auth_ids("super:secret", None);
        assert_eq!(unset.len(), 1);
        assert!(!check(&a, perms::READ, &unset));
    }

    #[test]
    fn ip_with_and_without_mask() {
        assert!(ip_matches("10.1.2.3", "10.1.2.3"));
        assert!(!ip_matches("10.1.2.4", "10.1.2.3"));
        assert!(ip_matches("10.1.200.3", "10.1.0.0/16"));
        assert!(!ip_matches("10.2.0.1", "10.1.0.0/16"));
        assert!(ip_matches("10.1.2.3", "10.1.2.0/25"));
        assert!(!ip_matches("10.1.2.200", "10.1.2.0/25"));
        assert!(ip_matches("1.2.3.4", "9.9.9.9/0"));
        assert!(!ip_matches("1.2.3.4", "1.2.3.4/33"));
        assert!(!ip_matches("1.2.3.4", "1.2.3.4/x"));
        assert!(!ip_matches("::1", "1.2.3.4"));
        assert!(!ip_matches("1.2.3", "1.2.3.0/24"));
        let a = vec![acl(perms::ALL, IP, "192.168.0.0/16")];
        assert!(check(&a, perms::READ, &[Id::new(IP, "192.168.5.6")]));
        assert!(!check(&a, perms::READ, &[Id::new(IP, "192.169.5.6")]));
    }

    #[test]
    fn id_validity() {
        assert!(is_valid_id(NONE, WORLD, ANYONE));
        assert!(!is_valid_id(NONE, WORLD, "bob"));
        assert!(is_valid_id(NONE, DIGEST, "bob:hash"));
        assert!(is_valid_id(NONE, DIGEST, ":hash"));
        assert!(is_valid_id(NONE, DIGEST, "bob:hash:"));
        assert!(!is_valid_id(NONE, DIGEST, "bob"));
        assert!(!is_valid_id(NONE, DIGEST, "bob:"));
        assert!(!is_valid_id(NONE, DIGEST, "a:b:c"));
        assert!(!is_valid_id(NONE, DIGEST, "::"));
        assert!(is_valid_id(NONE, IP, "10.0.0.1"));
        assert!(is_valid_id(NONE, IP, "10.0.0.0/8"));
        assert!(is_valid_id(NONE, IP, "10.0.0.0/0"));
        assert!(!is_valid_id(NONE, IP, "10.0.0.0/33"));
        assert!(!is_valid_id(NONE, IP, "10.0.0.256"));
        assert!(!is_valid_id(NONE, IP, "10.0.0"));
        assert!(!is_valid_id(NONE, IP, "10.0.0.1.2"));
        assert!(!is_valid_id(NONE, IP, "10.0.0.1/"));
        assert!(!is_valid_id(NONE, "sasl", "bob"));
        assert!(!is_valid_id(NONE, "x509", "CN=bob"));
    }

    #[test]
    fn fixup_cow_agrees_with_fixup() {
        let open = Acl::open_unsafe().remove(0);
        let r = Acl {
            perms: perms::READ,
            id: Id::anyone(),
        };
        let auth_acl = Acl {
            perms: perms::ALL,
            id: Id::new("auth", ""),
        };
        let ip = Id::new("ip", "10.0.0.1");
        let bad = Acl {
            perms: perms::ALL,
            id: Id::new("nonsense", "x"),
        };
        let lists = [
            vec![],
            vec![open.clone()],
            vec![open.clone(), r.clone()],
            vec![open.clone(), r.clone(), open.clone()],
            vec![auth_acl.clone()],
            vec![open.clone(), bad],
        ];
        for l in &lists {
            for auth in [&[][..], std::slice::from_ref(&ip)] {
                assert_eq!(
                    fixup_cow(l, auth, NONE).map(|c| c.into_owned()),
                    fixup(l, auth, NONE),
                    "{l:?}"
                );
            }
        }
        assert!(matches!(
            fixup_cow(&[open], &[], NONE),
            Ok(std::borrow::Cow::Borrowed(_))
        ));
    }

    #[test]
    fn fixup_as_prep_request_processor() {
        let bob = Id::new(DIGEST, &digest_id("bob:pw"));
        let ip = Id::new(IP, "127.0.0.1");
        assert_eq!(fixup(&[], &[], NONE), Err(KeeperError::InvalidAcl));
        // Duplicates are removed, order kept.
        let open = acl(perms::ALL, WORLD, ANYONE);
        let r = acl(perms::READ, IP, "10.0.0.0/8");
        assert_eq!(
            fixup(&[open.clone(), r.clone(), open.clone()], &[], NONE),
            Ok(vec![open.clone(), r])
        );
        // `auth` becomes the client's authenticated ids, never its ip.
        let auth_acl = acl(perms::ALL, AUTH, "");
        assert_eq!(
            fixup(
                std::slice::from_ref(&auth_acl),
                std::slice::from_ref(&ip),
                NONE
            ),
            Err(KeeperError::InvalidAcl)
        );
        assert_eq!(
            fixup(
                std::slice::from_ref(&auth_acl),
                &[ip.clone(), bob.clone()],
                NONE
            ),
            Ok(vec![Acl {
                perms: perms::ALL,
                id: bob.clone()
            }])
        );
        for bad in [
            acl(perms::ALL, "nosuch", "x"),
            acl(perms::ALL, DIGEST, "bob"),
            acl(perms::ALL, IP, "1.2.3"),
        ] {
            assert_eq!(
                fixup(&[open.clone(), bad], std::slice::from_ref(&bob), NONE),
                Err(KeeperError::InvalidAcl)
            );
        }
    }

    #[test]
    fn masking_for_non_admins() {
        let a = vec![
            acl(perms::READ, DIGEST, "bob:abc:def"),
            acl(perms::READ, IP, "1.2.3.4"),
        ];
        let m = mask_digests(&a);
        assert_eq!(m[0].id.id, "bob:x");
        assert_eq!(m[1], a[1]);
    }

    #[test]
    fn sasl_ids_as_sasl_authentication_provider() {
        // valid as `new KerberosName(id)` parses them
        for ok in [
            "bob",
            "zookeeper/host@REALM",
            "bob@REALM",
            "a/b/c",
            "@",
            "/@",
            "",
        ] {
            assert!(is_valid_id(BOTH, SASL, ok), "{ok}");
        }
        for bad in ["a@b@c", "a/b/c@R", "a@R/x", "a/b@c@d"] {
            assert!(!is_valid_id(BOTH, SASL, bad), "{bad}");
        }
        // without the provider the scheme is unknown
        assert!(!is_valid_id(NONE, SASL, "bob"));
        let only_x509 = AuthProviders {
            sasl: false,
            x509: true,
        };
        assert!(!is_valid_id(only_x509, SASL, "bob"));
        // matches: equal ids, or a principal named `super`
        let a = vec![acl(perms::READ, SASL, "bob@EXAMPLE.COM")];
        assert!(check(&a, perms::READ, &[Id::new(SASL, "bob@EXAMPLE.COM")]));
        assert!(!check(&a, perms::READ, &[Id::new(SASL, "bob")]));
        assert!(!check(
            &a,
            perms::WRITE,
            &[Id::new(SASL, "bob@EXAMPLE.COM")]
        ));
        assert!(check(&a, perms::READ, &[Id::new(SASL, SUPER)]));
        // another scheme's id of the same text is not the sasl id
        assert!(!check(&a, perms::READ, &[Id::new(X509, "bob@EXAMPLE.COM")]));
        // `auth` expands to sasl ids, which are authenticated ones
        let auth_acl = acl(perms::ALL, AUTH, "");
        let ids = [Id::new(IP, "10.0.0.1"), Id::new(SASL, "bob")];
        assert_eq!(
            fixup(std::slice::from_ref(&auth_acl), &ids, BOTH),
            Ok(vec![acl(perms::ALL, SASL, "bob")])
        );
        assert_eq!(
            fixup(&[acl(perms::ALL, SASL, "bob")], &[], NONE),
            Err(KeeperError::InvalidAcl)
        );
    }

    #[test]
    fn x509_ids_as_x509_authentication_provider() {
        for ok in [
            "",
            "CN=client",
            "CN=client,OU=eng,O=Example\\, Inc.,C=US",
            "cn=a+uid=b;o=c",
            "CN=\"quoted, name\",O=x",
            "1.2.840.113549.1.9.1=#160d61406578616d706c652e636f6d,CN=x",
            "OID.2.5.4.3=bob",
            "CN = spaced , O = x",
            "CN=a=b",
        ] {
            assert!(is_valid_id(BOTH, X509, ok), "{ok}");
        }
        for bad in [
            "bob",
            "CN",
            "CN=a,",
            "NOSUCHKEY=x",
            "CN=a<b",
            "CN=\"open",
            "=x",
            "CN=a,,O=b",
        ] {
            assert!(!is_valid_id(BOTH, X509, bad), "{bad}");
        }
        assert!(!is_valid_id(NONE, X509, "CN=client"));
        let a = vec![acl(perms::ALL, X509, "CN=client,O=x")];
        assert!(check(&a, perms::DELETE, &[Id::new(X509, "CN=client,O=x")]));
        assert!(!check(&a, perms::DELETE, &[Id::new(X509, "CN=other,O=x")]));
        assert!(!check(&a, perms::DELETE, &[Id::new(SASL, "CN=client,O=x")]));
        // an x509 principal named `super` is no one special
        assert!(!check(&a, perms::READ, &[Id::new(X509, SUPER)]));
    }

    #[test]
    fn established_ids_and_super_users() {
        let bob = Id::new(SASL, "bob");
        assert_eq!(established_ids(&bob, None, None), vec![bob.clone()]);
        assert_eq!(
            established_ids(&bob, Some("alice"), Some("bob")),
            vec![bob.clone()]
        );
        let admin = established_ids(&bob, Some("bob"), None);
        assert_eq!(admin, [bob.clone(), Id::new(SUPER, "")]);
        let a = vec![acl(perms::READ, DIGEST, &digest_id("x:y"))];
        assert!(check(&a, perms::ADMIN, &admin));
        let cert = Id::new(X509, "CN=admin");
        assert_eq!(
            established_ids(&cert, Some("CN=admin"), None),
            vec![cert.clone()]
        );
        let root = established_ids(&cert, None, Some("CN=admin"));
        assert_eq!(root, [Id::new(SUPER, "CN=admin"), cert.clone()]);
        assert!(check(&a, perms::ADMIN, &root));
        // `auth` never expands to the super id (no provider owns the `super` scheme)
        assert_eq!(
            fixup(&[acl(perms::ALL, AUTH, "")], &root, BOTH),
            Ok(vec![acl(perms::ALL, X509, "CN=admin")])
        );
    }
}
