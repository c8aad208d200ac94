//! The binary's offline tools over a server's files: `dump-log`, `dump-snapshot`, `verify`,
//! `snapshot` (backup) and `restore`. Each returns the process's exit code: 0 done, 1 an
//! error or (verify, dump-log) corruption found.

use crate::config::NodeConfig;
use crate::daemon::PidLock;
use crate::storage::backup;
use crate::storage::dump::{self, DumpFormat, LogEnd};
use crate::storage::verify;
use anyhow::Context;
use ensemble_core::tree::TreeOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

/// `ensemble dump-log FILE`: one line (or JSON object) per txn; a torn tail is said on stderr
/// and is no failure, corruption (valid records after damage) exits 1 naming the offset.
pub fn dump_log(file: &Path, fmt: DumpFormat) -> i32 {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let r = dump::dump_log(file, fmt, &mut out);
    let _ = out.flush();
    match r {
        Ok((_, LogEnd::Clean)) => 0,
        Ok((_, LogEnd::TornTail { offset, reason })) => {
            eprintln!(
                "ensemble: {}: torn tail at offset {offset} ({reason}): the last write was cut \
                 by a crash; recovery drops it",
                file.display()
            );
            0
        }
        Ok((_, LogEnd::Corrupt { offset, reason })) => {
            eprintln!(
                "ensemble: {}: corrupt at offset {offset}: {reason}; valid records follow",
                file.display()
            );
            1
        }
        Err(e) => {
            eprintln!("ensemble: {e}");
            1
        }
    }
}

/// `ensemble dump-snapshot FILE`: one line (or JSON object) per znode, then the sessions.
pub fn dump_snapshot(file: &Path, fmt: DumpFormat) -> i32 {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let r = dump::dump_snapshot(file, fmt, &mut out);
    let _ = out.flush();
    match r {
        Ok(_) => 0,
        Err(e) => {
            eprintln!("ensemble: {e}");
            1
        }
    }
}

/// The `version-2` directories (snapshots, logs) a `verify DIR` means: `DIR/version-2` if
/// there is one (a dataDir), else DIR itself.
pub fn dirs_of(dir: &Path) -> PathBuf {
    let v2 = dir.join("version-2");
    if v2.is_dir() { v2 } else { dir.to_path_buf() }
}

/// `ensemble verify CONFIG|DIR`: every log record and snapshot checked; exit 1 on corruption,
/// each finding naming its file (and offset where the damage has one).
pub fn verify(snap_dir: &Path, log_dir: &Path) -> i32 {
    let report = match verify::verify(snap_dir, log_dir) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ensemble: {e}");
            return 1;
        }
    };
    for f in &report.findings {
        println!("{f}");
    }
    let last = report
        .last_logged
        .map(|z| z.to_string())
        .unwrap_or_else(|| "none".into());
    let verdict = if report.corrupt() { "CORRUPT" } else { "OK" };
    let dirs = if snap_dir == log_dir {
        snap_dir.display().to_string()
    } else {
        format!("{} and {}", snap_dir.display(), log_dir.display())
    };
    println!(
        "{verdict}: {dirs}: {} log files, {} txns (last {last}), {} snapshots (newest: {} znodes)",
        report.log_files, report.txns, report.snapshots, report.znodes
    );
    i32::from(report.corrupt())
}

/// `ensemble snapshot CONFIG --out FILE`: the state the server's files hold, as one snapshot
/// file (compressed as FILE's name ends). Safe beside a running server: nothing is changed.
pub fn snapshot(cfg: &NodeConfig, out: &Path) -> anyhow::Result<i32> {
    let opts = TreeOptions {
        extended_types: cfg.core.extended_types,
        auth_providers: cfg.core.auth_providers,
        plant: None,
    };
    let (zxid, znodes, notes) =
        backup::backup_from_files(&cfg.snap_dir(), &cfg.log_dir(), out, opts)?;
    for n in notes {
        eprintln!("ensemble: note: {n}");
    }
    println!(
        "snapshot at zxid {zxid} ({znodes} znodes) written to {}",
        out.display()
    );
    Ok(0)
}

