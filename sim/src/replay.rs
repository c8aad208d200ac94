//! `replay`'s filters over a recorded trace: which lines concern given servers, clients and a
//! time window, and the failure's context restricted to the servers and clients a violation
//! names.
//!
//! A line concerns server `n3` when n3 is its subject or its text names n3 (a message sent to
//! it, a fault that hits it); it concerns client `c2` when c2 is its subject or it is on one of
//! c2's connections (a server taking c2's request or answering it: `conn 17`, learned from c2's
//! own `connect ... conn 17` lines as the trace goes). The simulator's own lines (heal, drain,
//! the violation) are kept by any node or client filter.

use crate::check::Violation;
use crate::trace::Rec;
use std::collections::{BTreeMap, BTreeSet};

/// What `--node`, `--client`, `--from` and `--to` select.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub nodes: BTreeSet<u64>,
    pub clients: BTreeSet<usize>,
    pub from: Option<u64>,
    pub to: Option<u64>,
}

impl Filter {
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty() && self.clients.is_empty() && self.from.is_none() && self.to.is_none()
    }

    /// The records this filter keeps, in order.
    pub fn apply<'a>(&self, recs: &'a [Rec]) -> Vec<&'a Rec> {
        let mut conns = Conns::default();
        let mut out = Vec::new();
        for r in recs {
            conns.learn(r);
            if self.from.is_some_and(|f| r.now < f) || self.to.is_some_and(|t| r.now > t) {
                continue;
            }
            if self.nodes.is_empty() && self.clients.is_empty() {
                out.push(r);
                continue;
            }
            let node_hit = self.nodes.iter().any(|&n| names_node(r, n));
            let client_hit = self.clients.iter().any(|&c| conns.concerns(r, c));
            if node_hit || client_hit || r.who == "sim" {
                out.push(r);
            }
        }
        out
    }
}

/// Which client each client connection belongs to, learned from the clients' own lines.
#[derive(Default)]
pub struct Conns {
    owner: BTreeMap<u64, usize>,
}

impl Conns {
    pub fn learn(&mut self, r: &Rec) {
        if let Some(c) = client_of(&r.who)
            && let Some(conn) = number_after(&r.text, "conn ")
        {
            self.owner.insert(conn, c);
        }
    }

    /// The client whose connection a server's line is about, if it names one.
    pub fn owner_of(&self, r: &Rec) -> Option<usize> {
        if let Some(c) = client_of(&r.who) {
            return Some(c);
        }
        if !r.who.starts_with('n') {
            return None;
        }
        number_after(&r.text, "conn ").and_then(|k| self.owner.get(&k).copied())
    }

    pub fn concerns(&self, r: &Rec, client: usize) -> bool {
        self.owner_of(r) == Some(client)
    }
}

/// `c7` -> 7.
pub fn client_of(who: &str) -> Option<usize> {
    who.strip_prefix('c')?.parse().ok()
}

/// `n3` -> 3.
pub fn node_of(who: &str) -> Option<u64> {
    who.strip_prefix('n')?.parse().ok()
}

/// Whether a line is about server `n`: its subject, or `nN` as a word in its text (`to n3`,
/// `n1<->n3`, `{3} | {1,2}` is spelled with `n` in the fault lines' words as well).
pub fn names_node(r: &Rec, n: u64) -> bool {
    if node_of(&r.who) == Some(n) {
        return true;
    }
    mentions(&r.text, &format!("n{n}"))
}

/// `word` in `text`, not part of a longer word (`n1` is not in `n12` or `conn1`).
pub fn mentions(text: &str, word: &str) -> bool {
    let b = text.as_bytes();
    let mut start = 0;
    while let Some(i) = text[start..].find(word) {
        let at = start + i;
        let end = at + word.len();
        let before = at == 0 || !b[at - 1].is_ascii_alphanumeric();
        let after = end >= b.len() || !b[end].is_ascii_alphanumeric();
        if before && after {
            return true;
        }
        start = at + 1;
    }
    false
}

