//! The random mix of requests (and its read-only variant, `reader`).

use super::{Ctx, RandomRole, create, open_acl};
use crate::params::Mix;
use crate::rng::SimRng;
use ensemble_proto::proto::{CreateMode, CreateOp, MultiOp, Reply, Request, Response};
use std::collections::BTreeMap;

/// Paths of the random mix.
pub(crate) fn key(i: u32) -> String {
    let mut s = String::with_capacity(12);
    s.push_str("/k");
    push_decimal(&mut s, u64::from(i));
    s
}

/// The data of the mix's `n`th request of client `idx`: `c{idx}-{n}`.
fn request_data(idx: usize, n: u64) -> Vec<u8> {
    let mut s = String::with_capacity(24);
    s.push('c');
    push_decimal(&mut s, idx as u64);
    s.push('-');
    push_decimal(&mut s, n);
    s.into_bytes()
}

/// `n` in decimal, as `{n}` formats it. By hand: the mix builds a key and data for every
/// request, and `format!` was about 600 instructions each.
fn push_decimal(s: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    s.push_str(std::str::from_utf8(&digits[i..]).expect("ASCII digits"));
}

/// getEphemerals prefixes: blank and `/` (all, once trimmed as Java's `trim`), and plain
/// string prefixes matched as sent, untrimmed.
const EPHEMERAL_PREFIXES: [&str; 10] = [
    "", "/", " / ", "\t", "/k", "/k1", " /k1", "/k1/", "/k2/e", "/none",
];

/// Paths sent to ZooKeeper's read ops, which check none of `PathUtils`'s rules: "" reads the
/// root (ZooKeeper's DataTree keeps the root under "" as well as "/"), any other path that is
/// not a znode's names none (NoNode). Only the Java client refuses them before sending.
const ODD_READ_PATHS: [&str; 7] = ["", "/k0/", "k0", "/k0//x", "/\u{e9}/.", "/zookeeper/", " /"];

/// Paths ZooKeeper's `PathUtils` takes or refuses (BadArguments), ASCII and not, for creates
/// (the flag: sequential, validated with a digit appended). `/é` first: the parent of most.
pub(crate) const ODD_PATHS: [(&str, bool); 20] = [
    ("/é", false),
    ("/é/.", false),
    ("/é/.x", false),
    ("/é/..", false),
    ("/é/x.", false),
    ("/é/", false),
    ("/é/", true),
    ("/é//x", false),
    ("/é/..x", false),
    ("/é/a\u{85}", false),
    ("/é/\u{e000}", false),
    ("/é/\u{1f600}", false),
    ("/é/\u{fff0}", false),
    ("/é/ü\u{a0}", false),
    ("/k0/.", false),
    ("/k0/..", false),
    ("/k0/", false),
    ("/k0/a\u{1}", false),
    ("/k0/.x.", false),
    ("/é/x/..", false),
];

/// `drawn` with its data buffers null (a create, setData, or a multi's creates and setData);
/// anything else as it is.
pub(crate) fn with_null_data(mut drawn: Request) -> Request {
    let mut ops = Vec::new();
    match &mut drawn {
        Request::Create { data, .. } | Request::SetData { data, .. } => {
            ops.push(0);
            data.clear();
        }
        Request::Multi(mops) => {
            for (i, op) in mops.iter_mut().enumerate() {
                if let MultiOp::Create { data, .. } | MultiOp::SetData { data, .. } = op
                    && !data.is_empty()
                {
                    ops.push(i as u32);
                    data.clear();
                }
            }
        }
        _ => return drawn,
    }
    if ops.is_empty() {
        return drawn;
    }
    Request::NullData {
        request: Box::new(drawn),
        ops,
    }
}