/// Why an ensemble restore cannot go ahead with these configs, before anything is touched:
/// the restore replaces the whole ensemble's state, so every member's zoo.cfg must be given
/// (a member left out keeps its newer history: it would win the election and undo the
/// restore, or serve its old tree beside the restored ones), each once, of one membership.
pub fn restore_refusal(cfgs: &[NodeConfig]) -> Option<String> {
    let first = cfgs.first()?;
    let mut ids = std::collections::BTreeSet::new();
    let mut dirs = std::collections::BTreeSet::new();
    for c in cfgs {
        if c.servers.keys().ne(first.servers.keys()) {
            return Some(format!(
                "{} and {} list different servers: give the zoo.cfg of each member of one ensemble",
                first.path.display(),
                c.path.display()
            ));
        }
        if !ids.insert(c.core.my_id) {
            return Some(format!(
                "server {} is given twice ({})",
                c.core.my_id,
                c.path.display()
            ));
        }
        if !dirs.insert(c.data_dir.clone()) {
            return Some(format!(
                "{}: dataDir {} is another server's too",
                c.path.display(),
                c.data_dir.display()
            ));
        }
    }
    if first.standalone {
        return (cfgs.len() > 1).then(|| "a standalone server is restored alone".to_string());
    }
    let missing: Vec<String> = first
        .servers
        .keys()
        .filter(|id| !ids.contains(*id))
        .map(|id| format!("server.{id}"))
        .collect();
    (!missing.is_empty()).then(|| {
        format!(
            "a restore replaces the whole ensemble's state; give every member's zoo.cfg \
             (missing: {}): a member left out keeps its newer history, and would win the \
             election over the restored ones or serve its old tree beside them",
            missing.join(", ")
        )
    })
}

/// `ensemble restore CONFIG... FILE`: install a backup into every server of a stopped
/// ensemble (or a standalone server). Refused, with nothing touched, unless every member's
/// zoo.cfg is given, every one of them is stopped and the backup reads back whole; then each
/// server's `version-2` directories are moved aside and the backup installed, so all start
/// from the same tree.
pub fn restore(cfgs: &[NodeConfig], file: &Path) -> anyhow::Result<i32> {
    if let Some(why) = restore_refusal(cfgs) {
        eprintln!("ensemble: restore refused, nothing changed: {why}");
        return Ok(1);
    }
    // Held while restoring: a server starting meanwhile waits for nothing and would read a
    // half-installed directory. All of them before any is touched.
    let mut locks = Vec::new();
    for cfg in cfgs {
        match PidLock::acquire(&cfg.pid_file()) {
            Ok(l) => locks.push(l),
            Err(e) => {
                eprintln!(
                    "ensemble: restore refused, nothing changed: server {}: {e}; stop the server \
                     first (ensemble stop {})",
                    cfg.core.my_id,
                    cfg.path.display()
                );
                return Ok(1);
            }
        }
    }
    // The backup checked once before any server's files move.
    if let Err(e) = dump::load_snapshot(file) {
        eprintln!(
            "ensemble: restore refused, nothing changed: {}: {}",
            file.display(),
            crate::daemon::describe(&anyhow::Error::from(e))
        );
        return Ok(1);
    }
    for (i, cfg) in cfgs.iter().enumerate() {
        let r = match backup::restore(
            &cfg.snap_dir(),
            &cfg.log_dir(),
            file,
            cfg.snapshot_compression,
        ) {
            Ok(r) => r,
            Err(e) => {
                let done: Vec<String> =
                    cfgs[..i].iter().map(|c| c.core.my_id.to_string()).collect();
                eprintln!(
                    "ensemble: restoring server {} failed: {e}; servers restored so far: [{}]. \
                     Start none of them: fix the cause and run the same restore again",
                    cfg.core.my_id,
                    done.join(", ")
                );
                return Ok(1);
            }
        };
        println!(
            "server {}: restored zxid {} ({} znodes) from {} as {}",
            cfg.core.my_id,
            r.zxid,
            r.znodes,
            file.display(),
            r.snapshot.display()
        );
        for a in &r.moved_aside {
            println!(
                "server {}: the previous files are in {}",
                cfg.core.my_id,
                a.display()
            );
        }
    }
    drop(locks);
    Ok(0)
}