/// The number right after the first `key` in `text` (`conn 17 xid 3` -> 17 for `conn `).
pub fn number_after(text: &str, key: &str) -> Option<u64> {
    let i = text.find(key)? + key.len();
    let digits: String = text[i..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.parse().ok()
}

/// What a violation names: servers (`n3`, `server 3`), clients (`client 4`), zxids (`0x...`),
/// paths and xids. The explorer highlights the lines that carry them; the text replay keeps
/// the failure's context to the servers and clients.
#[derive(Clone, Debug, Default)]
pub struct Involved {
    pub nodes: BTreeSet<u64>,
    pub clients: BTreeSet<usize>,
    pub zxids: BTreeSet<String>,
    pub paths: BTreeSet<String>,
}

impl Involved {
    pub fn of(v: &Violation) -> Involved {
        let mut inv = Involved::default();
        let words: Vec<&str> = v
            .detail
            .split(|c: char| c.is_whitespace() || ",;:()[]{}".contains(c))
            .filter(|w| !w.is_empty())
            .collect();
        for (i, w) in words.iter().enumerate() {
            let next = words.get(i + 1).copied().unwrap_or("");
            if let Some(n) = node_of(w) {
                inv.nodes.insert(n);
            } else if (*w == "server" || *w == "servers") && next.parse::<u64>().is_ok() {
                inv.nodes.insert(next.parse().unwrap_or(0));
            } else if (*w == "client" || *w == "clients") && next.parse::<usize>().is_ok() {
                inv.clients.insert(next.parse().unwrap_or(0));
            } else if w.starts_with("0x") && w.len() > 3 {
                inv.zxids.insert(w.trim_end_matches('.').to_string());
            } else if w.starts_with('/') && w.len() > 1 {
                inv.paths.insert(w.trim_end_matches('.').to_string());
            }
        }
        inv
    }

    /// The filter that keeps the lines of the servers and clients named.
    pub fn filter(&self) -> Filter {
        Filter {
            nodes: self.nodes.clone(),
            clients: self.clients.clone(),
            ..Filter::default()
        }
    }

    /// Whether a line carries something the violation names (a zxid or path it names, on a
    /// server or client it names, or a commit of one of its zxids).
    pub fn carries(&self, r: &Rec) -> bool {
        let named = self.zxids.iter().any(|z| mentions(&r.text, z))
            || self.paths.iter().any(|p| mentions_path(&r.text, p));
        if !named {
            return false;
        }
        let who_named = node_of(&r.who).is_some_and(|n| self.nodes.contains(&n))
            || client_of(&r.who).is_some_and(|c| self.clients.contains(&c));
        who_named || r.who == "ref" || (self.nodes.is_empty() && self.clients.is_empty())
    }
}

/// A path as a whole path (`/k1` is not in `/k10`, but is in `/k1/e2`).
fn mentions_path(text: &str, p: &str) -> bool {
    let b = text.as_bytes();
    let mut start = 0;
    while let Some(i) = text[start..].find(p) {
        let end = start + i + p.len();
        if end >= b.len() || !(b[end].is_ascii_alphanumeric() || b[end] == b'-') {
            return true;
        }
        start = end;
    }
    false
}

/// The failure's context: the last `n` lines, before the violation, of the servers and clients
/// it names (all lines when it names none).
pub fn context<'a>(recs: &'a [Rec], inv: &Involved, n: usize) -> Vec<&'a Rec> {
    let kept = if inv.nodes.is_empty() && inv.clients.is_empty() {
        recs.iter().collect()
    } else {
        inv.filter().apply(recs)
    };
    let skip = kept.len().saturating_sub(n);
    kept.into_iter().skip(skip).collect()
}

/// The events of a replay's output: its trace lines, without the header (`#` lines, which
/// name the build) and what follows the trace (`# ----`, the summary).
pub fn trace_events(text: &str) -> Vec<&str> {
    text.lines()
        .take_while(|l| !l.starts_with("# ----"))
        .filter(|l| !l.starts_with('#'))
        .collect()
}

