//! The run explorer: one self-contained HTML page (`replay --html FILE`) drawn from a recorded
//! trace. The run's data is embedded as JSON; the page (`page.html`: inline CSS and plain JS on a
//! canvas, nothing fetched) draws a lane per server coloured by role and epoch, fault bands,
//! messages as arrows (heartbeats and, past a budget, the commonest kinds aggregated per link
//! and half second), client operations per key (unknown outcomes drawn as such), and the
//! violation with the trace lines that carry what it names. Every item carries its trace line
//! number (`replay --numbers`).
//!
//! The model is read from the trace's lines (`lines.rs`, the fault words): the page shows what
//! the text replay shows, nothing the trace does not have.

use crate::check::Violation;
use crate::replay::{Involved, client_of, node_of};
use crate::trace::Rec;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// The page, with `/*DATA*/` where the run's JSON goes.
const PAGE: &str = include_str!("page.html");

/// Individual arrows kept (besides heartbeats, which are only aggregated): a 60 s run sends
/// tens of thousands of messages; past this, the commonest kinds are thinned evenly and their
/// counts still show in the aggregate.
const ARROW_BUDGET: usize = 12_000;
/// The aggregate's bucket, ms.
const BUCKET_MS: u64 = 500;
/// The longest message text kept on an arrow.
const MSG_TEXT: usize = 60;

/// What the page is drawn from.
pub struct Run<'a> {
    pub seed: u64,
    pub header: &'a str,
    pub records: &'a [Rec],
    pub violation: Option<&'a Violation>,
    pub voters: u64,
    pub observers: u64,
    pub fault_end: u64,
    pub end: u64,
}

/// The page for a run.
pub fn page(run: &Run) -> String {
    let data = model(run);
    // `</` cannot end the script element the JSON sits in
    let json = data.to_string().replace("</", "<\\/");
    PAGE.replace("/*DATA*/null", &json)
}

struct Send {
    t: u64,
    n: u64,
}