/// `ensemble import --zk-data-dir DIR [--zk-log-dir DIR] CONFIG`: Apache ZooKeeper's files
/// into the empty dataDir of a stopped server.
pub fn import(cfg: &NodeConfig, zk_data: &Path, zk_log: Option<&Path>) -> anyhow::Result<i32> {
    std::fs::create_dir_all(&cfg.data_dir)?;
    let _lock = match PidLock::acquire(&cfg.pid_file()) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("ensemble: {e}; import into a stopped server");
            return Ok(1);
        }
    };
    let r = match crate::zookeeper::migrate::import(cfg, zk_data, zk_log) {
        Ok(r) => r,
        Err(e) => {
            eprintln!(
                "ensemble: import failed, nothing written: {}",
                crate::daemon::describe(&e)
            );
            return Ok(1);
        }
    };
    for n in &r.restored.notes {
        eprintln!("ensemble: note: {n}");
    }
    let zk = &r.restored;
    println!(
        "imported ZooKeeper's {} and {} txns after it: zxid {} ({} znodes, {} sessions), {} \
         digests checked",
        zk.snapshot.display(),
        zk.txns_replayed,
        r.zxid,
        r.znodes,
        zk.tree.sessions.len(),
        zk.digests_checked
    );
    println!(
        "wrote {} (acceptedEpoch {}, currentEpoch {})",
        r.snapshot.display(),
        r.epochs.accepted_epoch,
        r.epochs.current_epoch
    );
    Ok(0)
}

/// `ensemble export CONFIG --zk-data-dir OUT`: the server's state as ZooKeeper's dataDir.
pub fn export(cfg: &NodeConfig, out: &Path) -> anyhow::Result<i32> {
    let r = match crate::zookeeper::migrate::export(cfg, out) {
        Ok(r) => r,
        Err(e) => {
            eprintln!(
                "ensemble: export failed, nothing written: {}",
                crate::daemon::describe(&e)
            );
            return Ok(1);
        }
    };
    for n in &r.notes {
        eprintln!("ensemble: note: {n}");
    }
    println!(
        "exported zxid {} ({} znodes) as {} (digest {:#x})",
        r.zxid,
        r.znodes,
        r.snapshot.display(),
        r.digest.digest
    );
    Ok(0)
}

/// `zk-observe`'s cut-over options.
#[derive(Clone, Copy, Debug)]
pub struct CutOver<'a> {
    /// `--cut-over`: install the replica once every ZooKeeper voter has stopped.
    pub enabled: bool,
    /// `--ensemble-config FILE`: where the next config goes.
    pub ensemble_config: Option<&'a Path>,
    /// `--zk-data-dir DIR`: the stopped ZooKeeper servers' files, whose newest log continues
    /// the replica (`zookeeper::log_tail`).
    pub zk_data_dirs: &'a [PathBuf],
}

/// `ensemble zk-observe CONFIG [--seconds N] [--dump FILE]`: follow a live ZooKeeper ensemble
/// as its observer (issue 17 item 3, steps b and c), reporting each sync and leader change.
pub fn zk_observe(
    cfg: &NodeConfig,
    seconds: u64,
    dump: Option<&Path>,
    cut: CutOver<'_>,
) -> anyhow::Result<i32> {
    use crate::zookeeper::observer;
    let set = match observer::Settings::from_config(cfg) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ensemble: {}: {e}", cfg.path.display());
            return Ok(1);
        }
    };
    if let Err(e) = crate::zookeeper::log_tail::check_dirs(cut.zk_data_dirs) {
        eprintln!("ensemble: --zk-data-dir: {e}");
        return Ok(1);
    }
    if let Some(out) = cut.ensemble_config.filter(|p| p.exists()) {
        eprintln!(
            "ensemble: {}: already there: the cut-over writes a new config (move it aside)",
            out.display()
        );
        return Ok(1);
    }
    zk_observe_through_core(cfg, set, seconds, dump, cut)
}

