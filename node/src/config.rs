//! `zoo.cfg`, read the way Apache ZooKeeper reads it (a Java properties file), turned into the
//! core's [`ensemble_core::Config`] plus what the node itself needs (directories, ports, limits).
//!
//! Every problem names the file and, where there is one, the line, so an operator can fix it
//! without reading our source.

use crate::jvmflags::JvmFlags;
use crate::settings::{self, Verdict};
use crate::storage::compression::SnapshotCompression;
use crate::tls::{self, TlsSettings};
use ensemble_core::{Config, LearnerType, ServerId};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

/// `preAllocSize` default: ZooKeeper's 64 MiB.
pub const DEFAULT_PREALLOC: u64 = 64 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A problem tied to one line of the file.
    #[error("{path}:{line}: {message}")]
    Line {
        path: PathBuf,
        line: usize,
        message: String,
    },
    /// A problem with the file as a whole (a key that is missing, a myid that is absent).
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    /// A problem with a `-D` flag: `origin` names the variable or env file line it came from.
    #[error("{origin}: {message}")]
    Flag { origin: String, message: String },
    /// Settings this build does not implement and will not run without: one line each,
    /// naming where it was set, the key and why.
    #[error("{}", .0.join("\n"))]
    Refused(Vec<String>),
}

/// One `server.N` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerSpec {
    pub id: ServerId,
    pub host: String,
    pub quorum_port: u16,
    pub election_port: u16,
    pub kind: LearnerType,
    /// The `;[addr:]clientPort` suffix (ZooKeeper 3.5+ dynamic-config form).
    pub client: Option<(Option<String>, u16)>,
    /// 1-based line in the file.
    pub line: usize,
}

/// Which four-letter words answer (`4lw.commands.whitelist`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Whitelist {
    All,
    Only(BTreeSet<String>),
}

impl Whitelist {
    pub fn allows(&self, cmd: &str) -> bool {
        match self {
            Whitelist::All => true,
            Whitelist::Only(set) => set.contains(cmd),
        }
    }

    /// With no `4lw.commands.whitelist` line: ZooKeeper 3.4's default (the version the seed
    /// tutorial deploys) — every command except the expensive `wchp` and `wchc`. ZooKeeper
    /// 3.5+ narrowed it to `srvr` only; set the key to get exactly that.
    pub fn default_set() -> Whitelist {
        let cmds = [
            "ruok", "srvr", "stat", "mntr", "conf", "cons", "crst", "dump", "envi", "wchs", "dirs",
            "isro", "srst", "hash", "gtmk", "stmk",
        ];
        Whitelist::Only(cmds.iter().map(|s| s.to_string()).collect())
    }
}

/// Everything the node needs from `zoo.cfg`.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    pub path: PathBuf,
    pub core: Config,
    /// Standalone: no `server.N` lines.
    pub standalone: bool,
    /// `dynamicConfigFile`: where the `server.N` lines were read from (ZooKeeper 3.5+), and
    /// the version of that configuration (its `version=` line, else its name's hex suffix).
    pub dynamic_file: Option<PathBuf>,
    pub config_version: u64,
    pub data_dir: PathBuf,
    pub data_log_dir: PathBuf,
    pub client_port: u16,
    /// `clientPortAddress` (or the server line's client address); `None` listens on all.
    pub client_address: Option<String>,
    /// Per client IP; 0 = unlimited.
    pub max_client_cnxns: u32,
    /// `maxCnxns`: client connections of this server in all; 0 = unlimited.
    pub max_cnxns: u32,
    /// `globalOutstandingLimit`: requests in flight past which connections stop reading
    /// (0 or less = unlimited).
    pub global_outstanding_limit: usize,
    /// `zookeeper.connection_throttle_*`: the connection throttle (off by default).
    pub connection_throttle: crate::limits::ThrottleSettings,
    /// `zookeeper.request_throttle_*`: the request throttler (off by default).
    pub request_throttle: crate::limits::RequestThrottleSettings,
    pub servers: BTreeMap<ServerId, ServerSpec>,
    pub snap_retain_count: u32,
    /// Hours; 0 = autopurge off.
    pub purge_interval_hours: u32,
    pub whitelist: Whitelist,
    /// `jute.maxbuffer`: largest client frame accepted.
    pub max_buffer: usize,
    pub prealloc_size: u64,
    /// `forceSync=no` skips fsync (as ZooKeeper's zookeeper.forceSync): unsafe, for tests only.
    pub force_sync: bool,
    /// `zookeeper.snapshot.compression.method`: how new snapshots are written.
    pub snapshot_compression: SnapshotCompression,
    /// The AdminServer (`admin.*`).
    pub admin: crate::admin::AdminConfig,
    /// The Prometheus endpoint, when `metricsProvider.className` names ZooKeeper's
    /// PrometheusMetricsProvider.
    pub metrics: Option<crate::metrics::endpoint::MetricsConfig>,
    /// `secureClientPort`, `ssl.*`, `sslQuorum`, ... (passwords masked in its `Debug`).
    pub tls: TlsSettings,
    /// `audit.enable` (`-Dzookeeper.audit.enable`): ZooKeeper's audit lines in
    /// `dataDir/zookeeper_audit.log`.
    pub audit_enable: bool,
    /// Authentication: providers, super users, the JAAS file, enforcement.
    pub auth: crate::sasl::settings::AuthSettings,
    /// Keys in file order, as `conf`/`envi` may want to show them.
    pub entries: Vec<(String, String)>,
    /// Things to tell the operator on the terminal and in the log: unknown and ignored keys
    /// and flags, overridden values.
    pub warnings: Vec<String>,
}

impl NodeConfig {
    pub fn me(&self) -> Option<&ServerSpec> {
        self.servers.get(&self.core.my_id)
    }

