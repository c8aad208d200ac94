//! The dynamic configuration file (`dynamicConfigFile`, ZooKeeper 3.5+): read at start, and
//! written as ZooKeeper's QuorumPeerConfig writes it when a reconfig is activated.
//!
//! What ZooKeeper 3.8 does, and this module with it:
//! * the file holds `server.N=` lines and optionally `version=<hex>`; without that line the
//!   version is the hex suffix of the file's name (`zoo.cfg.dynamic.100000003`), else 0. Any
//!   other key is an error (`parseDynamicConfig`), `group.`/`weight.` are hierarchical quorums,
//!   which this build does not have;
//! * with `dynamicConfigFile` set, `server.N` lines in the static file are an error;
//! * a server that starts from a static file with `server.N` lines and `reconfigEnabled`
//!   copies that file to `<file>.bak` first (`backupOldConfig`);
//! * when a configuration is activated, it is written to `<static file>.dynamic.<hex version>`
//!   (sorted `server.N=` lines, no version line, no final newline: `writeDynamicConfig`), and
//!   the static file is rewritten without its `server.`, `group`, `weight`, `dynamicConfigFile`
//!   and `peerType` lines (and without `clientPort`/`clientPortAddress` when this server's
//!   line names its client address), ending with `dynamicConfigFile=<canonical path>`
//!   (`editStaticConfig`). Both writes are atomic (a temporary file renamed over);
//! * a reconfig logged and not yet committed is written to `<static file>.dynamic.next`
//!   (with its `version=` line), removed once the configuration in force is the last one
//!   seen. ZooKeeper reads it back at start as its last seen configuration; here the log
//!   brings the pending reconfig back, so the file is written for operators and tools only.

use crate::config::{ConfigError, Parser, ServerSpec, parse_server_line, split_properties};
use ensemble_core::ServerId;
use ensemble_core::membership::Membership;
use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// What a dynamic file says.
pub struct DynamicConfig {
    pub servers: BTreeMap<ServerId, ServerSpec>,
    pub version: u64,
}

/// `zoo.cfg.dynamic.1001` → 0x1001 (`getVersionFromFilename`); `None` without a hex suffix.
pub fn version_from_filename(path: &Path) -> Option<u64> {
    let name = path.file_name()?.to_str()?;
    let (_, hex) = name.rsplit_once('.')?;
    u64::from_str_radix(hex, 16).ok()
}

/// Read a dynamic file; every problem names the file and its line.
pub fn read(path: &Path) -> Result<DynamicConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let (servers, version) = parse_lines(path, &text)?;
    let version = version.or_else(|| version_from_filename(path)).unwrap_or(0);
    Ok(DynamicConfig { servers, version })
}

/// A dynamic configuration's text (the data of `/zookeeper/config` as a ZooKeeper leader
/// commits it: `server.N=` lines and `version=<hex>`), `origin` naming it in errors; without a
/// version line the version is 0.
pub fn parse_text(origin: &Path, text: &str) -> Result<DynamicConfig, ConfigError> {
    let (servers, version) = parse_lines(origin, text)?;
    Ok(DynamicConfig {
        servers,
        version: version.unwrap_or(0),
    })
}

type Servers = BTreeMap<ServerId, ServerSpec>;

fn parse_lines(path: &Path, text: &str) -> Result<(Servers, Option<u64>), ConfigError> {
    let p = Parser {
        path,
        flag_origins: Vec::new(),
    };
    let mut servers = BTreeMap::new();
    let mut version = None;
    for e in split_properties(text) {
        let key = e.key.trim();
        if key == "version" {
            let v = u64::from_str_radix(e.value.trim(), 16).map_err(|_| {
                p.line_err(e.line, format!("version={}: not a hex number", e.value))
            })?;
            version = Some(v);
        } else if let Some(n) = key.strip_prefix("server.") {
            let id: ServerId = n.parse().map_err(|_| {
                p.line_err(
                    e.line,
                    format!("{key}: the server id must be a non-negative integer"),
                )
            })?;
            let spec = parse_server_line(&p, &e, id)?;
            if let Some(prev) = servers.insert(id, spec) {
                return Err(p.line_err(
                    e.line,
                    format!("server.{id} is defined twice (also on line {})", prev.line),
                ));
            }
        } else if key.starts_with("group.") || key.starts_with("weight.") {
            return Err(p.line_err(
                e.line,
                format!("{key}: hierarchical quorums are not supported"),
            ));
        } else {
            return Err(p.line_err(
                e.line,
                format!(
                    "{key}: not a dynamic configuration parameter (only server.N and version; \
                     ZooKeeper: \"Unrecognised parameter\")"
                ),
            ));
        }
    }
    if servers.is_empty() {
        return Err(p.file_err("no server.N line (a dynamic config file lists the members)"));
    }
    Ok((servers, version))
}

/// Write `text` to `path` atomically: a temporary file beside it, synced, renamed over it.
fn write_atomic(path: &Path, text: &str) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && let Ok(d) = std::fs::File::open(dir)
    {
        let _ = d.sync_all();
    }
    Ok(())
}

/// `backupOldConfig`: `<static file>.bak`, a copy of the file as the operator wrote it.
pub fn backup_static(static_file: &Path) -> std::io::Result<PathBuf> {
    let mut bak = static_file.as_os_str().to_owned();
    bak.push(".bak");
    let bak = PathBuf::from(bak);
    let text = std::fs::read_to_string(static_file)?;
    write_atomic(&bak, &text)?;
    Ok(bak)
}