impl RandomRole {
    pub(crate) fn pick_weighted(mix: &Mix, reader: bool, rng: &mut SimRng) -> usize {
        let w = if reader {
            // the mix's reads, with sync+read always among them
            [
                0,
                0,
                mix.get,
                0,
                0,
                mix.sync_read.max(1),
                mix.children,
                0,
                0,
            ]
        } else {
            [
                mix.create,
                mix.set,
                mix.get,
                mix.delete,
                mix.multi,
                mix.sync_read,
                mix.children,
                mix.ephemeral,
                mix.sequential,
            ]
        };
        let total: u32 = w.iter().sum();
        if total == 0 {
            return 2;
        }
        let mut x = rng.range(0, total as u64 - 1) as u32;
        for (i, wi) in w.iter().enumerate() {
            if x < *wi {
                return i;
            }
            x -= wi;
        }
        2
    }

    pub(crate) fn next(&mut self, idx: usize, cx: &mut Ctx) -> Option<Request> {
        if let Some(r) = self.after_sync.take() {
            return Some(r);
        }
        let mix = &cx.params.mix;
        let rng = &mut *cx.rng;
        let k = key(rng.range(0, cx.params.keys.max(1) as u64 - 1) as u32);
        self.n += 1;
        self.bad_due = cx.params.odd_requests && self.n % 31 == 19;
        let data = request_data(idx, self.n);
        let watch = rng.chance(mix.watch);
        let version = |rng: &mut SimRng, versions: &BTreeMap<String, i32>, p: &str| {
            if rng.chance(mix.versioned) {
                versions.get(p).copied().unwrap_or(0)
            } else {
                -1
            }
        };
        let known_child = |rng: &mut SimRng, ch: &BTreeMap<String, Vec<String>>, p: &str| {
            ch.get(p)
                .and_then(|c| rng.pick(c).cloned())
                .map(|c| format!("{p}/{c}"))
        };
        let drawn = match Self::pick_weighted(mix, self.reader, rng) {
            0 => {
                let op = if rng.chance(0.5) {
                    CreateOp::Create2
                } else {
                    CreateOp::Create
                };
                create(&k, data, CreateMode::Persistent, op)
            }
            1 => {
                let v = version(rng, &self.versions, &k);
                Request::SetData {
                    path: k,
                    data,
                    version: v,
                }
            }
            2 => {
                let path = if rng.chance(0.2) {
                    known_child(rng, &self.children, &k).unwrap_or(k)
                } else {
                    k
                };
                if rng.chance(0.5) {
                    Request::GetData { path, watch }
                } else {
                    Request::Exists { path, watch }
                }
            }
            3 => {
                let path = if rng.chance(0.5) {
                    known_child(rng, &self.children, &k).unwrap_or(k)
                } else {
                    k
                };
                let v = version(rng, &self.versions, &path);
                Request::Delete { path, version: v }
            }
            4 => {
                let k2 = key(rng.range(0, cx.params.keys.max(1) as u64 - 1) as u32);
                let mut ops = Vec::new();
                if rng.chance(0.5) {
                    let v = self.versions.get(&k).copied().unwrap_or(0);
                    ops.push(MultiOp::Check {
                        path: k.clone(),
                        version: v,
                    });
                }
                ops.push(MultiOp::SetData {
                    path: k2.clone(),
                    data: data.clone(),
                    version: -1,
                });
                if rng.chance(0.5) {
                    ops.push(MultiOp::Create {
                        op: CreateOp::Create,
                        path: format!("{k}/m{idx}"),
                        data,
                        acl: open_acl(),
                        mode: CreateMode::Persistent,
                        ttl: 0,
                    });
                } else if rng.chance(0.5) {
                    ops.push(MultiOp::Delete {
                        path: format!("{k2}/m{idx}"),
                        version: -1,
                    });
                }
                Request::Multi(ops)
            }
            5 => {
                self.after_sync = Some(Request::GetData {
                    path: k.clone(),
                    watch,
                });
                Request::Sync { path: k }
            }
            6 => {
                let path = if rng.chance(0.2) { "/".to_string() } else { k };
                if rng.chance(0.5) {
                    Request::GetChildren { path, watch }
                } else {
                    Request::GetChildren2 { path, watch }
                }
            }
            7 => create(
                &format!("{k}/e{idx}"),
                data,
                CreateMode::Ephemeral,
                CreateOp::Create,
            ),
            _ => {
                let mode = if rng.chance(0.5) {
                    CreateMode::PersistentSequential
                } else {
                    CreateMode::EphemeralSequential
                };
                create(&format!("{k}/s-"), data, mode, CreateOp::Create2)
            }
        };
        if !cx.params.odd_requests {
            return Some(drawn);
        }
        Some(self.vary(drawn, cx.params.keys.max(1)))
    }