/// `zk-observe`: the node's own runtime serves the clients (its client port, sessions,
/// watches, ACL checks, 4lw and AdminServer, the data dir), its core in the foreign role
/// (`ensemble_core::foreign`) fed by the observer thread, which follows ZooKeeper's leader
/// (and writes `--dump` from its checked replica). The node stops when the observer's time is
/// up. With `cut_over`, once every ZooKeeper voter has stopped, the node stops too (its txn
/// log synced), its own files go aside and the observer's replica is installed as the dataDir,
/// from which `ensemble start` on the config written to `ensemble_config` continues.
fn zk_observe_through_core(
    cfg: &NodeConfig,
    set: crate::zookeeper::observer::Settings,
    seconds: u64,
    dump: Option<&Path>,
    cut: CutOver<'_>,
) -> anyhow::Result<i32> {
    use crate::zookeeper::{leader_link::ForeignLeaderLink, observer, to_core::CoreFeed};
    use std::sync::{Arc, Mutex};
    let cut_over = cut.enabled;
    let mut ncfg = cfg.clone();
    ncfg.core.foreign_leader = true;
    let listeners = match crate::runtime::bind(&ncfg) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("ensemble: {}: {e}", cfg.path.display());
            return Ok(1);
        }
    };
    let link = Arc::new(ForeignLeaderLink::default());
    let opts = ncfg.core.tree_options();
    let extended = cfg.core.extended_types;
    let dump = dump.map(Path::to_path_buf);
    // the report line and the observers of the configuration in force, once it synced; and
    // whether it ended because the ZooKeeper ensemble was stopped (a cut-over)
    type Ended = (
        String,
        Vec<crate::config::ServerSpec>,
        Option<(crate::zookeeper::tree::ZkTree, (i64, i64))>,
    );
    let synced_once = Arc::new(Mutex::new(None::<Ended>));
    let report = synced_once.clone();
    let feed_link = link.clone();
    let start = Box::new(
        move |input: tokio::sync::mpsc::Sender<crate::runtime::Input>| {
            let spawned = std::thread::Builder::new()
                .name("zk-observer".into())
                .spawn(move || {
                    let feed = CoreFeed::new(input.clone(), feed_link, opts);
                    let deadline =
                        std::time::Instant::now() + std::time::Duration::from_secs(seconds);
                    let mut written: Option<(i64, std::time::Instant)> = None;
                    let mut write_dump =
                        |tree: &crate::zookeeper::tree::ZkTree, _: &observer::Progress| {
                            let Some(path) = &dump else { return };
                            let now = std::time::Instant::now();
                            if let Some((zxid, at)) = written
                                && (zxid == tree.last_zxid
                                    || now.duration_since(at)
                                        < std::time::Duration::from_millis(200))
                            {
                                return;
                            }
                            written = Some((tree.last_zxid, now));
                            let tmp = path.with_extension("tmp");
                            let r = std::fs::write(&tmp, observer::dump(tree, extended))
                                .and_then(|_| std::fs::rename(&tmp, path));
                            if let Err(e) = r {
                                tracing::warn!("cannot write the dump {}: {e}", path.display());
                            }
                        };
                    let mut log = |line: &str| println!("zk-observe: {line}");
                    let (obs, set) = observer::run(
                        &set,
                        deadline,
                        cut_over,
                        Some(Box::new(feed)),
                        &mut write_dump,
                        &mut log,
                    );
                    let cut = cut_over && std::time::Instant::now() < deadline;
                    let p = &obs.progress;
                    report_progress(p);
                    let line = obs.tree.as_ref().map(|t| {
                    format!(
                        "zk-observe: zxid {:#x}, {} znodes; {} syncs, {} txns applied, {} digests \
                         checked, {} pings answered",
                        t.last_zxid,
                        t.nodes.len(),
                        p.syncs.len(),
                        p.txns_applied,
                        p.digests_checked,
                        p.pings_answered
                    )
                });
                    let epochs = obs.epochs();
                    let replica = obs.tree.filter(|_| cut).map(|t| (t, epochs));
                    let line = line.map(|l| (l, set.observers.clone(), replica));
                    *report.lock().unwrap_or_else(|p| p.into_inner()) = line;
                    let _ = input.blocking_send(crate::runtime::Input::Shutdown);
                });
            if let Err(e) = spawned {
                tracing::error!("cannot start the observer thread: {e}");
            }
        },
    );
    let host = cfg
        .client_address
        .clone()
        .unwrap_or_else(|| "0.0.0.0".into());
    let port = cfg.client_port;
    crate::runtime::run_with(
        ncfg,
        listeners,
        || {
            println!(
                "zk-observe: serving clients on {host}:{port} through the core (writes and \
                 sessions forwarded to the leader)"
            )
        },
        Some(crate::runtime::ForeignFeed { link, start }),
    )?;
    let ended = synced_once.lock().unwrap_or_else(|p| p.into_inner()).take();
    match ended {
        Some((line, observers, cut_replica)) => {
            println!("{line}");
            if let Some((mut t, (accepted, current))) = cut_replica {
                if !cut.zk_data_dirs.is_empty() {
                    // Before anything moves: a failure leaves this server as it was.
                    let base = t.last_zxid;
                    match crate::zookeeper::log_tail::extend(&mut t, cut.zk_data_dirs) {
                        Ok(x) => println!(
                            "zk-observe: ZooKeeper's logs: {} txns after the replica's zxid \
                             {base:#x} taken from {} (the newest log), each digest-checked; \
                             now at zxid {:#x}",
                            x.txns,
                            x.from.display(),
                            x.last_zxid
                        ),
                        Err(e) => {
                            eprintln!(
                                "ensemble: --zk-data-dir: {e}; nothing installed (the replica \
                                 at zxid {base:#x} is in the --dump file, if given; `ensemble \
                                 import --zk-data-dir` of the newest ZooKeeper server fills \
                                 a dataDir from ZooKeeper's own files)"
                            );
                            return Ok(1);
                        }
                    }
                }
                // The core's own files hold ZooKeeper's /zookeeper/config as its clients read
                // it, which a restart would take as the configuration in force (ZooKeeper's
                // servers): they are kept aside, and the replica goes in as an import does,
                // the membership the new config's.
                let mut kept = Vec::new();
                for d in [cfg.snap_dir(), cfg.log_dir()] {
                    if d.exists() && !kept.iter().any(|(from, _): &(PathBuf, PathBuf)| *from == d) {
                        let aside = d
                            .with_file_name(format!("version-2.zk-observe-{}", std::process::id()));
                        std::fs::rename(&d, &aside)
                            .with_context(|| format!("{} -> {}", d.display(), aside.display()))?;
                        kept.push((d, aside));
                    }
                }
                use crate::zookeeper::migrate::{Vouch, ZkEpochs, install};
                let epoch = |e: i64| u32::try_from(e).ok();
                let zk_epochs = ZkEpochs {
                    accepted: epoch(accepted),
                    current: epoch(current),
                };
                // No currentEpoch: the new ensemble's first election waits for every one of
                // its voters, so the newest replica is among them (migrate::Vouch::Nobody).
                let (zxid, znodes, snapshot, epochs) = install(cfg, &t, zk_epochs, Vouch::Nobody)?;
                println!(
                    "zk-observe: cut over at zxid {:#x}: {znodes} znodes and {} sessions \
                     written to {} (acceptedEpoch {}, no currentEpoch); the core's files kept \
                     as {}",
                    zxid.as_i64(),
                    t.sessions.len(),
                    snapshot.display(),
                    epochs.accepted_epoch,
                    kept.iter()
                        .map(|(_, a)| a.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                write_cut_over_config(cfg, &observers, cut.ensemble_config)?;
                say_cut_over_start(cfg, &observers);
            }
            Ok(0)
        }
        None => {
            eprintln!("ensemble: never synced with the ZooKeeper ensemble in {seconds} s");
            Ok(1)
        }
    }
}

/// Each sync and each configuration activated, for the operator.
fn report_progress(p: &crate::zookeeper::observer::Progress) {
    for (epoch, kind, zxid) in &p.syncs {
        println!("zk-observe: synced by {kind:?} in epoch {epoch} at zxid {zxid:#x}");
    }
    for (version, voters) in &p.configs {
        let voters: Vec<String> = voters.iter().map(|v| v.to_string()).collect();
        println!(
            "zk-observe: reconfig: configuration {version:#x} activated, voters {}",
            voters.join(",")
        );
    }
}

/// How the servers of the new ensemble start after a cut-over: none vouches for its replica
/// (no currentEpoch), so the first election waits for all of them and elects the newest
/// replica; `ensemble.trustEmptyDataDirs=true` gives that up, and is said.
fn say_cut_over_start(cfg: &NodeConfig, observers: &[crate::config::ServerSpec]) {
    if let Some(note) = cut_over_start_note(cfg, observers) {
        println!("zk-observe: {note}");
    }
}

/// [`say_cut_over_start`]'s line (none for a one-server ensemble).
pub fn cut_over_start_note(
    cfg: &NodeConfig,
    observers: &[crate::config::ServerSpec],
) -> Option<String> {
    if observers.len() < 2 {
        return None;
    }
    let ids: Vec<String> = observers.iter().map(|o| o.id.to_string()).collect();
    Some(if cfg.core.trust_empty_data_dirs {
        format!(
            "WARNING: ensemble.trustEmptyDataDirs=true ({} or its -D flags): the new ensemble \
             would form with any majority of servers {}, which may lack writes only the \
             newest replica acknowledged; remove the setting (config and -D flags) before \
             starting them (README, \"The cut-over runbook\", step 5)",
            cfg.path.display(),
            ids.join(",")
        )
    } else {
        format!(
            "the new ensemble forms once every one of servers {} is up (none has a \
             currentEpoch yet): its first election elects the newest replica, the others \
             sync from it",
            ids.join(",")
        )
    })
}

/// The cut-over's config for `ensemble start`, written to `out` (or what to do, without it).
fn write_cut_over_config(
    cfg: &NodeConfig,
    observers: &[crate::config::ServerSpec],
    out: Option<&Path>,
) -> anyhow::Result<()> {
    match out {
        Some(out) => {
            let text = std::fs::read_to_string(&cfg.path)
                .with_context(|| cfg.path.display().to_string())?;
            let text = cut_over_config(&text, observers);
            write_new_file(out, &text)?;
            let ids: Vec<String> = observers.iter().map(|o| o.id.to_string()).collect();
            println!(
                "zk-observe: {} written: servers {} as Ensemble's voters; start each of them: \
                 ensemble start {}",
                out.display(),
                ids.join(","),
                out.display()
            );
        }
        None => println!(
            "zk-observe: start this server as an Ensemble server with the ZooKeeper servers \
             removed from its config: ensemble start NEW_CONFIG"
        ),
    }
    Ok(())
}

/// The config an Ensemble server starts with after a cut-over: the observer's config (every
/// setting kept) without its `server.N` lines, `dynamicConfigFile` and `peerType`, then the
/// observers of the ZooKeeper configuration in force as the Ensemble ensemble's participants.
pub fn cut_over_config(observer_cfg: &str, observers: &[crate::config::ServerSpec]) -> String {
    let mut out = String::new();
    for line in observer_cfg.lines() {
        let key = line.split(['=', ':']).next().unwrap_or("").trim();
        if key.starts_with("server.") || key == "dynamicConfigFile" || key == "peerType" {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out.push_str(
        "# the Ensemble servers, observers of the ZooKeeper ensemble until the cut-over\n",
    );
    for o in observers {
        let client = match &o.client {
            Some((Some(addr), port)) => format!(";{addr}:{port}"),
            Some((None, port)) => format!(";{port}"),
            None => String::new(),
        };
        out.push_str(&format!(
            "server.{}={}:{}:{}:participant{client}\n",
            o.id, o.host, o.quorum_port, o.election_port
        ));
    }
    out
}

/// Write a file that must not be there yet (a config the operator may have edited is never
/// overwritten).
fn write_new_file(path: &Path, text: &str) -> anyhow::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .with_context(|| format!("{}: the cut-over config", path.display()))?;
    f.write_all(text.as_bytes())
        .and_then(|_| f.sync_all())
        .with_context(|| path.display().to_string())
}