/// The dynamic file's text for `m` (`writeDynamicConfig` without the version line): the
/// `server.N=` lines sorted as strings, as ZooKeeper sorts them.
pub fn dynamic_text(m: &Membership) -> String {
    let mut lines: Vec<String> = m
        .servers
        .iter()
        .map(|(id, s)| format!("server.{id}={}", s.spec()))
        .collect();
    lines.sort();
    lines.join("\n")
}

/// The static file's text once the membership moved to `dynamic_file` (`editStaticConfig`).
pub fn edited_static_text(static_text: &str, dynamic_file: &Path, erase_client: bool) -> String {
    let mut out = String::new();
    for e in split_properties(static_text) {
        let k = e.key.trim();
        let dropped = k.starts_with("server.")
            || k.starts_with("group")
            || k.starts_with("weight")
            || k.starts_with("dynamicConfigFile")
            || k.starts_with("peerType")
            || (erase_client && k.starts_with("clientPort"));
        if !dropped {
            out.push_str(&format!("{k}={}\n", e.value.trim()));
        }
    }
    out.push_str(&format!("dynamicConfigFile={}\n", dynamic_file.display()));
    out
}

/// `<static file>.dynamic.next` (ZooKeeper's `getNextDynamicConfigFilename`).
pub fn next_path(static_file: &Path) -> PathBuf {
    let mut name = static_file.as_os_str().to_owned();
    name.push(".dynamic.next");
    PathBuf::from(name)
}

/// A reconfig was logged (proposed, not yet committed): ZooKeeper's
/// setLastSeenQuorumVerifier(qv, writeToDisk) writes it to `<static file>.dynamic.next`,
/// its `server.N=` lines and its `version=` line sorted together (`writeDynamicConfig` with
/// needKeepVersion).
pub fn persist_next(static_file: &Path, m: &Membership) -> std::io::Result<PathBuf> {
    let next = next_path(static_file);
    let mut text = dynamic_text(m);
    text.push_str(&format!("\nversion={:x}", m.version));
    write_atomic(&next, &text)?;
    Ok(next)
}

/// The configuration last seen is in force: `.dynamic.next` goes (setQuorumVerifier's
/// deleteFile of the next file). Absent already is fine.
pub fn remove_next(static_file: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(next_path(static_file)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// A configuration was activated: write `<static file>.dynamic.<hex version>` and point the
/// static file at it. Returns the dynamic file written.
pub fn persist(static_file: &Path, m: &Membership, me: ServerId) -> std::io::Result<PathBuf> {
    let mut name = static_file.as_os_str().to_owned();
    name.push(format!(".dynamic.{:x}", m.version));
    let dynamic = PathBuf::from(name);
    write_atomic(&dynamic, &dynamic_text(m))?;
    let canonical = std::fs::canonicalize(&dynamic)?;
    // needEraseClientInfoFromStaticConfig: this server's line carries its client address.
    let erase = m.servers.get(&me).is_some_and(|s| s.client.is_some());
    let text = std::fs::read_to_string(static_file)?;
    write_atomic(static_file, &edited_static_text(&text, &canonical, erase))?;
    Ok(dynamic)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_comes_from_the_name_when_the_file_has_none() {
        assert_eq!(
            version_from_filename(Path::new("/c/zoo.cfg.dynamic.100000003")),
            Some(0x1_0000_0003)
        );
        assert_eq!(version_from_filename(Path::new("zoo.cfg.dynamic")), None);
    }

    #[test]
    fn written_as_zookeeper_writes_it() {
        let m = Membership::parse(
            "server.10=h:1:2:participant;0.0.0.0:3\nserver.2=h:4:5:observer;0.0.0.0:6\nversion=1f",
        )
        .unwrap();
        // sorted as strings: server.10 before server.2
        assert_eq!(
            dynamic_text(&m),
            "server.10=h:1:2:participant;0.0.0.0:3\nserver.2=h:4:5:observer;0.0.0.0:6"
        );
        let edited = edited_static_text(
            "# comment\ntickTime=2000\nclientPort=2181\nserver.1=h:1:2\npeerType=participant\n\
             dynamicConfigFile=/old\ndataDir=/d\n",
            Path::new("/c/zoo.cfg.dynamic.1f"),
            true,
        );
        assert_eq!(
            edited,
            "tickTime=2000\ndataDir=/d\ndynamicConfigFile=/c/zoo.cfg.dynamic.1f\n"
        );
        let kept = edited_static_text("clientPort=2181\n", Path::new("/x"), false);
        assert_eq!(kept, "clientPort=2181\ndynamicConfigFile=/x\n");
    }

    #[test]
    fn the_next_file_keeps_the_version_and_goes_when_nothing_is_pending() {
        let dir = std::env::temp_dir().join(format!("ens-dyn-next-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let stat = dir.join("zoo.cfg");
        let m = Membership::parse(
            "server.1=h:1:2:participant;0.0.0.0:3\nserver.2=h:4:5:participant;0.0.0.0:6\n\
             version=100000007",
        )
        .unwrap();
        let next = persist_next(&stat, &m).unwrap();
        assert_eq!(next, dir.join("zoo.cfg.dynamic.next"));
        // writeDynamicConfig with needKeepVersion: the version line sorted last
        assert_eq!(
            std::fs::read_to_string(&next).unwrap(),
            "server.1=h:1:2:participant;0.0.0.0:3\nserver.2=h:4:5:participant;0.0.0.0:6\n\
             version=100000007"
        );
        // and read back as ZooKeeper reads a dynamic file, version included
        assert_eq!(read(&next).unwrap().version, 0x1_0000_0007);
        remove_next(&stat).unwrap();
        assert!(!next.exists());
        remove_next(&stat).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
