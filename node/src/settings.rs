//! What this build does with each ZooKeeper setting it does not implement, whether it came
//! from `zoo.cfg` or from a `-D` flag.
//!
//! The rule (node/README.md has the table): a setting that would change security or
//! membership and is not implemented refuses to start, so that an operator who moves a
//! secured configuration never gets a plaintext or open server; a value that disables such a
//! feature is what this build does anyway and passes silently; everything else that is not
//! implemented is reported on the terminal at `ensemble start` and `run`.

/// What a setting the parser does not read itself comes to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The value is what this build does anyway: nothing to say.
    Matches,
    /// Not implemented and security or membership depends on it: refuse to start, saying why.
    Refuse(String),
    /// Not implemented; report it, saying why.
    Ignored(String),
}

const TLS: &str = "this TLS setting is not implemented in this build; refusing to start \
                   rather than run TLS other than configured";

fn truthy(v: &str) -> bool {
    matches!(v.trim().to_ascii_lowercase().as_str(), "true" | "yes")
}

/// Disabled unless the value says otherwise: "true" enables (Java's `Boolean.parseBoolean`),
/// so do "yes" (ZooKeeper's yes/no keys); anything else is false.
fn enabled_refuses(v: &str, why: &str) -> Verdict {
    if truthy(v) {
        Verdict::Refuse(why.to_string())
    } else {
        Verdict::Matches
    }
}

fn enabled_ignored(v: &str, why: &str) -> Verdict {
    if truthy(v) {
        Verdict::Ignored(why.to_string())
    } else {
        Verdict::Matches
    }
}

/// A zoo.cfg key the parser does not read (or the same key given as `-Dzookeeper.<key>`).
/// `None`: not a ZooKeeper setting at all.
pub fn classify_key(key: &str, value: &str) -> Option<Verdict> {
    let v = value.trim();
    let verdict = match key {
        // --- TLS (the keys it implements are read by crate::tls::settings) ---
        k if k.starts_with("ssl.") => Verdict::Refuse(TLS.into()),
        "client.secure" => Verdict::Ignored(
            "a client setting (zookeeper.client.secure); a server speaks TLS on secureClientPort"
                .into(),
        ),
        "serverCnxnFactory" => Verdict::Ignored(
            "this build has its own network layer, TLS included (ZooKeeper needs Netty for it)"
                .into(),
        ),
        // --- authentication and authorisation ---
        // quorum.auth.* are read by `sasl::settings` (quorum SASL)
        k if k.starts_with("quorum.auth.") => {
            Verdict::Ignored("not a quorum SASL setting of ZooKeeper 3.8".into())
        }
        // authProvider.N, superUser, kerberos.*, enforce.auth.*, sessionRequireClientSASLAuth
        // and allowSaslFailedClients are read by `sasl::settings` before this.
        "skipACL" => enabled_refuses(
            v,
            "skipping ACL checks is not implemented in this build; refusing to start rather \
             than enforce ACLs the deployment expects skipped",
        ),
        "DigestAuthenticationProvider.digestAlg" => {
            let alg = v.to_ascii_uppercase().replace('-', "");
            if alg == "SHA1" || alg.is_empty() {
                Verdict::Matches
            } else {
                Verdict::Refuse(format!(
                    "digest ids are SHA-1 in this build, not {v}; refusing to start rather than \
                     fail every digest ACL"
                ))
            }
        }
        "kerberos.canonicalizeHostNames" => Verdict::Ignored(
            "a client setting: this server takes the principal its Kerberos clients name".into(),
        ),
        // --- membership ---
        // Read by the parser itself (crate::config, crate::dynamic_config); listed here so
        // that a -D flag of them is told apart from a misspelt key.
        "dynamicConfigFile" | "reconfigEnabled" | "standaloneEnabled" => Verdict::Matches,
        "electionAlg" => {
            if v == "3" {
                Verdict::Matches
            } else {
                Verdict::Refuse(format!(
                    "electionAlg={v}: only 3 (fast leader election) exists, as in ZooKeeper 3.8"
                ))
            }
        }
        "observerMasterPort" => Verdict::Ignored(
            "observers follow the leader; learner masters are not implemented".into(),
        ),
        "multiAddress.enabled" => enabled_ignored(
            v,
            "multiple addresses per server are not implemented (a server line with | is refused)",
        ),
        k if k.starts_with("multiAddress.") => {
            Verdict::Ignored("multiple addresses per server are not implemented".into())
        }
        "quorumListenOnAllIPs" => enabled_ignored(
            v,
            "the quorum and election ports listen on the server line's address (all addresses \
             only when that address is not local)",
        ),
        // --- features that are neither ---
        "readonlymode.enabled" => Verdict::Ignored(
            "ZooKeeper reads read-only mode only from -Dreadonlymode.enabled, not from zoo.cfg"
                .into(),
        ),
        "syncEnabled" => {
            if truthy(v) {
                Verdict::Matches
            } else {
                Verdict::Ignored("observers always log txns to disk in this build".into())
            }
        }
        "leaderServes" => {
            if truthy(v) {
                Verdict::Matches
            } else {
                Verdict::Ignored("the leader always serves clients in this build".into())
            }
        }
        k if k.starts_with("admin.") => Verdict::Ignored(
            "not an AdminServer setting this build has (it has admin.enableServer, \
             serverAddress, serverPort, commandURL, idleTimeout)"
                .into(),
        ),
        k if k.starts_with("metricsProvider.") => Verdict::Ignored(
            "not a setting of the Prometheus endpoint this build has (it has className, \
             httpHost, httpPort)"
                .into(),
        ),
        k if k.starts_with("jvm.pause.") => {
            Verdict::Ignored("there is no JVM to watch for pauses".into())
        }
        "cnxTimeout"
        | "connectToLearnerMasterLimit"
        | "clientPortListenBacklog"
        | "electionPortBindRetry"
        | "fsync.warningthresholdms"
        | "quorum.cnxn.threads.size"
        | "snapshot.trust.empty"
        | "snapSizeLimitInKb"
        | "txnLogSizeLimitInKb"
        | "digest.enabled"
        | "maxBatchSize"
        | "closeSessionTxn.enabled"
        | "emulate353TTLNodes"
        | "watchManagerName"
        | "learner.asyncSending"
        | "learner.closeSocketAsync"
        | "leader.closeSocketAsync"
        | "flushDelay"
        | "maxWriteQueuePollTime"
        | "requestThrottleLimit"
        | "requestThrottleStallTime"
        | "requestThrottleDropStale"
        | "snapshotSizeFactor"
        | "nio.numSelectorThreads"
        | "nio.numWorkerThreads"
        | "nio.sessionlessCnxnTimeout"
        | "netty.server.outstandingHandshake.limit"
        | "messageTracker.BufferSize"
        | "messageTracker.Enabled" => Verdict::Ignored("not implemented in this build".into()),
        _ => return None,
    };
    Some(verdict)
}

