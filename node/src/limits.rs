//! Connection limits of the client port: `maxCnxns` (every client connection of this server;
//! `maxClientCnxns` is per IP, in `runtime/clients.rs`) and ZooKeeper 3.8's connection
//! throttle (`BlueThrottle`): a token bucket a new session's ConnectRequest takes from,
//! refilled by `connection_throttle_fill_count` tokens every `connection_throttle_fill_time`
//! ms, with BLUE's random drop (`connection_throttle_freeze_time` not -1) rising by
//! `connection_throttle_drop_increase` while the bucket is empty and falling by
//! `connection_throttle_drop_decrease` once at most `connection_throttle_decrease_ratio` of
//! it is used. With `connection_throttle_weight_enabled`, a new session costs
//! `connection_throttle_global_session_weight` tokens and a reconnect (renewal)
//! `connection_throttle_renew_session_weight`. A refused connection is closed, as ZooKeeper
//! closes it on ClientCnxnLimitException.
use std::sync::atomic::Ordering;

/// The throttle's settings, ZooKeeper's defaults (tokens 0 = off).
#[derive(Clone, Debug, PartialEq)]
pub struct ThrottleSettings {
    pub tokens: u32,
    pub fill_time_ms: u64,
    pub fill_count: u32,
    pub freeze_time_ms: i64,
    pub drop_increase: f64,
    pub drop_decrease: f64,
    pub decrease_ratio: f64,
    pub weight_enabled: bool,
    pub global_weight: u32,
    pub local_weight: u32,
    pub renew_weight: u32,
}

impl Default for ThrottleSettings {
    fn default() -> ThrottleSettings {
        ThrottleSettings {
            tokens: 0,
            fill_time_ms: 1,
            fill_count: 1,
            freeze_time_ms: -1,
            drop_increase: 0.02,
            drop_decrease: 0.002,
            decrease_ratio: 0.0,
            weight_enabled: false,
            global_weight: 3,
            local_weight: 1,
            renew_weight: 2,
        }
    }
}

impl ThrottleSettings {
    /// Sets one `connection_throttle_*` key (without `zookeeper.`); `Err` names what is wrong.
    pub fn set(&mut self, key: &str, v: &str) -> Result<(), String> {
        fn num<T: std::str::FromStr>(key: &str, v: &str) -> Result<T, String> {
            v.trim()
                .parse()
                .map_err(|_| format!("{key}={v}: not a valid number"))
        }
        match key {
            "connection_throttle_tokens" => self.tokens = num(key, v)?,
            "connection_throttle_fill_time" => self.fill_time_ms = num(key, v)?,
            "connection_throttle_fill_count" => self.fill_count = num(key, v)?,
            "connection_throttle_freeze_time" => self.freeze_time_ms = num(key, v)?,
            "connection_throttle_drop_increase" => self.drop_increase = num(key, v)?,
            "connection_throttle_drop_decrease" => self.drop_decrease = num(key, v)?,
            "connection_throttle_decrease_ratio" => self.decrease_ratio = num(key, v)?,
            "connection_throttle_weight_enabled" => {
                self.weight_enabled = v.trim().eq_ignore_ascii_case("true")
            }
            "connection_throttle_global_session_weight" => self.global_weight = num(key, v)?,
            "connection_throttle_local_session_weight" => self.local_weight = num(key, v)?,
            "connection_throttle_renew_session_weight" => self.renew_weight = num(key, v)?,
            _ => return Err(format!("{key}: not a connection throttle setting")),
        }
        Ok(())
    }

    /// The keys [`ThrottleSettings::set`] takes.
    pub const KEYS: &'static [&'static str] = &[
        "connection_throttle_tokens",
        "connection_throttle_fill_time",
        "connection_throttle_fill_count",
        "connection_throttle_freeze_time",
        "connection_throttle_drop_increase",
        "connection_throttle_drop_decrease",
        "connection_throttle_decrease_ratio",
        "connection_throttle_weight_enabled",
        "connection_throttle_global_session_weight",
        "connection_throttle_local_session_weight",
        "connection_throttle_renew_session_weight",
    ];

    /// The weights as BlueThrottle corrects them (a global or renew weight below the local
    /// one is raised to it; a weight of 0 or less is the default).
    fn weights(&self) -> (u32, u32) {
        let local = if self.local_weight == 0 {
            1
        } else {
            self.local_weight
        };
        let global = match self.global_weight {
            0 => 3,
            g if g < local => local,
            g => g,
        };
        let renew = match self.renew_weight {
            0 => 2,
            r if r < local => local,
            r => r,
        };
        (global, renew)
    }
}