/// Where two runs' traces part (`replay --against`, `check`).
pub enum Difference {
    /// Event `at` (0-based) differs; `common` is the last event both have before it.
    At {
        at: usize,
        old: String,
        new: String,
        common: Option<String>,
    },
    /// The runs agree for `n` events, then one goes on with `next`.
    Longer {
        n: usize,
        old_goes_on: bool,
        next: String,
    },
}

/// The first event where `new` leaves `old`, if it does.
pub fn first_difference(old: &[&str], new: &[&str]) -> Option<Difference> {
    let n = old.len().min(new.len());
    match (0..n).find(|&i| old[i] != new[i]) {
        Some(i) => Some(Difference::At {
            at: i,
            old: old[i].to_string(),
            new: new[i].to_string(),
            common: i.checked_sub(1).map(|j| old[j].to_string()),
        }),
        None if old.len() != new.len() => {
            let old_goes_on = old.len() > n;
            let next = if old_goes_on { old[n] } else { new[n] };
            Some(Difference::Longer {
                n,
                old_goes_on,
                next: next.to_string(),
            })
        }
        None => None,
    }
}

impl std::fmt::Display for Difference {
    /// One line: where, and both versions of the event.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Difference::At { at, old, new, .. } => write!(
                f,
                "at trace line {}: old `{}`, new `{}`",
                at + 1,
                old.trim(),
                new.trim()
            ),
            Difference::Longer {
                n,
                old_goes_on,
                next,
            } => write!(
                f,
                "after {n} events in common: the {} one goes on with `{}`",
                if *old_goes_on { "old" } else { "new" },
                next.trim()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Claim;

    fn rec(n: u64, now: u64, who: &str, text: &str) -> Rec {
        Rec {
            n,
            now,
            who: who.into(),
            role: String::new(),
            text: text.into(),
        }
    }

    #[test]
    fn node_and_client_filters() {
        let recs = vec![
            rec(
                1,
                0,
                "c2",
                "connect to n1 conn 17 session=0x0 lastZxidSeen=0x0",
            ),
            rec(2, 1, "n1", "client conn 17 connects session=0x0"),
            rec(3, 2, "n1", "  send PING 1 to n3"),
            rec(4, 3, "n12", "  send PING 1 to n2"),
            rec(5, 4, "n2", "conn 18 xid 1 ping"),
            rec(6, 5, "sim", "HEAL: fault phase over"),
        ];
        let f = Filter {
            nodes: [3].into(),
            ..Filter::default()
        };
        let got: Vec<u64> = f.apply(&recs).iter().map(|r| r.n).collect();
        assert_eq!(got, vec![3, 6]);
        let f = Filter {
            clients: [2].into(),
            ..Filter::default()
        };
        let got: Vec<u64> = f.apply(&recs).iter().map(|r| r.n).collect();
        assert_eq!(got, vec![1, 2, 6]);
        let f = Filter {
            from: Some(2),
            to: Some(3),
            ..Filter::default()
        };
        let got: Vec<u64> = f.apply(&recs).iter().map(|r| r.n).collect();
        assert_eq!(got, vec![3, 4]);
    }

    #[test]
    fn a_violation_names_its_servers_clients_and_zxids() {
        let v = crate::check::violation(
            "client.watch-missed".parse::<Claim>().expect("a claim"),
            3058,
            "client 4 watch Exist on /k0 (set at 0x10000000e): NodeCreated committed at \
             0x100000013, yet n3 answered"
                .into(),
        );
        let inv = Involved::of(&v);
        assert_eq!(inv.clients, [4].into());
        assert_eq!(inv.nodes, [3].into());
        assert!(inv.zxids.contains("0x100000013"));
        assert!(inv.paths.contains("/k0"));
        assert!(inv.carries(&rec(1, 0, "ref", "commit 0x100000013 create /k0")));
        assert!(!inv.carries(&rec(1, 0, "n1", "  append 0x100000013..0x100000013 (1)")));
        assert!(!mentions_path("create /k01 x", "/k0"));
    }
}
