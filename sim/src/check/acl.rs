//! Clients with identities, and ZooKeeper's access control as they see it.
//!
//! The `acl` role (`client::roles::acl`) adds identities (digest with `addAuth`, `sasl` and
//! `x509` established by the server's runtime, sometimes with requests in flight), works
//! in subtrees whose ACLs deny the world (one readable by one identity only, one writable by
//! anyone but readable only by one identity), and watches them with one-shot, persistent and
//! persistent-recursive watches. Two claims are checked from what each client saw:
//!
//! * `acl.no-unauthorized-access`: every successful read or write, and every watch event, on a
//!   znode was allowed by that znode's ACL (from the committed history) for the identities the
//!   client had added by then. ZooKeeper before 3.9.2 delivered persistent-watch events
//!   without the READ check (CVE-2024-23944).
//! * `acl.auth-not-applied`: a request refused with NoAuth was not allowed for the identities
//!   the client had added before it sent it. ZooKeeper applies an auth packet when it arrives,
//!   out of band, so a request sent after `addAuth` is judged with that identity even when
//!   requests sent before it are still in flight.
//!
//! The judgement is this module's own (the ACL rules are a few lines), not the core's.

use crate::check::{Claim, Reference, Violation, violation};
use ensemble_core::zxid::Zxid;
use ensemble_proto::proto::{Acl, EventType, Id, KeeperError, Reply, Request, WatchedEvent, perms};

/// Is this id a super user on every server (its superDigest, `zookeeper.superUser`,
/// `zookeeper.X509AuthenticationProvider.superUser`)?
fn is_super(id: &Id) -> bool {
    match id.scheme.as_str() {
        "digest" => id.id == ensemble_core::acl::digest_id(crate::client::SUPER_AUTH),
        "sasl" => id.id == crate::client::SASL_SUPER,
        "x509" => id.id == crate::client::X509_SUPER,
        _ => false,
    }
}

/// Does `acl` grant `perm` to a client with the ids `ids`? An empty ACL grants all; a super
/// user passes every ACL; a SASL principal literally named `super` matches every `sasl` entry
/// (ZooKeeper's SASLAuthenticationProvider).
pub fn allows(acl: &[Acl], perm: i32, ids: &[Id]) -> bool {
    acl.is_empty()
        || ids.iter().any(is_super)
        || acl.iter().any(|a| {
            a.perms & perm != 0
                && match a.id.scheme.as_str() {
                    "world" => a.id.id == "anyone",
                    "digest" | "x509" => ids.contains(&a.id),
                    "ip" => ids
                        .iter()
                        .any(|i| i.scheme == "ip" && ip_matches(&a.id.id, &i.id)),
                    "sasl" => ids
                        .iter()
                        .any(|i| i.scheme == "sasl" && (i.id == a.id.id || i.id == "super")),
                    _ => false,
                }
        })
}

/// `IPAuthenticationProvider.matches`, restated: an IPv4 `addr[/bits]` expression (bits 0 to
/// 32, 32 when absent) against a client's address; the first `bits` bits must agree.
pub fn ip_matches(expr: &str, client: &str) -> bool {
    let v4 = |s: &str| -> Option<[u8; 4]> {
        let parts: Vec<u8> = s
            .split('.')
            .map(|p| p.parse().ok())
            .collect::<Option<_>>()?;
        parts.try_into().ok()
    };
    let (addr, bits) = match expr.split_once('/') {
        Some((a, b)) => match b.parse::<u32>() {
            Ok(b) if b <= 32 => (a, b),
            _ => return false,
        },
        None => (expr, 32),
    };
    let (Some(a), Some(c)) = (v4(addr), v4(client)) else {
        return false;
    };
    (0..bits as usize).all(|bit| {
        let (byte, shift) = (bit / 8, 7 - bit % 8);
        (a[byte] >> shift) & 1 == (c[byte] >> shift) & 1
    })
}

/// The znode whose ACL a create or delete of `path` is judged by (the root's own for `/`).
pub(crate) fn parent(path: &str) -> &str {
    ensemble_core::path::parent(path).unwrap_or("/")
}

