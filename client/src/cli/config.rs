//! The client's settings as zkCli.sh takes them (`ZKClientConfig`): Java system properties from
//! `-D` flags in CLIENT_JVMFLAGS and JVMFLAGS (the script puts both on java's command line),
//! then the `-client-configuration` properties file, whose entries win (`ZKConfig`'s
//! `addConfiguration` after its system-property defaults).
//!
//! What `ensemble cli` does with them: `zookeeper.client.secure` and the `zookeeper.ssl.*`
//! store settings make it speak TLS; the socket class is accepted (one network stack serves
//! both); every other `zookeeper.*` setting, and a JAAS file (`ensemble cli` has no SASL), is
//! reported on stderr as not used, never silently dropped.

use crate::tls::{StoreSpec, TlsOptions};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The settings, by key, with where each came from (for messages).
#[derive(Debug, Default)]
pub(crate) struct ClientSettings {
    values: BTreeMap<String, (String, String)>,
}

/// Keys this CLI acts on (the rest of `zookeeper.*` is reported).
const USED: &[&str] = &[
    "zookeeper.client.secure",
    "zookeeper.clientCnxnSocket",
    "zookeeper.ssl.keyStore.location",
    "zookeeper.ssl.keyStore.password",
    "zookeeper.ssl.keyStore.type",
    "zookeeper.ssl.trustStore.location",
    "zookeeper.ssl.trustStore.password",
    "zookeeper.ssl.trustStore.type",
    "zookeeper.ssl.hostnameVerification",
];

/// The socket classes ZooKeeper's client has; either is this CLI's one TCP/TLS stack.
const SOCKETS: &[&str] = &[
    "org.apache.zookeeper.ClientCnxnSocketNIO",
    "org.apache.zookeeper.ClientCnxnSocketNetty",
];

impl ClientSettings {
    /// `-Dkey=value` words of the JVM flags (`-Dkey` alone is `key=""`, as java takes it).
    pub(crate) fn add_jvm_flags(&mut self, flags: &str, from: &str) {
        for word in flags.split_whitespace() {
            let Some(prop) = word.strip_prefix("-D") else {
                continue;
            };
            let (k, v) = prop.split_once('=').unwrap_or((prop, ""));
            self.values
                .insert(k.to_string(), (v.to_string(), format!("-D in {from}")));
        }
    }