/// Keys the zoo.cfg parser reads itself (config.rs), for "did you mean"; the throttles' and
/// the authentication settings' keys are their own tables'.
pub const IMPLEMENTED_KEYS: &[&str] = &[
    "tickTime",
    "initLimit",
    "syncLimit",
    "dataDir",
    "dataLogDir",
    "clientPort",
    "clientPortAddress",
    "maxClientCnxns",
    "minSessionTimeout",
    "maxSessionTimeout",
    "peerType",
    "autopurge.snapRetainCount",
    "autopurge.purgeInterval",
    "snapCount",
    "syncPartSize",
    "4lw.commands.whitelist",
    "jute.maxbuffer",
    "preAllocSize",
    "forceSync",
    "extendedTypesEnabled",
    "DigestAuthenticationProvider.superDigest",
    "enforceQuota",
    "audit.enable",
    "maxCnxns",
    "globalOutstandingLimit",
    "snapshot.compression.method",
    "ensemble.trustEmptyDataDirs",
];

/// Keys [`classify_key`] knows by exact name, for "did you mean".
const KNOWN_KEYS: &[&str] = &[
    "secureClientPort",
    "secureClientPortAddress",
    "sslQuorum",
    "portUnification",
    "serverCnxnFactory",
    "quorum.auth.enableSasl",
    "quorum.auth.serverRequireSasl",
    "quorum.auth.learnerRequireSasl",
    "skipACL",
    "dynamicConfigFile",
    "reconfigEnabled",
    "standaloneEnabled",
    "electionAlg",
    "observerMasterPort",
    "quorumListenOnAllIPs",
    "localSessionsEnabled",
    "localSessionsUpgradingEnabled",
    "syncEnabled",
    "leaderServes",
    "admin.enableServer",
    "admin.serverPort",
    "admin.serverAddress",
    "cnxTimeout",
    "fsync.warningthresholdms",
    "clientPortListenBacklog",
];