    /// Requests real clients send that the mix does not draw, every so often by the role's
    /// own counter (no draw, so a seed's draws stay where they were): getEphemerals with the
    /// prefixes of [`EPHEMERAL_PREFIXES`], getAllChildrenNumber (of `/` too), plain reads at
    /// the paths of [`ODD_READ_PATHS`] (`client.read-value`), creates at the
    /// odd paths of [`ODD_PATHS`], and (writers only) a drawn create, setData or multi sent
    /// with null data buffers, as the Java client's `create(path, null, ...)`. Each reply is
    /// judged against the committed history (`client.read-value`, `client.write-result`) and
    /// the null data by the tree model (`tree.model`).
    fn vary(&self, drawn: Request, keys: u32) -> Request {
        let n = self.n;
        if n % 23 == 11 {
            let prefix = EPHEMERAL_PREFIXES[(n / 23) as usize % EPHEMERAL_PREFIXES.len()];
            return Request::GetEphemerals {
                prefix: prefix.to_string(),
            };
        }
        if n % 29 == 13 {
            let path = if (n / 29).is_multiple_of(3) {
                "/".to_string()
            } else {
                key((n / 29) as u32 % keys)
            };
            return Request::GetAllChildrenNumber { path };
        }
        if n % 31 == 19 {
            // 7 paths and 4 read kinds, coprime: every pair within 28 turns
            let path = ODD_READ_PATHS[(n / 31) as usize % ODD_READ_PATHS.len()].to_string();
            return match (n / 31) % 4 {
                0 => Request::GetData { path, watch: false },
                1 => Request::Exists { path, watch: false },
                2 => Request::GetChildren { path, watch: false },
                _ => Request::GetChildren2 { path, watch: false },
            };
        }
        if self.reader {
            return drawn;
        }
        if n % 17 == 5 {
            let (path, sequential) = ODD_PATHS[(n / 17) as usize % ODD_PATHS.len()];
            let mode = if sequential {
                CreateMode::PersistentSequential
            } else {
                CreateMode::Persistent
            };
            return create(path, b"odd".to_vec(), mode, CreateOp::Create);
        }
        if n % 7 == 3 {
            return with_null_data(drawn);
        }
        drawn
    }

    pub(crate) fn on_result(&mut self, req: &Request, reply: &Reply) {
        match (req, reply) {
            (Request::GetData { path, .. }, Ok(Response::GetData { stat, .. }))
            | (Request::Exists { path, .. }, Ok(Response::Stat(stat)))
            | (Request::SetData { path, .. }, Ok(Response::Stat(stat))) => {
                self.versions.insert(path.clone(), stat.version);
            }
            (Request::GetChildren { path, .. }, Ok(Response::GetChildren { children }))
            | (Request::GetChildren2 { path, .. }, Ok(Response::GetChildren2 { children, .. })) => {
                self.children.insert(path.clone(), children.clone());
            }
            (Request::Sync { .. }, Err(_)) => self.after_sync = None,
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_data_are_the_text_format_gives() {
        for n in [
            0u64,
            1,
            9,
            10,
            99,
            100,
            12_345,
            u64::from(u32::MAX),
            u64::MAX,
        ] {
            if let Ok(i) = u32::try_from(n) {
                assert_eq!(key(i), format!("/k{i}"));
            }
            for idx in [0usize, 7, 10, 123] {
                assert_eq!(request_data(idx, n), format!("c{idx}-{n}").into_bytes());
            }
        }
    }
}
