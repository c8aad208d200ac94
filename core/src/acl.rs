//! ACLs as ZooKeeper checks them (`ZooKeeperServer.checkACL`), validates and expands them
//! (`PrepRequestProcessor.fixupACL`), with the providers ZooKeeper registers by default:
//! `world`, `digest` (`DigestAuthenticationProvider`) and `ip` (`IPAuthenticationProvider`,
//! IPv4 with an optional `/bits` mask). A connection whose ids include `super` passes every
//! check, as in ZooKeeper.

use base64::Engine;
use ensemble_proto::proto::{Acl, Id, KeeperError};
use sha1::{Digest, Sha1};

pub const WORLD: &str = "world";
pub const ANYONE: &str = "anyone";
pub const AUTH: &str = "auth";
pub const DIGEST: &str = "digest";
pub const IP: &str = "ip";
pub const SUPER: &str = "super";

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

/// A registered provider's `matches(clientId, aclExpr)`; unknown schemes never match.
fn provider_matches(scheme: &str, client_id: &str, acl_expr: &str) -> bool {
    match scheme {
        DIGEST => client_id == acl_expr,
        IP => ip_matches(client_id, acl_expr),
        _ => false,
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
/// `auth` scheme? (`ip` is not an authentication, only an address.)
pub fn is_authenticated_scheme(scheme: &str) -> bool {
    scheme == DIGEST
}

/// `ServerAuthenticationProvider.isValid` for the providers ZooKeeper registers by default.
pub fn is_valid_id(scheme: &str, id: &str) -> bool {
    match scheme {
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
pub fn fixup(acl: &[Acl], auth: &[Id]) -> Result<Vec<Acl>, KeeperError> {
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
        } else if is_valid_id(&a.id.scheme, &a.id.id) {
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
) -> Result<std::borrow::Cow<'a, [Acl]>, KeeperError> {
    let unchanged = !acl.is_empty()
        && acl.iter().enumerate().all(|(i, a)| {
            a.id.scheme != AUTH && is_valid_id(&a.id.scheme, &a.id.id) && !acl[..i].contains(a)
        });
    if unchanged {
        Ok(std::borrow::Cow::Borrowed(acl))
    } else {
        fixup(acl, auth).map(std::borrow::Cow::Owned)
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
        assert!(is_valid_id(WORLD, ANYONE));
        assert!(!is_valid_id(WORLD, "bob"));
        assert!(is_valid_id(DIGEST, "bob:hash"));
        assert!(is_valid_id(DIGEST, ":hash"));
        assert!(is_valid_id(DIGEST, "bob:hash:"));
        assert!(!is_valid_id(DIGEST, "bob"));
        assert!(!is_valid_id(DIGEST, "bob:"));
        assert!(!is_valid_id(DIGEST, "a:b:c"));
        assert!(!is_valid_id(DIGEST, "::"));
        assert!(is_valid_id(IP, "10.0.0.1"));
        assert!(is_valid_id(IP, "10.0.0.0/8"));
        assert!(is_valid_id(IP, "10.0.0.0/0"));
        assert!(!is_valid_id(IP, "10.0.0.0/33"));
        assert!(!is_valid_id(IP, "10.0.0.256"));
        assert!(!is_valid_id(IP, "10.0.0"));
        assert!(!is_valid_id(IP, "10.0.0.1.2"));
        assert!(!is_valid_id(IP, "10.0.0.1/"));
        assert!(!is_valid_id("sasl", "bob"));
        assert!(!is_valid_id("x509", "CN=bob"));
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
                    fixup_cow(l, auth).map(|c| c.into_owned()),
                    fixup(l, auth),
                    "{l:?}"
                );
            }
        }
        assert!(matches!(
            fixup_cow(&[open], &[]),
            Ok(std::borrow::Cow::Borrowed(_))
        ));
    }

    #[test]
    fn fixup_as_prep_request_processor() {
        let bob = Id::new(DIGEST, &digest_id("bob:pw"));
        let ip = Id::new(IP, "127.0.0.1");
        assert_eq!(fixup(&[], &[]), Err(KeeperError::InvalidAcl));
        // Duplicates are removed, order kept.
        let open = acl(perms::ALL, WORLD, ANYONE);
        let r = acl(perms::READ, IP, "10.0.0.0/8");
        assert_eq!(
            fixup(&[open.clone(), r.clone(), open.clone()], &[]),
            Ok(vec![open.clone(), r])
        );
        // `auth` becomes the client's authenticated ids, never its ip.
        let auth_acl = acl(perms::ALL, AUTH, "");
        assert_eq!(
            fixup(std::slice::from_ref(&auth_acl), std::slice::from_ref(&ip)),
            Err(KeeperError::InvalidAcl)
        );
        assert_eq!(
            fixup(std::slice::from_ref(&auth_acl), &[ip.clone(), bob.clone()]),
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
                fixup(&[open.clone(), bad], std::slice::from_ref(&bob)),
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
}