    /// Where `ensemble status` should connect: a concrete address if one was configured.
    pub fn client_connect_host(&self) -> String {
        match self.client_address.as_deref() {
            None | Some("0.0.0.0") | Some("::") | Some("[::]") => "127.0.0.1".to_string(),
            Some(h) => h.to_string(),
        }
    }

    pub fn snap_dir(&self) -> PathBuf {
        self.data_dir.join("version-2")
    }

    pub fn log_dir(&self) -> PathBuf {
        self.data_log_dir.join("version-2")
    }

    pub fn pid_file(&self) -> PathBuf {
        self.data_dir.join("zookeeper_server.pid")
    }
}

pub(crate) struct Parser<'a> {
    pub(crate) path: &'a Path,
    /// Where each `-D` flag turned into an entry came from, by `line - FLAG_LINE`.
    pub(crate) flag_origins: Vec<String>,
}

/// Entries made from `-D` flags are numbered from here, so that messages can tell them apart
/// from lines of the file.
const FLAG_LINE: usize = usize::MAX / 2;

impl Parser<'_> {
    /// `zoo.cfg:12`, or where a flag was set.
    fn at(&self, line: usize) -> String {
        match line.checked_sub(FLAG_LINE) {
            Some(i) => self.flag_origins.get(i).cloned().unwrap_or_default(),
            None => format!("{}:{line}", self.path.display()),
        }
    }

    pub(crate) fn line_err(&self, line: usize, message: impl Into<String>) -> ConfigError {
        match line.checked_sub(FLAG_LINE) {
            Some(i) => ConfigError::Flag {
                origin: self.flag_origins.get(i).cloned().unwrap_or_default(),
                message: message.into(),
            },
            None => ConfigError::Line {
                path: self.path.to_path_buf(),
                line,
                message: message.into(),
            },
        }
    }
    pub(crate) fn file_err(&self, message: impl Into<String>) -> ConfigError {
        ConfigError::File {
            path: self.path.to_path_buf(),
            message: message.into(),
        }
    }

    fn num<T: std::str::FromStr>(&self, line: usize, key: &str, v: &str) -> Result<T, ConfigError> {
        v.trim()
            .parse::<T>()
            .map_err(|_| self.line_err(line, format!("{key}={v}: not a valid number for {key}")))
    }
}

/// A raw `key=value` line (Java properties rules, minus escapes we never need).
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) line: usize,
    pub(crate) key: String,
    pub(crate) value: String,
}

pub(crate) fn split_properties(text: &str) -> Vec<Entry> {
    let mut out = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (i, raw) in text.lines().enumerate() {
        let lineno = i + 1;
        let trimmed = raw.trim_start();
        let (start, mut body) = match pending.take() {
            Some((start, acc)) => (start, acc + trimmed),
            None => {
                if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with('!') {
                    continue;
                }
                (lineno, trimmed.to_string())
            }
        };
        // A line ending in an odd number of backslashes continues on the next one.
        let trailing = body.chars().rev().take_while(|c| *c == '\\').count();
        if trailing % 2 == 1 {
            body.pop();
            pending = Some((start, body));
            continue;
        }
        let sep = body.find(['=', ':', ' ', '\t']);
        let (key, value) = match sep {
            Some(at) => {
                let key = &body[..at];
                let mut rest = body[at..].trim_start_matches([' ', '\t']);
                if rest.starts_with('=') || rest.starts_with(':') {
                    rest = &rest[1..];
                }
                (key.to_string(), rest.trim().to_string())
            }
            None => (body.clone(), String::new()),
        };
        out.push(Entry {
            line: start,
            key,
            value,
        });
    }
    if let Some((start, body)) = pending {
        out.push(Entry {
            line: start,
            key: body.trim().to_string(),
            value: String::new(),
        });
    }
    out
}

/// Parse `host:port:port[:type][;[addr:]clientPort]`. IPv6 hosts go in brackets.
pub(crate) fn parse_server_line(
    p: &Parser<'_>,
    e: &Entry,
    id: ServerId,
) -> Result<ServerSpec, ConfigError> {
    let bad = |why: &str| {
        p.line_err(
            e.line,
            format!(
                "{}={}: {why} (expected host:quorumPort:electionPort[:participant|:observer][;[address:]clientPort])",
                e.key, e.value
            ),
        )
    };
    let (addr_part, client_part) = match e.value.split_once(';') {
        Some((a, c)) => (a.trim(), Some(c.trim())),
        None => (e.value.trim(), None),
    };
    if addr_part.contains('|') {
        return Err(bad("multiple addresses per server are not supported"));
    }
    let (host, rest) = if let Some(stripped) = addr_part.strip_prefix('[') {
        let end = stripped
            .find(']')
            .ok_or_else(|| bad("unclosed '[' in the host"))?;
        let host = &stripped[..end];
        let rest = stripped[end + 1..]
            .strip_prefix(':')
            .ok_or_else(|| bad("missing ports"))?;
        (host.to_string(), rest)
    } else {
        let (h, r) = addr_part
            .split_once(':')
            .ok_or_else(|| bad("missing ports"))?;
        (h.to_string(), r)
    };
    if host.is_empty() {
        return Err(bad("empty host"));
    }
    let parts: Vec<&str> = rest.split(':').collect();
    if parts.len() < 2 || parts.len() > 3 {
        return Err(bad("wrong number of fields"));
    }
    let port = |s: &str, what: &str| -> Result<u16, ConfigError> {
        match s.trim().parse::<u16>() {
            Ok(p) if p > 0 => Ok(p),
            _ => Err(bad(&format!("{what} '{s}' is not a port number"))),
        }
    };
    let quorum_port = port(parts[0], "quorum port")?;
    let election_port = port(parts[1], "election port")?;
    let kind = match parts.get(2).map(|s| s.trim().to_ascii_lowercase()) {
        None => LearnerType::Participant,
        Some(t) if t == "participant" => LearnerType::Participant,
        Some(t) if t == "observer" => LearnerType::Observer,
        Some(t) => return Err(bad(&format!("unknown server type '{t}'"))),
    };
    let client = match client_part {
        None | Some("") => None,
        Some(c) => {
            let (addr, p) = match c.rsplit_once(':') {
                Some((a, p)) => (Some(a.trim_matches(['[', ']']).to_string()), p),
                None => (None, c),
            };
            Some((addr, port(p, "client port")?))
        }
    };
    Ok(ServerSpec {
        id,
        host,
        quorum_port,
        election_port,
        kind,
        client,
        line: e.line,
    })
}