    /// A Java properties file (`key=value`, `key: value` or `key value`; `#`/`!` comments;
    /// a trailing `\` continues the line).
    pub(crate) fn add_file(&mut self, path: &Path) -> Result<(), String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("-client-configuration {}: {e}", path.display()))?;
        let mut logical = String::new();
        for raw in text.lines() {
            let line = raw.trim_start();
            if logical.is_empty() && (line.is_empty() || line.starts_with(['#', '!'])) {
                continue;
            }
            if let Some(head) = line.strip_suffix('\\') {
                logical.push_str(head);
                continue;
            }
            logical.push_str(line);
            let entry = std::mem::take(&mut logical);
            let cut = entry.find(['=', ':', ' ', '\t']).unwrap_or(entry.len());
            let key = entry[..cut].trim();
            let rest = entry[cut..].trim_start();
            let value = rest
                .strip_prefix(['=', ':'])
                .map(str::trim_start)
                .unwrap_or(rest);
            self.values.insert(
                key.to_string(),
                (
                    value.trim_end().to_string(),
                    format!("-client-configuration {}", path.display()),
                ),
            );
        }
        Ok(())
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(|(v, _)| v.as_str())
    }

    fn flag(&self, key: &str, default: bool) -> bool {
        match self.get(key).map(str::trim) {
            None => default,
            // Boolean.parseBoolean: "true" in any case is true, anything else false
            Some(v) => v.eq_ignore_ascii_case("true"),
        }
    }

    /// Lines for stderr: settings this CLI does not use.
    pub(crate) fn unused(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (k, (v, from)) in &self.values {
            if k == "java.security.auth.login.config" {
                out.push(format!(
                    "ensemble cli: {k} ({from}): not used: ensemble cli has no SASL; \
                     use zkCli.sh for a SASL session"
                ));
            } else if k == "zookeeper.clientCnxnSocket" && !SOCKETS.contains(&v.as_str()) {
                out.push(format!(
                    "ensemble cli: {k}={v} ({from}): unknown socket class, not used"
                ));
            } else if k.starts_with("zookeeper.") && !USED.contains(&k.as_str()) {
                out.push(format!(
                    "ensemble cli: {k} ({from}): not used by ensemble cli"
                ));
            }
        }
        out
    }

    /// TLS when `zookeeper.client.secure=true`: the trust store (required: there is no JVM
    /// default here) and the key store if set.
    pub(crate) fn tls(&self) -> Result<Option<TlsOptions>, String> {
        if !self.flag("zookeeper.client.secure", false) {
            return Ok(None);
        }
        let Some(trust) = self.get("zookeeper.ssl.trustStore.location") else {
            return Err(
                "zookeeper.client.secure=true needs zookeeper.ssl.trustStore.location \
                 (ensemble cli has no default trust store)"
                    .into(),
            );
        };
        let mut t = TlsOptions::new(PathBuf::from(trust));
        t.trust_store = Some(StoreSpec {
            kind: self.get("zookeeper.ssl.trustStore.type").map(String::from),
            password: self
                .get("zookeeper.ssl.trustStore.password")
                .unwrap_or("")
                .to_string(),
        });
        if let Some(key) = self.get("zookeeper.ssl.keyStore.location") {
            t.key_store = Some((
                PathBuf::from(key),
                StoreSpec {
                    kind: self.get("zookeeper.ssl.keyStore.type").map(String::from),
                    password: self
                        .get("zookeeper.ssl.keyStore.password")
                        .unwrap_or("")
                        .to_string(),
                },
            ));
        }
        t.verify_hostname = self.flag("zookeeper.ssl.hostnameVerification", true);
        Ok(Some(t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> tempfile_path::TempFile {
        tempfile_path::TempFile::new(text)
    }

    /// A file removed when dropped (no tempfile crate in this one).
    mod tempfile_path {
        pub struct TempFile(pub std::path::PathBuf);
        impl TempFile {
            pub fn new(text: &str) -> TempFile {
                use std::sync::atomic::{AtomicUsize, Ordering};
                static N: AtomicUsize = AtomicUsize::new(0);
                let p = std::env::temp_dir().join(format!(
                    "ensemble-cli-config-{}-{}.properties",
                    std::process::id(),
                    N.fetch_add(1, Ordering::Relaxed)
                ));
                std::fs::write(&p, text).expect("temp file");
                TempFile(p)
            }
        }
        impl Drop for TempFile {
            fn drop(&mut self) {
                let _ = std::fs::remove_file(&self.0);
            }
        }
    }

    #[test]
    fn the_file_wins_over_jvm_flags_and_secure_means_tls() {
        let mut s = ClientSettings::default();
        s.add_jvm_flags(
            "-Xmx256m -Dzookeeper.client.secure=false -Dzookeeper.ssl.trustStore.location=/a.jks",
            "CLIENT_JVMFLAGS",
        );
        let f = file(
            "# zkCli's client config\n\
             zookeeper.client.secure = true\n\
             zookeeper.clientCnxnSocket: org.apache.zookeeper.ClientCnxnSocketNetty\n\
             zookeeper.ssl.trustStore.location=/t/truststore.jks\n\
             zookeeper.ssl.trustStore.password=apass\\\n  word\n\
             zookeeper.ssl.keyStore.location /t/keystore.p12\n\
             zookeeper.ssl.hostnameVerification=false\n",
        );
        s.add_file(&f.0).expect("readable");
        let t = s.tls().expect("valid").expect("secure");
        assert_eq!(t.ca_file, PathBuf::from("/t/truststore.jks"));
        assert_eq!(
            t.trust_store.as_ref().map(|x| x.password.as_str()),
            Some("apassword")
        );
        assert_eq!(
            t.key_store.as_ref().map(|(p, _)| p.clone()),
            Some(PathBuf::from("/t/keystore.p12"))
        );
        assert!(!t.verify_hostname);
        assert!(s.unused().is_empty(), "{:?}", s.unused());
    }

    #[test]
    fn not_secure_is_plaintext_and_unknown_settings_are_reported() {
        let mut s = ClientSettings::default();
        s.add_jvm_flags(
            "-Dzookeeper.request.timeout=5000 -Djava.security.auth.login.config=/j.conf \
             -Dlog4j.configuration=x",
            "CLIENT_JVMFLAGS",
        );
        assert!(s.tls().expect("valid").is_none());
        let unused = s.unused();
        assert_eq!(unused.len(), 2, "{unused:?}");
        assert!(
            unused
                .iter()
                .any(|l| l.contains("zookeeper.request.timeout"))
        );
        assert!(unused.iter().any(|l| l.contains("has no SASL")));
    }

    #[test]
    fn secure_without_a_trust_store_and_a_missing_file_are_errors() {
        let mut s = ClientSettings::default();
        s.add_jvm_flags("-Dzookeeper.client.secure=true", "JVMFLAGS");
        assert!(s.tls().unwrap_err().contains("trustStore.location"));
        let e = s
            .add_file(Path::new("/nonexistent/zk-client.properties"))
            .unwrap_err();
        assert!(e.contains("/nonexistent/zk-client.properties"), "{e}");
    }
}
