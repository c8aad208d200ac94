//! The connect string: `host:port[,host:port...][/chroot]`, tried in a shuffled order and
//! rotated on failure, as ZooKeeper's `StaticHostProvider` does.

use super::ClientError;
use super::paths::validate_path;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ConnectString {
    /// `host:port` entries, in the order to try them.
    pub hosts: Vec<String>,
    /// The chroot, without a trailing slash; `None` for `/`.
    pub chroot: Option<String>,
}

/// ZooKeeper's default client port, used when an entry has none.
const DEFAULT_PORT: u16 = 2181;

impl ConnectString {
    pub(crate) fn parse(s: &str) -> Result<ConnectString, ClientError> {
        let bad = |why: &str| ClientError::BadConnectString(format!("{s:?}: {why}"));
        let (list, chroot) = match s.find('/') {
            Some(i) => (&s[..i], Some(&s[i..])),
            None => (s, None),
        };
        let chroot = match chroot {
            None | Some("/") => None,
            Some(c) => {
                validate_path(c).map_err(|e| bad(&e))?;
                Some(c.to_string())
            }
        };
        let mut hosts = Vec::new();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            // [v6addr]:port, host:port or a bare host
            let (host, port) = if let Some(rest) = entry.strip_prefix('[') {
                let end = rest.find(']').ok_or_else(|| bad("unclosed ["))?;
                let port = rest[end + 1..].strip_prefix(':');
                (&entry[..end + 2], port)
            } else {
                match entry.rsplit_once(':') {
                    Some((h, p)) => (h, Some(p)),
                    None => (entry, None),
                }
            };
            let port = match port {
                Some(p) => p.parse::<u16>().map_err(|_| bad("port is not a number"))?,
                None => DEFAULT_PORT,
            };
            if host.is_empty() {
                return Err(bad("empty host"));
            }
            hosts.push(format!("{host}:{port}"));
        }
        if hosts.is_empty() {
            return Err(bad("no hosts"));
        }
        Ok(ConnectString { hosts, chroot })
    }
}

/// A small xorshift generator: host shuffling needs no cryptographic quality, only a
/// different start per process so clients spread over the ensemble.
pub(crate) struct Shuffle(u64);

impl Shuffle {
    pub(crate) fn from_entropy() -> Shuffle {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let pid = u64::from(std::process::id());
        let seed = nanos ^ pid.rotate_left(32) ^ 0x9e37_79b9_7f4a_7c15;
        Shuffle(seed.max(1))
    }

    pub(crate) fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    pub(crate) fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            v.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lists_ports_and_chroots() {
        let c = ConnectString::parse("a:1, b:2 ,c/app/x").expect("valid");
        assert_eq!(c.hosts, vec!["a:1", "b:2", "c:2181"]);
        assert_eq!(c.chroot.as_deref(), Some("/app/x"));
        let c = ConnectString::parse("[::1]:2181/").expect("valid");
        assert_eq!(c.hosts, vec!["[::1]:2181"]);
        assert_eq!(c.chroot, None);
        assert!(ConnectString::parse("").is_err());
        assert!(ConnectString::parse("a:x").is_err());
        assert!(ConnectString::parse("a:1/bad/").is_err());
    }

    #[test]
    fn shuffle_is_a_permutation() {
        let mut s = Shuffle(42);
        let mut v: Vec<u32> = (0..10).collect();
        s.shuffle(&mut v);
        let mut sorted = v.clone();
        sorted.sort();
        assert_eq!(sorted, (0..10).collect::<Vec<_>>());
    }
}