/// Read and check a `zoo.cfg`, including `myid` from its dataDir, with the `-D` flags of the
/// environment and the conf directory's env files (see [`crate::jvmflags`]).
pub fn load(path: &Path) -> Result<NodeConfig, ConfigError> {
    load_with_env(path, &|k| std::env::var(k).ok())
}

/// [`load`] for `ensemble stop` and `status`: settings that refuse to start do not refuse
/// here (they become warnings), so that a server started before the file was edited can still
/// be found and stopped.
pub fn load_for_control(path: &Path) -> Result<NodeConfig, ConfigError> {
    load_inner(path, &|k| std::env::var(k).ok(), false)
}

/// [`load`] with the environment given (tests).
pub fn load_with_env(
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<NodeConfig, ConfigError> {
    load_inner(path, env, true)
}

fn load_inner(
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    strict: bool,
) -> Result<NodeConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let flags = JvmFlags::gather(path, env).map_err(|e| match e.line {
        0 => ConfigError::File {
            path: e.path,
            message: e.message,
        },
        line => ConfigError::Line {
            path: e.path,
            line,
            message: e.message,
        },
    })?;
    parse_inner(path, &text, &flags, strict)
}

/// Parse `text` as if read from `path`, without flags (`myid` is still read from dataDir).
pub fn parse(path: &Path, text: &str) -> Result<NodeConfig, ConfigError> {
    parse_with_flags(path, text, &JvmFlags::default())
}

/// Bounds of `syncPartSize`: a sync frame of at least a KiB, and far below the peer frame limit
/// (a part's frame adds a few bytes of header to it).
const MIN_SYNC_PART: usize = 1 << 10;
const MAX_SYNC_PART: usize = 256 << 20;

/// zoo.cfg keys whose `-Dzookeeper.<key>` flag ZooKeeper reads too (zoo.cfg wins: it sets
/// the system property after the JVM started), and which the parser implements.
const PROPERTY_KEYS: &[&str] = &[
    "snapCount",
    "syncPartSize",
    "preAllocSize",
    "forceSync",
    "4lw.commands.whitelist",
    "extendedTypesEnabled",
    "DigestAuthenticationProvider.superDigest",
    "snapshot.compression.method",
    "admin.enableServer",
    "admin.serverAddress",
    "admin.serverPort",
    "admin.commandURL",
    "admin.idleTimeout",
    "enforceQuota",
    "commitLogCount",
    "audit.enable",
    "globalOutstandingLimit",
];

/// QuorumPeer's `Boolean.getBoolean("readonlymode.enabled")`: a -D flag only (in zoo.cfg it
/// would become `zookeeper.readonlymode.enabled`, which ZooKeeper never reads).
const READ_ONLY_PROPERTY: &str = "readonlymode.enabled";

/// Turn `-D` flags into entries the parser reads before the file's (what it implements), and
/// verdicts for the rest.
fn flag_entries(
    flags: &JvmFlags,
    origins: &mut Vec<String>,
    refusals: &mut Vec<String>,
    warnings: &mut Vec<String>,
) -> Vec<Entry> {
    let mut out = Vec::new();
    for prop in &flags.properties {
        let (name, value) = (prop.name.as_str(), prop.value.as_str());
        // Where a flag was set is quoted in messages: never with a password in it.
        let shown_value = if name.to_ascii_lowercase().contains("password") {
            "****"
        } else {
            value
        };
        let shown = format!("{}: -D{name}={shown_value}", prop.origin);
        let key = if name == "jute.maxbuffer" || name == READ_ONLY_PROPERTY {
            Some(name)
        } else {
            name.strip_prefix("zookeeper.")
        };
        let key = if name == crate::sasl::settings::LOGIN_CONFIG
            || name == crate::sasl::settings::KRB5_CONF
        {
            Some(name)
        } else {
            key
        };
        let verdict = match key {
            Some(k)
                if k == "jute.maxbuffer"
                    || k == READ_ONLY_PROPERTY
                    || k == crate::sasl::settings::LOGIN_CONFIG
                    || k == crate::sasl::settings::KRB5_CONF
                    || PROPERTY_KEYS.contains(&k)
                    || tls::settings::is_property_key(k)
                    || crate::sasl::settings::is_property_key(k)
                    || crate::limits::ThrottleSettings::KEYS.contains(&k)
                    || crate::limits::RequestThrottleSettings::KEYS.contains(&k) =>
            {
                out.push(Entry {
                    line: FLAG_LINE + origins.len(),
                    key: k.to_string(),
                    value: value.to_string(),
                });
                origins.push(shown);
                continue;
            }
            Some(k) if settings::is_config_file_only(k) => Some(Verdict::Ignored(format!(
                "ZooKeeper reads {k} from zoo.cfg only"
            ))),
            Some(k) => settings::classify_key(k, value)
                .or_else(|| settings::classify_property(name, value)),
            None => settings::classify_property(name, value),
        };
        match verdict {
            Some(Verdict::Matches) => {}
            Some(Verdict::Refuse(why)) => refusals.push(format!("{shown}: {why}")),
            Some(Verdict::Ignored(why)) => warnings.push(format!("{shown}: ignored: {why}")),
            None => {
                let hint = key
                    .and_then(|k| settings::did_you_mean(k, &[]))
                    .map(|k| format!(" (did you mean -Dzookeeper.{k}?)"))
                    .or_else(|| {
                        settings::did_you_mean(name, &["readonlymode.enabled", "jute.maxbuffer"])
                            .map(|k| format!(" (did you mean -D{k}?)"))
                    })
                    .unwrap_or_default();
                warnings.push(format!("{shown}: unknown system property ignored{hint}"));
            }
        }
    }
    for w in &flags.other {
        warnings.push(format!(
            "{}: {}: a JVM option with no meaning here; ignored",
            w.origin, w.text
        ));
    }
    out
}