/// What a request needs: the znode whose ACL is checked, the permission, and whether it is
/// checked against the state before the request's own txn (a write) or at the reply (a read).
fn needs(req: &Request) -> Option<(&str, i32, bool)> {
    Some(match req {
        Request::Create { path, .. } => (parent(path), perms::CREATE, true),
        Request::Delete { path, .. } => (parent(path), perms::DELETE, true),
        Request::SetData { path, .. } => (path, perms::WRITE, true),
        Request::GetData { path, .. }
        | Request::GetChildren { path, .. }
        | Request::GetChildren2 { path, .. } => (path, perms::READ, false),
        // ZooKeeper's FinalRequestProcessor: READ or ADMIN (checkACL grants on any shared bit)
        Request::GetAcl { path } => (path, perms::READ | perms::ADMIN, false),
        _ => return None,
    })
}

/// A client's identities around one request.
pub struct Identities<'a> {
    /// Added before the request was sent.
    pub sent: &'a [Id],
    /// Added by the time its reply came (the server cannot know of others).
    pub now: &'a [Id],
}

/// Judge one reply.
pub fn check_reply(
    client: usize,
    req: &Request,
    (reply, zxid): (&Reply, i64),
    ids: &Identities,
    r: &Reference,
    now: u64,
) -> Result<(), Violation> {
    let (ids_sent, ids_now) = (ids.sent, ids.now);
    let Some((path, perm, before)) = needs(req) else {
        return Ok(());
    };
    if zxid <= 0 {
        return Ok(());
    }
    let z = Zxid(zxid as u64);
    // a write is judged on the state its txn applied to; a read on the state it read
    let at = if before { Zxid(z.0 - 1) } else { z };
    if at <= r.opaque_through && r.opaque_through > Zxid::ZERO {
        return Ok(());
    }
    let Some(node) = r.node_at(path, at) else {
        return Ok(());
    };
    match reply {
        Ok(_) if !allows(&node.acl, perm, ids_now) => Err(violation(
            Claim::AclNoUnauthorizedAccess,
            now,
            format!(
                "client {client} {req:?} succeeded at {z}, but {path}'s ACL {:?} does not grant {} to its identities {:?}",
                node.acl,
                perm_name(perm),
                users(ids_now)
            ),
        )),
        Err(KeeperError::NoAuth) if allows(&node.acl, perm, ids_sent) => Err(violation(
            Claim::AclAuthNotApplied,
            now,
            format!(
                "client {client} {req:?} was refused NoAuth at {z}, but {path}'s ACL grants {} to {:?}, added before it was sent",
                perm_name(perm),
                users(ids_sent)
            ),
        )),
        Ok(response) => check_shown_acl(client, req, response, z, ids, r, now),
        // an `auth` id with no authenticated id to stand for is InvalidAcl, and only then
        Err(KeeperError::InvalidAcl)
            if matches!(req, Request::Create { acl, .. } if acl.iter().any(|a| a.id.scheme == "auth"))
                && !auth_expanded(perms::ALL, ids_sent).is_empty() =>
        {
            Err(violation(
                Claim::AclShown,
                now,
                format!(
                    "client {client} {req:?} was refused InvalidAcl at {z}, but its `auth` id stands for {:?}, added before it was sent",
                    users(ids_sent)
                ),
            ))
        }
        _ => Ok(()),
    }
}

/// The ACL an `auth` id stands for in a create: every id of an authenticating scheme the
/// client holds (`PrepRequestProcessor.fixupACL`; `ip` is an address, not an authentication).
fn auth_expanded(perms: i32, ids: &[Id]) -> Vec<Acl> {
    ids.iter()
        .filter(|i| matches!(i.scheme.as_str(), "digest" | "sasl" | "x509"))
        .map(|i| Acl {
            perms,
            id: i.clone(),
        })
        .collect()
}

/// getACL's answer to a client without ADMIN: digest ids as `user:x` (ZooKeeper 3.6+,
/// `replaceAll(":.*", ":x")`), restated here apart from the core's.
fn masked(acl: &[Acl]) -> Vec<Acl> {
    acl.iter()
        .map(|a| match (a.id.scheme.as_str(), a.id.id.split_once(':')) {
            ("digest", Some((user, _))) => Acl {
                perms: a.perms,
                id: Id::new("digest", &format!("{user}:x")),
            },
            _ => a.clone(),
        })
        .collect()
}