/// ZooKeeper's BlueThrottle, on a clock and a random source handed in.
pub struct ConnectionThrottle {
    s: ThrottleSettings,
    max_tokens: i64,
    fill_count: i64,
    tokens: i64,
    last_time: u64,
    last_freeze: u64,
    drop: f64,
    rng: u64,
}

impl ConnectionThrottle {
    pub fn new(s: ThrottleSettings, now_ms: u64, seed: u64) -> ConnectionThrottle {
        let (global, _) = s.weights();
        let scale = if s.weight_enabled { global as i64 } else { 1 };
        let max_tokens = s.tokens as i64 * scale;
        ConnectionThrottle {
            max_tokens,
            fill_count: s.fill_count as i64 * scale,
            tokens: max_tokens,
            last_time: now_ms,
            last_freeze: now_ms,
            drop: 0.0,
            rng: seed | 1,
            s,
        }
    }

    pub fn enabled(&self) -> bool {
        self.max_tokens != 0
    }

    /// Tokens a ConnectRequest needs: a new session (`session_id` 0) or a renewal.
    pub fn needed(&self, session_id: i64) -> i64 {
        if !self.s.weight_enabled {
            return 1;
        }
        let (global, renew) = self.s.weights();
        if session_id == 0 { global } else { renew }.into()
    }