/// System properties (`-Dname=value`) ZooKeeper reads under names of their own, not as a
/// zoo.cfg key with `zookeeper.` in front. (`readonlymode.enabled` is implemented: the
/// config parser reads it.) The value does not matter to any of these today.
pub fn classify_property(name: &str, _value: &str) -> Option<Verdict> {
    let verdict = match name {
        n if n.starts_with("zookeeper.sasl.") || n.starts_with("zookeeper.kerberos.") => {
            Verdict::Ignored("not implemented in this build's SASL".into())
        }
        n if n.starts_with("zookeeper.log.")
            || n.starts_with("zookeeper.tracelog.")
            || n == "zookeeper.root.logger"
            || n.starts_with("log4j")
            || n.starts_with("logback")
            || n.starts_with("com.sun.management.")
            || n.starts_with("java.")
            || n.starts_with("jdk.")
            || n.starts_with("sun.") =>
        {
            Verdict::Ignored(
                "a JVM or logging setting with no meaning here (RUST_LOG sets the log level)"
                    .into(),
            )
        }
        _ => return None,
    };
    Some(verdict)
}

/// zoo.cfg keys QuorumPeerConfig reads itself: ZooKeeper ignores `-Dzookeeper.<key>` for them.
pub fn is_config_file_only(key: &str) -> bool {
    const KEYS: &[&str] = &[
        "tickTime",
        "initLimit",
        "syncLimit",
        "dataDir",
        "dataLogDir",
        "clientPort",
        "clientPortAddress",
        "maxClientCnxns",
        "minSessionTimeout",
        "maxSessionTimeout",
        "peerType",
        "autopurge.snapRetainCount",
        "autopurge.purgeInterval",
        "localSessionsEnabled",
        "localSessionsUpgradingEnabled",
        "dynamicConfigFile",
        "reconfigEnabled",
        "standaloneEnabled",
    ];
    KEYS.contains(&key)
        || crate::tls::settings::FILE_ONLY_KEYS.contains(&key)
        || key.starts_with("server.")
}

/// The known name nearest to `key` when it is close enough to be a typo: the same name in
/// another case, or an edit distance of 1 (2 for names of 8 characters or more).
pub fn did_you_mean<'a>(key: &str, extra: &[&'a str]) -> Option<&'a str>
where
    'static: 'a,
{
    let lower = key.to_ascii_lowercase();
    let limit = if key.len() >= 8 { 2 } else { 1 };
    IMPLEMENTED_KEYS
        .iter()
        .chain(KNOWN_KEYS)
        .chain(crate::limits::ThrottleSettings::KEYS)
        .chain(crate::limits::RequestThrottleSettings::KEYS)
        .chain(crate::sasl::settings::PROPERTY_KEYS)
        .copied()
        .chain(extra.iter().copied())
        .filter(|k| *k != key)
        .map(|k| (edit_distance(&lower, &k.to_ascii_lowercase()), k))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, k)| (*d, *k))
        .map(|(_, k)| k)
}

/// Levenshtein distance with adjacent transpositions counted as one edit.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_misses() {
        assert_eq!(did_you_mean("tickTme", &[]), Some("tickTime"));
        assert_eq!(did_you_mean("ticktime", &[]), Some("tickTime"));
        assert_eq!(did_you_mean("intiLimit", &[]), Some("initLimit"));
        assert_eq!(
            did_you_mean("secureClientPrt", &[]),
            Some("secureClientPort")
        );
        assert_eq!(did_you_mean("frobnicate", &[]), None);
        // the throttles' and the authentication settings' own tables are searched too
        assert_eq!(
            did_you_mean("connection_throttle_token", &[]),
            Some("connection_throttle_tokens")
        );
        assert_eq!(
            did_you_mean("request_throttle_stall_tim", &[]),
            Some("request_throttle_stall_time")
        );
        assert_eq!(did_you_mean("superuser", &[]), Some("superUser"));
        assert_eq!(did_you_mean("tickTime", &[]), None);
    }

    #[test]
    fn quorum_settings_this_build_does_not_use_are_reported() {
        let key = "quorum.cnxn.threads.size";
        assert!(
            matches!(classify_key(key, "x"), Some(Verdict::Ignored(_))),
            "{key}"
        );
    }

    #[test]
    fn disabling_values_pass_and_enabling_ones_refuse() {
        let key = "skipACL";
        assert_eq!(classify_key(key, "false"), Some(Verdict::Matches), "{key}");
        assert!(
            matches!(classify_key(key, "true"), Some(Verdict::Refuse(_))),
            "{key}"
        );
        // read by the parser itself: a -D flag of them is not a misspelt key
        assert_eq!(
            classify_key("reconfigEnabled", "true"),
            Some(Verdict::Matches)
        );
        assert_eq!(classify_key("skipACL", "no"), Some(Verdict::Matches));
        assert!(matches!(
            classify_key("ssl.sslProvider", "OPENSSL"),
            Some(Verdict::Refuse(_))
        ));
        assert_eq!(classify_key("frobnicate", "1"), None);
    }
}