/// Parse `text` as if read from `path`, with `-D` flags read before it.
pub fn parse_with_flags(
    path: &Path,
    text: &str,
    flags: &JvmFlags,
) -> Result<NodeConfig, ConfigError> {
    parse_inner(path, text, flags, true)
}

fn parse_inner(
    path: &Path,
    text: &str,
    flags: &JvmFlags,
    strict: bool,
) -> Result<NodeConfig, ConfigError> {
    let mut warnings = Vec::new();
    let mut refusals = Vec::new();
    let mut flag_origins = Vec::new();
    let mut entries = flag_entries(flags, &mut flag_origins, &mut refusals, &mut warnings);
    entries.extend(split_properties(text));
    let p = Parser { path, flag_origins };

    let mut tick_time: Option<(usize, u64)> = None;
    let mut init_limit: Option<u32> = None;
    let mut sync_limit: Option<u32> = None;
    let mut data_dir: Option<(usize, PathBuf)> = None;
    let mut data_log_dir: Option<PathBuf> = None;
    let mut client_port: Option<(usize, u16)> = None;
    let mut client_address: Option<String> = None;
    let mut max_client_cnxns: u32 = 60;
    let mut max_cnxns: u32 = 0;
    let mut global_outstanding_limit: i64 = 1000;
    let mut connection_throttle = crate::limits::ThrottleSettings::default();
    let mut request_throttle = crate::limits::RequestThrottleSettings::default();
    let mut min_session: Option<(usize, i64)> = None;
    let mut max_session: Option<(usize, i64)> = None;
    let mut servers: BTreeMap<ServerId, ServerSpec> = BTreeMap::new();
    let mut peer_type: Option<(usize, LearnerType)> = None;
    let mut snap_retain: u32 = 3;
    let mut purge_interval: u32 = 0;
    let mut snap_count: u64 = 100_000;
    let mut sync_part: Option<usize> = None;
    let mut whitelist: Option<Whitelist> = None;
    let mut max_buffer: usize = ensemble_proto::jute::MAX_BUFFER;
    let mut prealloc: u64 = DEFAULT_PREALLOC;
    let mut force_sync = true;
    let mut snapshot_compression = SnapshotCompression::None;
    let mut extended_types: Option<bool> = None;
    let mut enforce_quota = false;
    let mut commit_log_count: usize = 500;
    let (mut read_only, mut local_sessions, mut local_upgrading) = (false, false, false);
    let mut audit_enable = false;
    let mut trust_empty = false;
    let mut super_digest: Option<String> = None;
    let mut tls = TlsSettings::new();
    let mut auth = crate::sasl::settings::AuthSettings::default();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut admin = crate::admin::AdminConfig::default();
    let mut provider: Option<(usize, String)> = None;
    let mut metrics_cfg = crate::metrics::endpoint::MetricsConfig::default();
    let mut metrics_keys: Vec<usize> = Vec::new();
    let (mut reconfig_enabled, mut standalone_enabled) = (false, true);
    let mut dynamic_file: Option<(usize, PathBuf)> = None;
    // QuorumPeerConfig: with a dynamic file, membership lines in the static one are an error.
    let has_dynamic_file = entries.iter().any(|e| e.key == "dynamicConfigFile");

    let bool_of = |line: usize, key: &str, v: &str| -> Result<bool, ConfigError> {
        match v.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" => Ok(true),
            "false" | "no" => Ok(false),
            _ => Err(p.line_err(line, format!("{key}={v}: expected true or false"))),
        }
    };

    for e in &entries {
        if let Some(prev) = seen.insert(e.key.clone(), e.line) {
            warnings.push(format!(
                "{}: {} is set again (also at {}); this value wins",
                p.at(e.line),
                e.key,
                p.at(prev)
            ));
        }
        let v = e.value.as_str();
        match e.key.as_str() {
            // an int in ZooKeeper; u32 keeps every product of it (limits, timeouts) in range
            "tickTime" => tick_time = Some((e.line, u64::from(positive(&p, e, v)?))),
            "initLimit" => init_limit = Some(positive(&p, e, v)?),
            "syncLimit" => sync_limit = Some(positive(&p, e, v)?),
            "dataDir" => {
                if v.is_empty() {
                    return Err(p.line_err(e.line, "dataDir is empty"));
                }
                data_dir = Some((e.line, PathBuf::from(v)));
            }
            "dataLogDir" => {
                if v.is_empty() {
                    return Err(p.line_err(e.line, "dataLogDir is empty"));
                }
                data_log_dir = Some(PathBuf::from(v));
            }
            "clientPort" => {
                let port: u16 = p.num(e.line, &e.key, v)?;
                if port == 0 {
                    return Err(p.line_err(e.line, "clientPort must be 1..65535"));
                }
                client_port = Some((e.line, port));
            }
            "clientPortAddress" => {
                if v.is_empty() {
                    return Err(p.line_err(e.line, "clientPortAddress is empty"));
                }
                client_address = Some(v.trim_matches(['[', ']']).to_string());
            }
            "maxClientCnxns" => max_client_cnxns = p.num(e.line, &e.key, v)?,
            "maxCnxns" => max_cnxns = p.num(e.line, &e.key, v)?,
            "globalOutstandingLimit" => global_outstanding_limit = p.num(e.line, &e.key, v)?,
            k if crate::limits::ThrottleSettings::KEYS.contains(&k) => connection_throttle
                .set(k, v)
                .map_err(|why| p.line_err(e.line, why))?,
            k if crate::limits::RequestThrottleSettings::KEYS.contains(&k) => request_throttle
                .set(k, v)
                .map_err(|why| p.line_err(e.line, why))?,
            "minSessionTimeout" => min_session = Some((e.line, p.num(e.line, &e.key, v)?)),
            "maxSessionTimeout" => max_session = Some((e.line, p.num(e.line, &e.key, v)?)),
            "peerType" => {
                let t = match v.trim().to_ascii_lowercase().as_str() {
                    "observer" => LearnerType::Observer,
                    "participant" => LearnerType::Participant,
                    _ => {
                        return Err(p.line_err(
                            e.line,
                            format!("peerType={v}: expected observer or participant"),
                        ));
                    }
                };
                peer_type = Some((e.line, t));
            }
            "autopurge.snapRetainCount" => {
                let n: u32 = p.num(e.line, &e.key, v)?;
                // ZooKeeper's floor: fewer than 3 retained snapshots is raised to 3.
                if n < 3 {
                    warnings.push(format!(
                        "{}: autopurge.snapRetainCount={n} is below the minimum; using 3",
                        p.at(e.line)
                    ));
                }
                snap_retain = n.max(3);
            }
            "autopurge.purgeInterval" => purge_interval = p.num(e.line, &e.key, v)?,
            "snapCount" => {
                let n: u64 = p.num(e.line, &e.key, v)?;
                if n < 2 {
                    return Err(p.line_err(e.line, "snapCount must be at least 2"));
                }
                snap_count = n;
            }
            "syncPartSize" => {
                let n: usize = p.num(e.line, &e.key, v)?;
                if !(MIN_SYNC_PART..=MAX_SYNC_PART).contains(&n) {
                    return Err(p.line_err(
                        e.line,
                        format!(
                            "syncPartSize must be between {MIN_SYNC_PART} and {MAX_SYNC_PART} bytes"
                        ),
                    ));
                }
                sync_part = Some(n);
            }
            "4lw.commands.whitelist" => {
                let mut set = BTreeSet::new();
                let mut all = false;
                for w in v.split(',').map(str::trim).filter(|w| !w.is_empty()) {
                    if w == "*" {
                        all = true;
                    } else if crate::fourlw::is_known(w) {
                        set.insert(w.to_string());
                    } else {
                        warnings.push(format!(
                            "{}: unknown four-letter word '{w}' in 4lw.commands.whitelist",
                            p.at(e.line)
                        ));
                    }
                }
                whitelist = Some(if all {
                    Whitelist::All
                } else {
                    Whitelist::Only(set)
                });
            }
            "jute.maxbuffer" => {
                let n: usize = p.num(e.line, &e.key, v)?;
                if n < 1024 {
                    return Err(p.line_err(e.line, "jute.maxbuffer must be at least 1024"));
                }
                max_buffer = n;
            }
            "preAllocSize" => {
                // ZooKeeper's unit: KiB.
                let kib: u64 = p.num(e.line, &e.key, v)?;
                prealloc = kib.saturating_mul(1024);
            }
            "forceSync" => force_sync = bool_of(e.line, &e.key, v)?,
            "snapshot.compression.method" => {
                snapshot_compression = SnapshotCompression::parse(v)
                    .map_err(|why| p.line_err(e.line, format!("{}={v}: {why}", e.key)))?
            }
            // ZooKeeper sets unknown zoo.cfg keys as `zookeeper.<key>` system properties
            "extendedTypesEnabled" | "zookeeper.extendedTypesEnabled" => {
                extended_types = Some(bool_of(e.line, &e.key, v)?)
            }
            // ZooKeeperServer reads it as a system property; a zoo.cfg key becomes one
            "enforceQuota" => enforce_quota = bool_of(e.line, &e.key, v)?,
            // ZKDatabase reads it as a system property: the committed txns kept in memory for
            // a DIFF (here: of those the newest snapshot covers). Its floor is 500, as there.
            "commitLogCount" => {
                let n: usize = p.num(e.line, &e.key, v)?;
                if n < 500 {
                    warnings.push(format!(
                        "{}: commitLogCount={n} is less than the recommended 500; using 500",
                        p.at(e.line)
                    ));
                }
                commit_log_count = n.max(500);
            }
            READ_ONLY_PROPERTY if e.line >= FLAG_LINE => read_only = bool_of(e.line, &e.key, v)?,
            "localSessionsEnabled" => local_sessions = bool_of(e.line, &e.key, v)?,
            "localSessionsUpgradingEnabled" => local_upgrading = bool_of(e.line, &e.key, v)?,
            "audit.enable" => audit_enable = bool_of(e.line, &e.key, v)?,
            "reconfigEnabled" => reconfig_enabled = bool_of(e.line, &e.key, v)?,
            "standaloneEnabled" => standalone_enabled = bool_of(e.line, &e.key, v)?,
            "dynamicConfigFile" => {
                if v.trim().is_empty() {
                    return Err(p.line_err(e.line, "dynamicConfigFile is empty"));
                }
                dynamic_file = Some((e.line, PathBuf::from(v.trim())));
            }
            k if (k.starts_with("server.")
                || k.starts_with("group.")
                || k.starts_with("weight."))
                && has_dynamic_file =>
            {
                return Err(p.line_err(
                    e.line,
                    format!(
                        "{k} must be in a separate dynamic config file (dynamicConfigFile is set), \
                         as ZooKeeper requires"
                    ),
                ));
            }
            "ensemble.trustEmptyDataDirs" => trust_empty = bool_of(e.line, &e.key, v)?,
            k if k.starts_with("server.") => {
                let id: ServerId = k["server.".len()..].parse().map_err(|_| {
                    p.line_err(
                        e.line,
                        format!("{k}: the server id must be a non-negative integer"),
                    )
                })?;
                let spec = parse_server_line(&p, e, id)?;
                if let Some(prev) = servers.get(&id) {
                    return Err(p.line_err(
                        e.line,
                        format!("server.{id} is defined twice (also on line {})", prev.line),
                    ));
                }
                servers.insert(id, spec);
            }
            k if k.starts_with("group.") || k.starts_with("weight.") => {
                return Err(p.line_err(
                    e.line,
                    format!("{k}: hierarchical quorums are not supported"),
                ));
            }
            "DigestAuthenticationProvider.superDigest" => {
                super_digest = Some(parse_super_digest(&p, e, v)?);
            }
            "admin.enableServer" => admin.enabled = bool_of(e.line, &e.key, v)?,
            "admin.serverAddress" => {
                if v.trim().is_empty() {
                    return Err(p.line_err(e.line, "admin.serverAddress is empty"));
                }
                admin.address = v.trim().trim_matches(['[', ']']).to_string();
            }
            "admin.serverPort" => admin.port = p.num(e.line, &e.key, v)?,
            "admin.commandURL" => {
                let u = v.trim();
                if !u.starts_with('/') {
                    return Err(p.line_err(
                        e.line,
                        format!("admin.commandURL={u}: a path starting with /"),
                    ));
                }
                admin.command_url = u.to_string();
            }
            "admin.idleTimeout" => admin.idle_timeout_ms = p.num(e.line, &e.key, v)?,
            "metricsProvider.className" => provider = Some((e.line, v.trim().to_string())),
            "metricsProvider.httpHost" => {
                metrics_cfg.host = v.trim().trim_matches(['[', ']']).to_string();
                metrics_keys.push(e.line);
            }
            "metricsProvider.httpPort" => {
                metrics_cfg.port = p.num(e.line, &e.key, v)?;
                metrics_keys.push(e.line);
            }
            "metricsProvider.exportJvmInfo" => {
                bool_of(e.line, &e.key, v)?;
                warnings.push(format!(
                    "{}: metricsProvider.exportJvmInfo={v}: not applicable: there is no JVM to \
                     report on (the process's own figures are in mntr)",
                    p.at(e.line)
                ));
            }
            k if tls::settings::is_tls_key(k) => {
                match tls
                    .take(k, v, p.at(e.line))
                    .map_err(|m| p.line_err(e.line, m))?
                {
                    tls::settings::Taken::Kept => {}
                    tls::settings::Taken::Refuse(why) => {
                        refusals.push(format!("{}: {k}: {why}", p.at(e.line)))
                    }
                }
            }
            k if auth.take(k, v).is_some() => {
                if let Some(Err(why)) = auth.take(k, v) {
                    refusals.push(format!("{}: {k}: {why}", p.at(e.line)));
                }
            }
            k => match settings::classify_key(k, v) {
                Some(Verdict::Matches) => {}
                Some(Verdict::Refuse(why)) => {
                    refusals.push(format!("{}: {k}: {why}", p.at(e.line)))
                }
                Some(Verdict::Ignored(why)) => {
                    warnings.push(format!("{}: {k}={v}: ignored: {why}", p.at(e.line)))
                }
                None => {
                    // ZooKeeper puts `zookeeper.` in front of the key itself: with it
                    // written out, the property is `zookeeper.zookeeper.<key>`, read by no one.
                    let unprefixed = k
                        .strip_prefix("zookeeper.")
                        .filter(|rest| {
                            PROPERTY_KEYS.contains(rest)
                                || *rest == "jute.maxbuffer"
                                || settings::classify_key(rest, v).is_some()
                        })
                        .map(|rest| format!(" (in zoo.cfg, write {rest} without zookeeper.)"));
                    let hint = unprefixed
                        .or_else(|| {
                            settings::did_you_mean(k, &[]).map(|k| format!(" (did you mean {k}?)"))
                        })
                        .unwrap_or_default();
                    warnings.push(format!("{}: unknown key '{k}' ignored{hint}", p.at(e.line)));
                }
            },
        }
    }
    // ssl.authProvider names the authProvider.<name> that judges client certificates; only
    // X509AuthenticationProvider can (a custom class is refused with the other keys).
    if tls.client_tls() && tls.auth_provider() != "x509" {
        let name = tls.auth_provider().to_string();
        let key = format!("authProvider.{name}");
        let x509 = "org.apache.zookeeper.server.auth.X509AuthenticationProvider";
        if !entries
            .iter()
            .any(|e| e.key == key && e.value.trim() == x509)
        {
            return Err(p.file_err(format!(
                "ssl.authProvider={name}: no {key}={x509} is configured for it (ZooKeeper: \
                 \"No auth provider configured for the SSL authentication scheme\")"
            )));
        }
    }
    if admin.enabled
        && tls::admin::wanted(&tls)
        && tls.get(tls::Side::Quorum, "keyStore.location").is_none()
    {
        return Err(p.file_err(
            "admin.forceHttps / admin.portUnification: HTTPS for the AdminServer needs \
             ssl.quorum.keyStore.location (it uses the quorum's stores, as ZooKeeper does)",
        ));
    }
    if auth.x509_super_user.is_some() && !tls.client_tls() {
        warnings.push(
            "X509AuthenticationProvider.superUser is set, but no client port speaks TLS \
             (secureClientPort, client.portUnification): no certificate can name it"
                .to_string(),
        );
    }
    if tls.secure_client_address.is_some() && tls.secure_client_port.is_none() {
        return Err(p.file_err("secureClientPortAddress is set but secureClientPort is not set"));
    }
    if let Err(why) = auth.validate() {
        refusals.push(why);
    }
    if !refusals.is_empty() {
        if strict {
            return Err(ConfigError::Refused(refusals));
        }
        warnings.extend(refusals);
    }

    let (tick_line, tick) = tick_time.ok_or_else(|| p.file_err("tickTime is not set"))?;
    let (data_dir_line, data_dir) = data_dir.ok_or_else(|| p.file_err("dataDir is not set"))?;
    let data_log_dir = data_log_dir.unwrap_or_else(|| data_dir.clone());
    let mut config_version = 0;
    if let Some((_, file)) = &dynamic_file {
        let read = crate::dynamic_config::read(file)?;
        servers = read.servers;
        config_version = read.version;
    }
    let standalone = servers.is_empty();

    // Session timeouts: -1 (or absent) means ZooKeeper's 2x / 20x tickTime.
    let min_s = match min_session {
        Some((_, v)) if v >= 0 => v,
        _ => 2 * tick as i64,
    };
    let max_s = match max_session {
        Some((_, v)) if v >= 0 => v,
        _ => 20 * tick as i64,
    };
    if min_s > max_s {
        let line = min_session.or(max_session).map(|(l, _)| l).unwrap_or(0);
        return Err(p.line_err(
            line,
            format!(
                "minSessionTimeout ({min_s}) must not be larger than maxSessionTimeout ({max_s})"
            ),
        ));
    }
    let to_i32 = |v: i64, line: usize| -> Result<i32, ConfigError> {
        i32::try_from(v).map_err(|_| p.line_err(line, format!("session timeout {v} is too large")))
    };
    // a default too large for an int is tickTime's fault
    let min_s = to_i32(min_s, min_session.map(|x| x.0).unwrap_or(tick_line))?;
    let max_s = to_i32(max_s, max_session.map(|x| x.0).unwrap_or(tick_line))?;

    let (my_id, members) = if standalone {
        if let Some((line, LearnerType::Observer)) = peer_type {
            return Err(p.line_err(line, "peerType=observer needs server.N lines"));
        }
        // Standalone needs no myid; ZooKeeper reports serverId 0 there.
        let id = read_myid(&data_dir)
            .ok()
            .flatten()
            .map(|(id, _)| id)
            .unwrap_or(0);
        (id, BTreeMap::from([(id, LearnerType::Participant)]))
    } else {
        if init_limit.is_none() {
            return Err(p.file_err("initLimit is not set (required with server.N lines)"));
        }
        if sync_limit.is_none() {
            return Err(p.file_err("syncLimit is not set (required with server.N lines)"));
        }
        let myid_path = data_dir.join("myid");
        let id = match read_myid(&data_dir) {
            Ok(Some((id, _))) => id,
            Ok(None) if !data_dir.is_dir() => {
                // the cause is the directory, not the file in it
                return Err(p.line_err(
                    data_dir_line,
                    format!(
                        "dataDir={}: {}; create it and write this server's id (the N of its server.N line) into {}",
                        data_dir.display(),
                        if data_dir.exists() {
                            "is not a directory"
                        } else {
                            "the directory does not exist"
                        },
                        myid_path.display()
                    ),
                ));
            }
            Ok(None) => {
                return Err(p.line_err(
                    data_dir_line,
                    format!(
                        "dataDir={}: {} is missing; write this server's id (the N of its server.N line) into it",
                        data_dir.display(),
                        myid_path.display()
                    ),
                ));
            }
            Err(why) => {
                return Err(p.line_err(
                    data_dir_line,
                    format!(
                        "dataDir={}: {}: {why}",
                        data_dir.display(),
                        myid_path.display()
                    ),
                ));
            }
        };
        let Some(me) = servers.get(&id) else {
            return Err(p.file_err(format!(
                "{} says {id}, but there is no server.{id} line",
                myid_path.display()
            )));
        };
        if let Some((line, t)) = peer_type
            && t != me.kind
        {
            warnings.push(format!(
                "{}:{line}: peerType ({}) does not match server.{id}'s type ({}); using the server line",
                path.display(),
                kind_name(t),
                kind_name(me.kind)
            ));
        }
        if !servers.values().any(|s| s.kind == LearnerType::Participant) {
            return Err(p.file_err("no participant among the server.N lines"));
        }
        (id, servers.iter().map(|(id, s)| (*id, s.kind)).collect())
    };

    // The client port: clientPort, or the `;port` of this server's line.
    let mine = servers.get(&my_id);
    let (port, addr) = match (client_port, mine.and_then(|s| s.client.clone())) {
        (Some((line, a)), Some((_, b))) if a != b => {
            return Err(p.line_err(
                line,
                format!("clientPort={a} conflicts with server.{my_id}'s client port {b}"),
            ));
        }
        (_, Some((addr, b))) => (b, client_address.clone().or(addr)),
        (Some((_, a)), None) => (a, client_address.clone()),
        (None, None) if tls.secure_client_port.is_some() => {
            return Err(p.file_err(
                "clientPort is not set: a secureClientPort alone is not supported in this build; \
                 set clientPort too (clientPortAddress=127.0.0.1 keeps it off the network)",
            ));
        }
        (None, None) => return Err(p.file_err("clientPort is not set")),
    };

    use crate::metrics::endpoint::{DEFAULT_PROVIDER, PROMETHEUS_PROVIDER};
    let metrics = match provider {
        Some((_, c)) if c == PROMETHEUS_PROVIDER => Some(metrics_cfg),
        Some((line, c)) if c != DEFAULT_PROVIDER => {
            return Err(p.line_err(
                line,
                format!(
                    "metricsProvider.className={c}: no such provider in this build (there are \
                     {DEFAULT_PROVIDER}, the default, and {PROMETHEUS_PROVIDER})"
                ),
            ));
        }
        _ => {
            for line in metrics_keys {
                warnings.push(format!(
                    "{}: ignored: the Prometheus endpoint is off (metricsProvider.className is \
                     not {PROMETHEUS_PROVIDER})",
                    p.at(line)
                ));
            }
            None
        }
    };

    let mut core = Config::new(my_id, members);
    core.tick_time_ms = tick;
    core.init_limit = init_limit.unwrap_or(10);
    core.sync_limit = sync_limit.unwrap_or(5);
    core.min_session_timeout_ms = min_s;
    core.max_session_timeout_ms = max_s;
    core.snap_count = snap_count;
    if let Some(n) = sync_part {
        core.sync_part_bytes = n;
    }
    if let Some(x) = extended_types {
        core.extended_types = x;
    }
    core.super_digest = super_digest;
    core.enforce_quota = enforce_quota;
    core.committed_log_size = commit_log_count;
    core.read_only_mode = read_only;
    core.local_sessions = local_sessions;
    core.local_sessions_upgrading = local_upgrading;
    core.trust_empty_data_dirs = trust_empty;
    core.auth_providers = auth.providers;
    core.sasl_super_user = auth.sasl_super_user.clone();
    core.x509_super_user = auth.x509_super_user.clone();
    // As QuorumPeerConfig.configureSSLAuth: TLS on the client port registers the x509 provider.
    if tls.client_tls() {
        core.auth_providers.x509 = true;
    }
    core.reconfig_enabled = reconfig_enabled;
    core.standalone_enabled = standalone_enabled;
    if !standalone {
        // The dynamic file's version (its name's, as QuorumPeerConfig takes it): the first
        // configuration's as an established leader versioned it (an epoch's zxid,
        // `zoo.cfg.dynamic.100000000`), or a reconfig's zxid, which the core keeps in force
        // (and shows in /zookeeper/config) until its tree applies that reconfig or a newer
        // one: the log may hold it unapplied at start, or not at all on a leader that
        // activated it on its followers' ACKs.
        core.config_version = config_version;
        core.config_node = config_node_text(&servers, config_version).into_bytes();
    }

    Ok(NodeConfig {
        path: path.to_path_buf(),
        core,
        standalone,
        dynamic_file: dynamic_file.map(|(_, f)| f),
        config_version,
        data_dir,
        data_log_dir,
        client_port: port,
        client_address: addr,
        max_client_cnxns,
        max_cnxns,
        global_outstanding_limit: global_outstanding_limit.max(0) as usize,
        connection_throttle,
        request_throttle,
        servers,
        snap_retain_count: snap_retain,
        purge_interval_hours: purge_interval,
        whitelist: whitelist.unwrap_or_else(Whitelist::default_set),
        max_buffer,
        prealloc_size: prealloc,
        force_sync,
        snapshot_compression,
        admin,
        metrics,
        tls,
        audit_enable,
        auth,
        entries: entries
            .into_iter()
            .filter(|e| e.line < FLAG_LINE)
            .map(|e| {
                let v = if e.key.to_ascii_lowercase().contains("password") {
                    "****".to_string()
                } else {
                    e.value
                };
                (e.key, v)
            })
            .collect(),
        warnings,
    })
}