    fn next_unit(&mut self) -> f64 {
        // xorshift64*: only BLUE's drop draws from it
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        (self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// `checkLimit`: may a connection needing `need` tokens go on now?
    pub fn check(&mut self, need: i64, now_ms: u64) -> bool {
        if self.max_tokens == 0 {
            return true;
        }
        let diff = now_ms.saturating_sub(self.last_time);
        let fill_time = self.s.fill_time_ms.max(1);
        if diff > fill_time {
            let refill = (diff as i64).saturating_mul(self.fill_count) / fill_time as i64;
            self.tokens = (self.tokens.saturating_add(refill)).min(self.max_tokens);
            self.last_time = now_ms;
        }
        if self.s.freeze_time_ms != -1 && !self.check_blue(now_ms) {
            return false;
        }
        if self.tokens < need {
            return false;
        }
        self.tokens -= need;
        true
    }

    fn check_blue(&mut self, now_ms: u64) -> bool {
        let used = self.max_tokens - self.tokens;
        let threshold = (self.max_tokens as f64 * self.s.decrease_ratio).round() as i64;
        if now_ms.saturating_sub(self.last_freeze) as i64 > self.s.freeze_time_ms {
            if used == self.max_tokens && self.drop < 1.0 {
                self.drop = (self.drop + self.s.drop_increase).min(1.0);
            } else if used <= threshold && self.drop > 0.0 {
                self.drop = (self.drop - self.s.drop_decrease).max(0.0);
            }
            self.last_freeze = now_ms;
        }
        self.next_unit() >= self.drop
    }

    /// What the bucket is short of (ZooKeeper's `getDeficit`).
    pub fn deficit(&self) -> i64 {
        self.max_tokens - self.tokens
    }
}

/// ZooKeeper 3.8's request throttler settings (`-Dzookeeper.request_throttle_*`, or the same
/// keys in zoo.cfg, which ZooKeeper turns into those properties), and the staleness
/// `Request.isStale` applies: a request whose connection has closed, and with the latency
/// check one that waited longer than its session's timeout.
#[derive(Clone, Debug, PartialEq)]
pub struct RequestThrottleSettings {
    /// Requests in process past which new ones wait (0 or less: off, the default).
    pub max_requests: i32,
    /// How long the throttler waits before it checks again (ms).
    pub stall_time_ms: u64,
    /// Drop a waiting request that went stale rather than process it.
    pub drop_stale: bool,
    /// A request of a closed connection is stale.
    pub stale_connection_check: bool,
    /// A request older than its session's timeout is stale.
    pub stale_latency_check: bool,
}

impl Default for RequestThrottleSettings {
    fn default() -> RequestThrottleSettings {
        RequestThrottleSettings {
            max_requests: 0,
            stall_time_ms: 100,
            drop_stale: true,
            stale_connection_check: true,
            stale_latency_check: false,
        }
    }
}

impl RequestThrottleSettings {
    /// The keys [`RequestThrottleSettings::set`] takes.
    pub const KEYS: &'static [&'static str] = &[
        "request_throttle_max_requests",
        "request_throttle_stall_time",
        "request_throttle_drop_stale",
        "request_stale_connection_check",
        "request_stale_latency_check",
    ];

    /// Sets one key (without `zookeeper.`); `Err` names what is wrong. Booleans are Java's
    /// `Boolean.parseBoolean`: "true" in any case, anything else false.
    pub fn set(&mut self, key: &str, v: &str) -> Result<(), String> {
        let t = v.trim();
        let truth = t.eq_ignore_ascii_case("true");
        match key {
            "request_throttle_max_requests" => {
                self.max_requests = t
                    .parse()
                    .map_err(|_| format!("{key}={v}: not a valid integer"))?
            }
            "request_throttle_stall_time" => {
                let ms: i64 = t
                    .parse()
                    .map_err(|_| format!("{key}={v}: not a valid integer"))?;
                if ms < 0 {
                    return Err(format!("{key}={v}: a time cannot be negative"));
                }
                self.stall_time_ms = ms as u64;
            }
            "request_throttle_drop_stale" => self.drop_stale = truth,
            "request_stale_connection_check" => self.stale_connection_check = truth,
            "request_stale_latency_check" => self.stale_latency_check = truth,
            _ => return Err(format!("{key}: not a request throttler setting")),
        }
        Ok(())
    }

    pub fn enabled(&self) -> bool {
        self.max_requests > 0
    }
}

/// `globalOutstandingLimit`: the requests handed to the core and not yet answered, counted
/// across all connections. Past the limit the connections stop reading (ZooKeeper's
/// `shouldThrottle` and `disableRecv`) until answers bring the count back down.
pub struct Outstanding {
    count: std::sync::atomic::AtomicUsize,
    /// 0 = unlimited (ZooKeeper's default is 1000).
    limit: usize,
    /// Rung each time answers bring the count back to the limit: throttled readers wait on it.
    drained: tokio::sync::watch::Sender<()>,
    /// Times a connection stopped reading for this limit.
    pub throttled: std::sync::atomic::AtomicU64,
}

impl Outstanding {
    pub fn new(limit: usize) -> Outstanding {
        Outstanding {
            count: Default::default(),
            limit,
            drained: tokio::sync::watch::channel(()).0,
            throttled: Default::default(),
        }
    }

    /// A connection hands `n` requests to the core.
    pub fn handed(&self, n: usize) {
        self.count.fetch_add(n, Ordering::SeqCst);
    }

    /// `n` handed requests are answered, or their connection is gone.
    pub fn done(&self, n: usize) {
        if n == 0 {
            return;
        }
        let before = self
            .count
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |c| {
                Some(c.saturating_sub(n))
            })
            .unwrap_or(0);
        if self.limit > 0 && before > self.limit && before.saturating_sub(n) <= self.limit {
            self.drained.send_replace(());
        }
    }