/// The JSON model of a run (see `page.html` for how each part is drawn).
pub fn model(run: &Run) -> Value {
    let recs = run.records;
    let servers: Vec<u64> = (1..=run.voters + run.observers).collect();
    let mut clients: BTreeSet<usize> = BTreeSet::new();

    // lanes: (role, epoch) segments per server
    let mut seg_open: BTreeMap<u64, (u64, String, u64, u64)> = BTreeMap::new(); // t, role, epoch, line
    let mut epoch: BTreeMap<u64, u64> = BTreeMap::new();
    let mut segs: Vec<Value> = Vec::new();

    let mut faults: Vec<Value> = Vec::new();
    let mut marks: Vec<Value> = Vec::new();
    let mut commits: Vec<Value> = Vec::new();

    // messages: sends waiting for their receipt, by (from, to, text)
    let mut inflight: BTreeMap<(u64, u64, String), VecDeque<Send>> = BTreeMap::new();
    let mut arrows: Vec<(u64, u64, u64, u64, String, u64, bool)> = Vec::new(); // t1,t2,a,b,text,line,lost
    let mut agg: BTreeMap<(u64, u64, u64), u64> = BTreeMap::new();

    // client operations
    let mut outstanding: BTreeMap<(usize, i64), usize> = BTreeMap::new();
    let mut ops: Vec<Op> = Vec::new();

    let mut partition_open: Option<usize> = None;

    for r in recs {
        let t = r.now;
        if let Some(id) = node_of(&r.who) {
            let role = if r.role.is_empty() {
                "?"
            } else {
                r.role.as_str()
            };
            if let Some(e) = r.text.find("epoch e").map(|i| &r.text[i + 7..]) {
                let e: String = e.chars().take_while(|c| c.is_ascii_digit()).collect();
                if let Ok(e) = e.parse() {
                    epoch.insert(id, e);
                }
            }
            // a learner's epoch: the one its leader announces (the state line has the old one)
            if let Some(e) = r.text.strip_prefix("recv LEADERINFO e") {
                let e: String = e.chars().take_while(|c| c.is_ascii_digit()).collect();
                if let Ok(e) = e.parse() {
                    epoch.insert(id, e);
                }
            }
            let ep = epoch.get(&id).copied().unwrap_or(0);
            let changed = match seg_open.get(&id) {
                Some((_, ro, e, _)) => ro != role || *e != ep,
                None => true,
            };
            if changed {
                if let Some((t0, ro, e, line)) = seg_open.remove(&id) {
                    segs.push(json!([id, t0, t, ro, e, line]));
                }
                seg_open.insert(id, (t, role.to_string(), ep, r.n));
            }
            let text = r.text.trim_start();
            if let Some(rest) = text.strip_prefix("send ") {
                if let Some((msg, to)) = rest.rsplit_once(" to n")
                    && let Ok(to) = to.parse::<u64>()
                {
                    inflight
                        .entry((id, to, msg.to_string()))
                        .or_default()
                        .push_back(Send { t, n: r.n });
                }
            } else if let Some(rest) = text.strip_prefix("recv ") {
                if let Some((msg, from)) = rest.rsplit_once(" from n")
                    && let Ok(from) = from.parse::<u64>()
                    && let Some(s) = inflight
                        .get_mut(&(from, id, msg.to_string()))
                        .and_then(|q| q.pop_front())
                {
                    *agg.entry((s.t / BUCKET_MS, from, id)).or_default() += 1;
                    if !heartbeat(msg) {
                        arrows.push((s.t, t, from, id, short(msg), s.n, false));
                    }
                }
            } else if let Some(ms) = fault_len(text, "QUORUM STALL for ") {
                faults.push(json!(["stall", t, t + ms, [id], text, r.n]));
            } else if ["CRASH", "PAUSE", "start,", "RESUME"]
                .iter()
                .any(|k| text.starts_with(k))
            {
                marks.push(json!([t, id, text, r.n]));
            } else if text.starts_with("reply conn ") || text.starts_with("truncate") {
                // shown through the client's own reply / the lane's lines
            } else if upper_word(text) {
                // a fault or event line the model does not know yet (a new fault kind): shown
                // as a mark on the server's lane, never dropped
                marks.push(json!([t, id, text, r.n]));
            }
        } else if let Some(c) = client_of(&r.who) {
            clients.insert(c);
            let text = r.text.as_str();
            if let Some(rest) = text.strip_prefix("send conn ") {
                let xid = number_after_signed(rest, "xid ");
                if let Some(xid) = xid.filter(|x| *x >= 0) {
                    let req = rest
                        .split_once(&format!("xid {xid} "))
                        .map(|(_, q)| q)
                        .unwrap_or("");
                    outstanding.insert((c, xid), ops.len());
                    ops.push(Op {
                        client: c,
                        key: key_of(req),
                        t0: t,
                        t1: None,
                        outcome: "pending",
                        text: req.to_string(),
                        reply: String::new(),
                        line: r.n,
                        reply_line: 0,
                    });
                }
            } else if let Some(rest) = text.strip_prefix("reply xid ") {
                let xid = number_after_signed(text, "reply xid ");
                if let Some(i) = xid.and_then(|x| outstanding.remove(&(c, x))) {
                    let o = &mut ops[i];
                    o.t1 = Some(t);
                    let reply = rest.split_once(' ').map(|(_, q)| q).unwrap_or("");
                    o.outcome = if reply.contains(" ok")
                        || reply.starts_with("zxid") && !reply.contains("ERR")
                    {
                        "ok"
                    } else {
                        "err"
                    };
                    o.reply = short(reply);
                    o.reply_line = r.n;
                }
            } else if text.contains("closed by server")
                || text.contains("lost")
                || text.contains("expired")
                || text.contains("CRASH")
            {
                // the connection is gone: what it had in flight has an unknown outcome
                let gone: Vec<(usize, i64)> = outstanding
                    .range((c, i64::MIN)..=(c, i64::MAX))
                    .map(|(k, _)| *k)
                    .collect();
                for k in gone {
                    if let Some(i) = outstanding.remove(&k) {
                        ops[i].t1 = Some(t);
                        ops[i].outcome = "unknown";
                        ops[i].reply = text.to_string();
                        ops[i].reply_line = r.n;
                    }
                }
                marks.push(json!([t, -(c as i64) - 1, text, r.n]));
            } else if text.starts_with("connect") || text.starts_with("client ") {
                marks.push(json!([t, -(c as i64) - 1, text, r.n]));
            }
        } else if r.who == "ref" {
            if let Some(z) = r.text.strip_prefix("commit ") {
                let zx = z.split(' ').next().unwrap_or("");
                commits.push(json!([t, zx, r.n]));
            }
        } else if r.who == "net" {
            let text = r.text.as_str();
            let nodes = nodes_in(text);
            if let Some(rest) = text.strip_prefix("partition ") {
                if rest == "heals" {
                    if let Some(i) = partition_open.take() {
                        faults[i][2] = json!(t);
                    }
                } else {
                    let end = fault_len(text, " for ").map(|ms| t + ms);
                    if let Some(i) = partition_open.take()
                        && faults[i][2].as_u64().is_none_or(|e| e > t)
                    {
                        faults[i][2] = json!(t);
                    }
                    faults.push(json!(["partition", t, end, servers, text, r.n]));
                    partition_open = Some(faults.len() - 1);
                }
            } else if text.starts_with("clog ") {
                let ms = fault_len(text, " for ").unwrap_or(0);
                faults.push(json!(["clog", t, t + ms, nodes, text, r.n]));
            } else if text.starts_with("latency spike") {
                let ms = fault_len(text, " for ").unwrap_or(0);
                faults.push(json!(["slow", t, t + ms, nodes, text, r.n]));
            } else if let Some((ab, _)) = text.split_once(" broken, ") {
                // what was in flight on that connection is lost
                let (a, b) = pair(ab);
                for (k, q) in inflight.iter_mut() {
                    if (k.0 == a && k.1 == b) || (k.0 == b && k.1 == a) {
                        for s in q.drain(..) {
                            arrows.push((s.t, t, k.0, k.1, short(&k.2), s.n, true));
                        }
                    }
                }
                marks.push(json!([t, 0, text, r.n]));
            } else {
                marks.push(json!([t, 0, text, r.n]));
            }
        } else if r.who == "sim" {
            marks.push(json!([t, 0, r.text, r.n]));
        }
    }
    for (id, (t0, ro, e, line)) in seg_open {
        segs.push(json!([id, t0, run.end, ro, e, line]));
    }
    if let Some(i) = partition_open
        && faults[i][2].is_null()
    {
        faults[i][2] = json!(run.fault_end.min(run.end));
    }
    for o in ops.iter_mut().filter(|o| o.t1.is_none()) {
        o.outcome = "pending";
    }

    // the violation and the lines that carry what it names
    let mut chain: Vec<Value> = Vec::new();
    let mut keep_lines: BTreeSet<u64> = BTreeSet::new();
    let violation = run.violation.map(|v| {
        let inv = Involved::of(v);
        let mut carried: Vec<&Rec> = recs.iter().filter(|r| inv.carries(r)).collect();
        let skip = carried.len().saturating_sub(80);
        carried.drain(..skip);
        let ctx = crate::replay::context(recs, &inv, 40);
        let mut lines: BTreeMap<u64, &Rec> = BTreeMap::new();
        for r in carried.iter().chain(ctx.iter()) {
            lines.insert(r.n, r);
        }
        for (n, r) in &lines {
            keep_lines.insert(*n);
            chain.push(json!([
                n,
                r.now,
                r.who,
                r.text.trim_start(),
                inv.carries(r)
            ]));
        }
        json!({
            "claim": v.claim.as_str(),
            "at": v.at_ms,
            "detail": v.detail,
            "nodes": inv.nodes,
            "clients": inv.clients,
            "zxids": inv.zxids,
            "paths": inv.paths,
        })
    });

    // thin the arrows to the budget: heartbeats are already out; keep every rare kind, what
    // the violation's chain names, and an even sample of the rest
    let total_arrows = arrows.len();
    if arrows.len() > ARROW_BUDGET {
        let common = |s: &str| {
            ["PROPOSAL", "ACK ", "COMMIT", "REQUEST", "INFORM"]
                .iter()
                .any(|k| s.starts_with(k))
        };
        let n_common = arrows.iter().filter(|a| common(&a.4)).count();
        let room = ARROW_BUDGET.saturating_sub(total_arrows - n_common).max(1);
        let every = n_common.div_ceil(room).max(1);
        let mut i = 0usize;
        arrows.retain(|a| {
            if !common(&a.4) || keep_lines.contains(&a.5) || a.6 {
                return true;
            }
            i += 1;
            i.is_multiple_of(every)
        });
    }
    arrows.sort_by_key(|a| (a.0, a.5));
    let arrows: Vec<Value> = arrows
        .into_iter()
        .map(|(t1, t2, a, b, text, n, lost)| json!([t1, t2, a, b, text, n, lost as u8]))
        .collect();
    let agg: Vec<Value> = agg
        .into_iter()
        .map(|((bucket, a, b), c)| json!([bucket * BUCKET_MS, a, b, c]))
        .collect();
    let ops: Vec<Value> = ops
        .into_iter()
        .map(|o| {
            json!([
                o.client,
                o.key,
                o.t0,
                o.t1,
                o.outcome,
                o.text,
                o.reply,
                o.line,
                o.reply_line
            ])
        })
        .collect();

    json!({
        "seed": run.seed,
        "header": run.header,
        "end": run.end,
        "faultEnd": run.fault_end,
        "servers": servers,
        "voters": run.voters,
        "clients": clients,
        "lines": recs.len(),
        "segs": segs,
        "faults": faults,
        "marks": marks,
        "commits": commits,
        "arrows": arrows,
        "arrowsTotal": total_arrows,
        "bucketMs": BUCKET_MS,
        "agg": agg,
        "ops": ops,
        "violation": violation,
        "chain": chain,
    })
}