/// `QuorumVerifier.toString()` of a static config: one `server.N=host:quorum:election:role`
/// line per member (with `;clientHost:clientPort` when the line names a client port), then
/// `version=<hex>` (0 for a static config), with no final newline.
fn config_node_text(servers: &BTreeMap<ServerId, ServerSpec>, version: u64) -> String {
    let mut text = String::new();
    for s in servers.values() {
        text.push_str(&format!(
            "server.{}={}:{}:{}:{}",
            s.id,
            s.host,
            s.quorum_port,
            s.election_port,
            kind_name(s.kind)
        ));
        if let Some((addr, port)) = &s.client {
            text.push_str(&format!(";{}:{port}", addr.as_deref().unwrap_or("0.0.0.0")));
        }
        text.push('\n');
    }
    text.push_str(&format!("version={version:x}"));
    text
}

/// `user:base64(sha1(user:password))`, as `DigestAuthenticationProvider.generateDigest`
/// prints it. ZooKeeper takes anything and never matches a malformed one; here it is an error,
/// since an operator who set it expects a super user.
fn parse_super_digest(p: &Parser<'_>, e: &Entry, v: &str) -> Result<String, ConfigError> {
    let v = v.trim();
    // A SHA-1 hash (20 bytes) in standard base64: 27 characters and one `=` of padding.
    let hash_ok = |h: &str| {
        h.len() == 28
            && h.ends_with('=')
            && h[..27]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
    };
    match v.split_once(':') {
        Some((user, hash)) if !user.is_empty() && hash_ok(hash) => Ok(v.to_string()),
        _ => Err(p.line_err(
            e.line,
            format!(
                "{}={v}: expected user:base64(sha1(user:password)), as ZooKeeper's \
                 DigestAuthenticationProvider.generateDigest prints it",
                e.key
            ),
        )),
    }
}

fn positive(p: &Parser<'_>, e: &Entry, v: &str) -> Result<u32, ConfigError> {
    let n: u32 = p.num(e.line, &e.key, v)?;
    if n == 0 {
        return Err(p.line_err(e.line, format!("{} must be greater than 0", e.key)));
    }
    Ok(n)
}

pub fn kind_name(t: LearnerType) -> &'static str {
    match t {
        LearnerType::Participant => "participant",
        LearnerType::Observer => "observer",
    }
}

/// `dataDir/myid`: `Ok(None)` when absent, `Err` when present but not a number.
pub fn read_myid(data_dir: &Path) -> Result<Option<(ServerId, PathBuf)>, String> {
    let path = data_dir.join("myid");
    match std::fs::read_to_string(&path) {
        Ok(text) => match text.trim().parse::<ServerId>() {
            Ok(id) => Ok(Some((id, path))),
            Err(_) => Err(format!("'{}' is not a server id", text.trim())),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

impl fmt::Display for Whitelist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Whitelist::All => write!(f, "*"),
            Whitelist::Only(s) => {
                let v: Vec<&str> = s.iter().map(String::as_str).collect();
                write!(f, "{}", v.join(", "))
            }
        }
    }
}