    pub fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    /// Over the limit: reading stops.
    pub fn over(&self) -> bool {
        self.limit > 0 && self.count() > self.limit
    }

    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<()> {
        self.drained.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(f: impl FnOnce(&mut ThrottleSettings)) -> ThrottleSettings {
        let mut s = ThrottleSettings::default();
        f(&mut s);
        s
    }

    #[test]
    fn off_by_default() {
        let mut t = ConnectionThrottle::new(ThrottleSettings::default(), 0, 7);
        assert!(!t.enabled());
        assert!((0..1000).all(|_| t.check(1, 0)));
    }

    #[test]
    fn the_bucket_empties_and_refills() {
        let s = with(|s| {
            s.tokens = 3;
            s.fill_time_ms = 100;
            s.fill_count = 1;
        });
        let mut t = ConnectionThrottle::new(s, 1000, 7);
        assert!(t.check(1, 1000) && t.check(1, 1000) && t.check(1, 1000));
        assert!(!t.check(1, 1000), "empty");
        assert_eq!(t.deficit(), 3);
        assert!(!t.check(1, 1100), "a refill only after more than fill_time");
        assert!(t.check(1, 1101));
        assert!(!t.check(1, 1101));
        // a long pause fills it up to its size, no more
        assert!(t.check(1, 10_000) && t.check(1, 10_000) && t.check(1, 10_000));
        assert!(!t.check(1, 10_000));
    }

    #[test]
    fn weights_cost_more_for_new_sessions() {
        let s = with(|s| {
            s.tokens = 2;
            s.fill_time_ms = 1_000_000;
            s.weight_enabled = true;
        });
        let mut t = ConnectionThrottle::new(s, 0, 7);
        // 2 × global weight 3 = 6 tokens: two new sessions, or three renewals
        assert_eq!((t.needed(0), t.needed(5)), (3, 2));
        assert!(t.check(t.needed(0), 0) && t.check(t.needed(0), 0));
        assert!(!t.check(t.needed(5), 0));
        let mut t = ConnectionThrottle::new(t.s.clone(), 0, 7);
        assert!((0..3).all(|_| t.check(2, 0)));
        assert!(!t.check(2, 0));
    }

    #[test]
    fn blue_drops_more_while_the_bucket_stays_empty() {
        let s = with(|s| {
            s.tokens = 1;
            s.fill_time_ms = 1_000_000;
            s.freeze_time_ms = 0;
            s.drop_increase = 0.5;
        });
        let mut t = ConnectionThrottle::new(s, 0, 42);
        assert!(t.check(1, 0));
        for now in 1..4 {
            t.check(1, now);
        }
        assert!(t.drop >= 1.0, "drop {}", t.drop);
        // refilled: the bucket has a token but BLUE still drops
        t.tokens = 1;
        assert!(!t.check(1, 10));
    }

    #[test]
    fn request_throttle_settings_parse_by_key() {
        let mut s = RequestThrottleSettings::default();
        assert!(!s.enabled() && s.drop_stale && s.stall_time_ms == 100);
        s.set("request_throttle_max_requests", "5").unwrap();
        s.set("request_throttle_stall_time", "20").unwrap();
        s.set("request_throttle_drop_stale", "False").unwrap();
        s.set("request_stale_latency_check", "TRUE").unwrap();
        assert!(s.enabled() && !s.drop_stale && s.stale_latency_check);
        assert_eq!((s.max_requests, s.stall_time_ms), (5, 20));
        assert!(s.set("request_throttle_max_requests", "many").is_err());
        assert!(s.set("request_throttle_stall_time", "-1").is_err());
        s.set("request_throttle_max_requests", "-1").unwrap();
        assert!(!s.enabled(), "0 or less is off, as in ZooKeeper");
    }

    #[test]
    fn settings_parse_by_key() {
        let mut s = ThrottleSettings::default();
        for (k, v) in [
            ("connection_throttle_tokens", "10"),
            ("connection_throttle_fill_time", "5"),
            ("connection_throttle_weight_enabled", "true"),
            ("connection_throttle_drop_increase", "0.1"),
        ] {
            s.set(k, v).unwrap();
        }
        assert_eq!((s.tokens, s.fill_time_ms, s.weight_enabled), (10, 5, true));
        assert!(s.set("connection_throttle_tokens", "lots").is_err());
        assert!(
            ThrottleSettings::KEYS
                .iter()
                .all(|k| ThrottleSettings::default().set(k, "1").is_ok())
        );
    }
}