struct Op {
    client: usize,
    key: String,
    t0: u64,
    t1: Option<u64>,
    outcome: &'static str,
    text: String,
    reply: String,
    line: u64,
    reply_line: u64,
}

/// Pings and their replies: the bulk of the traffic, shown only in the aggregate.
fn heartbeat(msg: &str) -> bool {
    msg.starts_with("PING")
}

fn short(s: &str) -> String {
    if s.len() <= MSG_TEXT {
        return s.to_string();
    }
    let mut end = MSG_TEXT;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// `... for 1200 ms` / `... for 1200ms` -> 1200.
fn fault_len(text: &str, key: &str) -> Option<u64> {
    let i = text.rfind(key)? + key.len();
    let digits: String = text[i..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.parse().ok()
}

fn number_after_signed(text: &str, key: &str) -> Option<i64> {
    let i = text.find(key)? + key.len();
    let s: String = text[i..]
        .chars()
        .enumerate()
        .take_while(|(j, c)| c.is_ascii_digit() || (*j == 0 && *c == '-'))
        .map(|(_, c)| c)
        .collect();
    s.parse().ok()
}

/// The servers a line names (`n3`, and the members of `{1,2}` sets).
fn nodes_in(text: &str) -> Vec<u64> {
    let mut out = BTreeSet::new();
    for w in text.split(|c: char| !c.is_ascii_alphanumeric()) {
        if let Some(n) = w.strip_prefix('n').and_then(|d| d.parse::<u64>().ok()) {
            out.insert(n);
        }
    }
    if let (Some(a), Some(b)) = (text.find('{'), text.rfind('}')) {
        for w in text[a..b].split(|c: char| !c.is_ascii_digit()) {
            if let Ok(n) = w.parse::<u64>() {
                out.insert(n);
            }
        }
    }
    out.into_iter().collect()
}

/// `n1<->n3 quorum` -> (1, 3).
fn pair(s: &str) -> (u64, u64) {
    let ns = nodes_in(s);
    (
        ns.first().copied().unwrap_or(0),
        ns.get(1).copied().unwrap_or(0),
    )
}

/// A line whose first word is in capitals (CRASH, PAUSE, QUORUM STALL, a new fault kind's).
fn upper_word(text: &str) -> bool {
    let w = text.split_whitespace().next().unwrap_or("");
    w.len() > 2
        && w.chars()
            .all(|c| c.is_ascii_uppercase() || c == '-' || c == ':')
}

/// The key an operation is on: its path's first component (`/k3/e1` -> `/k3`).
fn key_of(req: &str) -> String {
    match req.split_whitespace().find(|w| w.starts_with('/')) {
        Some(p) => {
            let rest = &p[1..];
            match rest.find('/') {
                Some(i) => p[..i + 1].to_string(),
                None => p.to_string(),
            }
        }
        None => format!("({})", req.split([' ', '[']).next().unwrap_or("?")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_the_page_needs() {
        assert_eq!(key_of("create /k3/e1 Ephemeral"), "/k3");
        assert_eq!(key_of("multi[3]"), "(multi)");
        assert_eq!(
            fault_len("partition {3} | {1,2} for 12000 ms", " for "),
            Some(12000)
        );
        assert_eq!(nodes_in("partition {3} | {1,2} for 5 ms"), vec![1, 2, 3]);
        assert_eq!(pair("n4<->n1 quorum"), (1, 4));
        assert_eq!(number_after_signed("conn 3 xid -2 ping", "xid "), Some(-2));
        assert!(upper_word("CRASH: 0 unsynced appends"));
        assert!(!upper_word("start, recovered"));
    }

    #[test]
    fn a_recorded_run_becomes_lanes_arrows_and_operations() {
        let r = crate::runner::run_seed(5, None, None, crate::runner::TraceMode::Record);
        let p = crate::runner::params_for(5, None).0;
        let run = Run {
            seed: 5,
            header: "test",
            records: &r.records,
            violation: None,
            voters: p.voters,
            observers: p.observers,
            fault_end: p.fault_phase_ms,
            end: r.stopped_at,
        };
        let m = model(&run);
        assert!(!m["segs"].as_array().expect("segs").is_empty());
        assert!(!m["arrows"].as_array().expect("arrows").is_empty());
        assert!(!m["ops"].as_array().expect("ops").is_empty());
        let html = page(&run);
        assert!(html.contains("\"seed\":5"));
        assert!(!html.contains("/*DATA*/"));
        assert!(!html.contains("http://") && !html.contains("https://"));
    }
}