/// `acl.shown`: what a successful getACL shows and what a create's `auth` id became.
/// * getACL answers the znode's ACL and Stat at the read's zxid, with digests masked
///   exactly when the client may not ADMIN it (either form while an addAuth that decides it
///   is in flight);
/// * a create whose ACL names `auth` stores the client's authenticating ids in its place
///   (judged when no addAuth was in flight, as a set: the server keeps them in the order
///   they arrived).
fn check_shown_acl(
    client: usize,
    req: &Request,
    response: &ensemble_proto::proto::Response,
    z: Zxid,
    ids: &Identities,
    r: &Reference,
    now: u64,
) -> Result<(), Violation> {
    use ensemble_proto::proto::Response;
    let fail = |what: String| Err(violation(Claim::AclShown, now, what));
    match (req, response) {
        (Request::GetAcl { path }, Response::GetAcl { acl, stat }) => {
            let Some(node) = r.node_at(path, z) else {
                return Ok(());
            };
            let full = if node.acl.is_empty() {
                Acl::open_unsafe()
            } else {
                node.acl.clone()
            };
            let hidden = masked(&full);
            let ok = if allows(&full, perms::ADMIN, ids.sent) {
                *acl == full
            } else if !allows(&full, perms::ADMIN, ids.now) {
                *acl == hidden
            } else {
                *acl == full || *acl == hidden
            };
            if !ok || *stat != node.stat {
                return fail(format!(
                    "client {client} getACL {path} at {z} (identities {:?}) answered {acl:?} {stat:?}, but the znode's ACL there is {full:?} (masked: {hidden:?}) {:?}",
                    users(ids.now),
                    node.stat
                ));
            }
            Ok(())
        }
        (Request::Create { path, acl, .. }, _)
            if ids.sent.len() == ids.now.len() && acl.iter().any(|a| a.id.scheme == "auth") =>
        {
            if auth_expanded(perms::ALL, ids.now).is_empty() {
                return fail(format!(
                    "client {client} created {path} at {z} with {acl:?} but holds no authenticated id for `auth` to stand for"
                ));
            }
            let Some(node) = r.node_at(path, z) else {
                return Ok(());
            };
            let mut want: Vec<Acl> = Vec::new();
            for a in acl {
                let expanded = if a.id.scheme == "auth" {
                    auth_expanded(a.perms, ids.now)
                } else {
                    vec![a.clone()]
                };
                for e in expanded {
                    if !want.contains(&e) {
                        want.push(e);
                    }
                }
            }
            let mut got = node.acl.clone();
            got.sort_by(|a, b| {
                (&a.id.scheme, &a.id.id, a.perms).cmp(&(&b.id.scheme, &b.id.id, b.perms))
            });
            want.sort_by(|a, b| {
                (&a.id.scheme, &a.id.id, a.perms).cmp(&(&b.id.scheme, &b.id.id, b.perms))
            });
            if got != want {
                return fail(format!(
                    "client {client} created {path} at {z} with {acl:?} holding {:?}, but the znode's ACL is {got:?}, not {want:?}",
                    users(ids.now)
                ));
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Judge one watch event: some state its znode ever had in the committed history must let
/// the client's identities READ it (an event tells of the znode as surely as a read).
pub fn check_event(
    client: usize,
    ev: &WatchedEvent,
    ids_now: &[Id],
    r: &Reference,
    now: u64,
) -> Result<(), Violation> {
    if ev.kind == EventType::None {
        return Ok(());
    }
    let hist = r.path_history(&ev.path);
    let mut known = false;
    for (_, n) in hist {
        if let Some(n) = n {
            known = true;
            if allows(&n.acl, perms::READ, ids_now) {
                return Ok(());
            }
        }
    }
    if !known || r.opaque_through > Zxid::ZERO {
        // nothing to judge by (a history that came in a snapshot may hide other ACLs)
        return Ok(());
    }
    Err(violation(
        Claim::AclNoUnauthorizedAccess,
        now,
        format!(
            "client {client} heard {:?} on {}, which no ACL it ever had lets {:?} read",
            ev.kind,
            ev.path,
            users(ids_now)
        ),
    ))
}

fn perm_name(p: i32) -> &'static str {
    match p {
        perms::READ => "READ",
        perms::WRITE => "WRITE",
        perms::CREATE => "CREATE",
        perms::DELETE => "DELETE",
        perms::ADMIN => "ADMIN",
        _ => "READ or ADMIN",
    }
}

fn users(ids: &[Id]) -> Vec<String> {
    ids.iter()
        .map(|i| match i.scheme.as_str() {
            // the user, not the hash
            "digest" => format!("digest:{}", i.id.split(':').next().unwrap_or_default()),
            _ => format!("{}:{}", i.scheme, i.id),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn ip_expressions_match_by_their_mask() {
        assert!(super::ip_matches("127.0.1.5", "127.0.1.5"));
        assert!(super::ip_matches("127.0.1.5/32", "127.0.1.5"));
        assert!(!super::ip_matches("127.0.1.5/32", "127.0.1.6"));
        assert!(super::ip_matches("127.0.1.4/30", "127.0.1.7"));
        assert!(!super::ip_matches("127.0.1.4/30", "127.0.1.8"));
        assert!(super::ip_matches("10.0.0.0/8", "10.200.3.4"));
        assert!(!super::ip_matches("10.0.0.0/8", "11.0.0.1"));
        assert!(super::ip_matches("0.0.0.0/0", "192.168.1.1"));
        assert!(!super::ip_matches("10.0.0.0/33", "10.0.0.0"));
        assert!(!super::ip_matches("10.0.0", "10.0.0.0"));
    }

    use super::*;
    use crate::check::Reference;
    use crate::client::roles::acl::{PRINCIPALS, SUBJECTS, subtree_acl};
    use ensemble_core::txn::{Origin, Txn, TxnOp};
    use ensemble_proto::proto::{CreateMode, CreateOp, Id};
    use ensemble_proto::proto::{KeeperState, Response, Stat};

    fn write(r: &mut Reference, z: u64, request: Request, auth: Vec<Id>) {
        let txn = Txn {
            zxid: Zxid::new(1, z as u32),
            time: 0,
            session: 1,
            cxid: z as i32,
            origin: Origin::NONE,
            op: TxnOp::Write { request, auth },
        };
        r.apply(&txn, 0).expect("applies");
    }

    fn create(path: &str, acl: Vec<Acl>) -> Request {
        Request::Create {
            op: CreateOp::Create,
            path: path.into(),
            data: b"x".to_vec(),
            acl,
            mode: CreateMode::Persistent,
            ttl: 0,
        }
    }

    fn digest(user: usize) -> Id {
        Id::new("digest", &crate::client::roles::acl::digest_id(user))
    }

    fn history() -> Reference {
        let mut r = Reference::new(None);
        write(&mut r, 1, create("/acl-a", subtree_acl(0)), vec![]);
        write(
            &mut r,
            2,
            create("/acl-a/n0", subtree_acl(0)),
            vec![digest(0)],
        );
        r
    }

    #[test]
    fn the_acl_rules() {
        let (a, b) = (vec![digest(0)], vec![digest(1)]);
        assert!(allows(&subtree_acl(0), perms::READ, &a));
        assert!(!allows(&subtree_acl(0), perms::READ, &b));
        assert!(!allows(&subtree_acl(0), perms::READ, &[]));
        assert!(allows(&subtree_acl(1), perms::READ, &a));
        assert!(!allows(&subtree_acl(1), perms::WRITE, &a));
        assert!(allows(&subtree_acl(2), perms::CREATE, &[]));
        assert!(!allows(&subtree_acl(2), perms::READ, &b));
        assert!(allows(&[], perms::ADMIN, &[]));
        let (carol, dave) = (
            Id::new("sasl", PRINCIPALS[0]),
            Id::new("sasl", PRINCIPALS[1]),
        );
        let (erin, frank) = (Id::new("x509", SUBJECTS[0]), Id::new("x509", SUBJECTS[1]));
        assert!(allows(
            &subtree_acl(0),
            perms::READ,
            std::slice::from_ref(&carol)
        ));
        assert!(!allows(
            &subtree_acl(0),
            perms::READ,
            std::slice::from_ref(&dave)
        ));
        assert!(!allows(
            &subtree_acl(0),
            perms::WRITE,
            std::slice::from_ref(&carol)
        ));
        assert!(allows(
            &subtree_acl(1),
            perms::WRITE,
            std::slice::from_ref(&erin)
        ));
        assert!(!allows(
            &subtree_acl(1),
            perms::READ,
            std::slice::from_ref(&frank)
        ));
        assert!(allows(
            &subtree_acl(3),
            perms::READ,
            std::slice::from_ref(&frank)
        ));
        assert!(!allows(
            &subtree_acl(3),
            perms::CREATE,
            std::slice::from_ref(&dave)
        ));
        // the same text under another scheme is someone else
        let carol_cert = Id::new("x509", PRINCIPALS[0]);
        assert!(!allows(&subtree_acl(3), perms::READ, &[carol_cert]));
        // a principal named `super` matches every sasl entry; the super users pass all
        assert!(allows(
            &subtree_acl(3),
            perms::ADMIN,
            &[Id::new("sasl", "super")]
        ));
        assert!(!allows(
            &subtree_acl(1),
            perms::READ,
            &[Id::new("sasl", "super")]
        ));
        for root in [PRINCIPALS[2], SUBJECTS[2]] {
            let scheme = if root.contains('@') { "sasl" } else { "x509" };
            assert!(allows(
                &subtree_acl(0),
                perms::ADMIN,
                &[Id::new(scheme, root)]
            ));
        }
    }

    #[test]
    fn a_read_or_event_the_identities_do_not_allow_is_caught() {
        let r = history();
        let z = Zxid::new(1, 2).as_i64();
        let read = Request::GetData {
            path: "/acl-a/n0".into(),
            watch: false,
        };
        let ok: Reply = Ok(Response::GetData {
            data: b"x".to_vec(),
            stat: Stat::default(),
        });
        let alice = vec![digest(0)];
        let bob = vec![digest(1)];
        let as_alice = Identities {
            sent: &alice,
            now: &alice,
        };
        let as_bob = Identities {
            sent: &bob,
            now: &bob,
        };
        assert!(check_reply(0, &read, (&ok, z), &as_alice, &r, 0).is_ok());
        let v = check_reply(0, &read, (&ok, z), &as_bob, &r, 0).expect_err("bob may not read");
        assert_eq!(v.claim, Claim::AclNoUnauthorizedAccess);
        let ev = WatchedEvent {
            kind: EventType::NodeDataChanged,
            state: KeeperState::SyncConnected,
            path: "/acl-a/n0".into(),
        };
        assert!(check_event(0, &ev, &alice, &r, 0).is_ok());
        let v = check_event(0, &ev, &[], &r, 0).expect_err("no identity may hear of it");
        assert_eq!(v.claim, Claim::AclNoUnauthorizedAccess);
    }

    #[test]
    fn a_refusal_despite_an_identity_added_before_is_caught() {
        let r = history();
        let z = Zxid::new(1, 3).as_i64();
        let set = Request::SetData {
            path: "/acl-a/n0".into(),
            data: vec![],
            version: -1,
        };
        let alice = vec![digest(0)];
        // added before the request was sent: the refusal is wrong
        let refused: Reply = Err(KeeperError::NoAuth);
        let before = Identities {
            sent: &alice,
            now: &alice,
        };
        let v = check_reply(0, &set, (&refused, z), &before, &r, 0).expect_err("alice may write");
        assert_eq!(v.claim, Claim::AclAuthNotApplied);
        // added only after it was sent: the refusal is right
        let after = Identities {
            sent: &[],
            now: &alice,
        };
        assert!(check_reply(0, &set, (&refused, z), &after, &r, 0).is_ok());
    }
}
