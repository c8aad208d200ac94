//! `op client=C REQUEST` (one request, then stabilize), `send client=C REQUEST` (the request
//! reaches its server and nothing else moves) and `pipeline client=C R1 ; R2 ; ...` (requests
//! sent back to back before any reply, then stabilize). Requests:
//!   create PATH DATA [ephemeral|sequential|ephemeral-sequential] [acl=SCHEME:ID:PERMS]
//!   set PATH DATA | get PATH [watch] | exists PATH [watch] | children PATH [watch]
//!   delete PATH | sync PATH | close | auth SCHEME CRED | setacl PATH SPEC | getacl PATH
//!   whoami | addwatch PATH [recursive] | ephemerals PREFIX | count PATH

use super::{World, arg, stabilize::stabilize};
use ensemble_core::server::Event;
use ensemble_proto::proto::{Acl, AddWatchMode, CreateMode, CreateOp, Id, Request, perms};

pub fn op(w: &mut World, args: &[&str]) {
    let name = arg(args, "client").expect("client=");
    send(w, name, &args[1..]);
    stabilize(w);
}

/// `send client=C REQUEST`: the request reaches its server, nothing else moves.
pub fn send_only(w: &mut World, args: &[&str]) {
    let name = arg(args, "client").expect("client=");
    send(w, name, &args[1..]);
}

pub fn pipeline(w: &mut World, args: &[&str]) {
    let name = arg(args, "client").expect("client=");
    let text = args[1..].join(" ");
    for part in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let words: Vec<&str> = part.split_whitespace().collect();
        send(w, name, &words);
    }
    stabilize(w);
}

/// Client `name` sends the request `words` spell, remembered by its xid for the reply.
fn send(w: &mut World, name: &str, words: &[&str]) {
    let request = parse_request(words);
    let c = w.clients.clients.get_mut(name).expect("client");
    let xid = c.next_xid;
    c.next_xid += 1;
    c.pending.insert(xid, words.join(" "));
    let (server, conn) = (c.server, c.conn);
    w.step(server, Event::Client { conn, xid, request });
}

/// `SCHEME:ID:PERMS`, perms as zkCli writes them (`cdrwa`); the id may hold colons
/// (`digest:user:hash:r`, `auth::cdrwa`).
fn parse_acl(spec: &str) -> Vec<Acl> {
    let (scheme, rest) = spec.split_once(':').expect("acl SCHEME:ID:PERMS");
    let (id, letters) = rest.rsplit_once(':').expect("acl SCHEME:ID:PERMS");
    let mut p = 0;
    for ch in letters.chars() {
        p |= match ch {
            'r' => perms::READ,
            'w' => perms::WRITE,
            'c' => perms::CREATE,
            'd' => perms::DELETE,
            'a' => perms::ADMIN,
            other => panic!("unknown permission {other}"),
        };
    }
    vec![Acl {
        perms: p,
        id: Id::new(scheme, id),
    }]
}

fn parse_request(words: &[&str]) -> Request {
    // `acl=SPEC` anywhere sets a create's ACL (open by default)
    let acl = words
        .iter()
        .find_map(|w| w.strip_prefix("acl="))
        .map(parse_acl)
        .unwrap_or_else(Acl::open_unsafe);
    let words: Vec<&str> = words
        .iter()
        .copied()
        .filter(|w| !w.starts_with("acl="))
        .collect();
    let path = words.get(1).map(|s| s.to_string()).unwrap_or_default();
    let data = || words.get(2).unwrap_or(&"").as_bytes().to_vec();
    let watch = words.contains(&"watch");
    match words[0] {
        "create" => {
            let mode = match words.get(3).copied() {
                Some("ephemeral") => CreateMode::Ephemeral,
                Some("sequential") => CreateMode::PersistentSequential,
                Some("ephemeral-sequential") => CreateMode::EphemeralSequential,
                _ => CreateMode::Persistent,
            };
            Request::Create {
                op: CreateOp::Create,
                path,
                data: data(),
                acl,
                mode,
                ttl: -1,
            }
        }
        "set" => Request::SetData {
            path,
            data: data(),
            version: -1,
        },
        "get" => Request::GetData { path, watch },
        "exists" => Request::Exists { path, watch },
        "children" => Request::GetChildren { path, watch },
        "delete" => Request::Delete { path, version: -1 },
        "sync" => Request::Sync { path },
        "close" => Request::CloseSession,
        // `auth SCHEME CREDENTIALS`, e.g. `auth digest user:pw`
        "auth" => Request::Auth {
            scheme: path,
            auth: data(),
        },
        "setacl" => Request::SetAcl {
            path,
            acl: parse_acl(words.get(2).expect("setacl PATH SPEC")),
            version: -1,
        },
        "getacl" => Request::GetAcl { path },
        "whoami" => Request::WhoAmI,
        "addwatch" => Request::AddWatch {
            path,
            mode: if words.contains(&"recursive") {
                AddWatchMode::PersistentRecursive
            } else {
                AddWatchMode::Persistent
            },
        },
        "ephemerals" => Request::GetEphemerals { prefix: path },
        "count" => Request::GetAllChildrenNumber { path },
        other => panic!("unknown op {other}"),
    }
}
