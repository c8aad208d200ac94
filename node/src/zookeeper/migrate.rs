//! `ensemble import` and `ensemble export`: the offline ways from Apache ZooKeeper's files to
//! an Ensemble server's and back.
//!
//! Import rebuilds ZooKeeper's database from its files ([`super::restore`]: newest snapshot,
//! then the logs, checked against ZooKeeper's digests), turns it into Ensemble's tree (every
//! StatPersisted field, ACL, null data, sessions with their timeouts), checks the two agree
//! node by node, and installs it as the only snapshot of an empty dataDir with the epochs:
//! written to a temporary directory first and renamed, so a failure leaves nothing.
//!
//! Export loads the server's state from its files (as `ensemble snapshot` does) and writes it
//! as ZooKeeper's `version-2/snapshot.<zxid>` (with the digest and both seals) and the epoch
//! files, from which ZooKeeper 3.8 starts at the same zxid.

use super::records::StatPersisted;
use super::snapshot::{ZkSnapshot, ZxidDigest};
use super::tree::{DIGEST_VERSION, ZNode, ZkTree};
use super::{Restored, restore, snapshot, version_dir};
use crate::config::NodeConfig;
use crate::storage::backup::load_state;
use crate::storage::codec::fsync_dir;
use crate::storage::epochs::{read_epochs, write_epochs};
use crate::storage::snapshot::write_snapshot_with;
use anyhow::{Context, bail};
use ensemble_core::tree::{DataTree, EphemeralType, PersistedNode, TreeOptions};
use ensemble_core::{Epochs, Zxid};
use std::io::Write;
use std::path::{Path, PathBuf};

fn tree_options(cfg: &NodeConfig) -> TreeOptions {
    TreeOptions {
        extended_types: cfg.core.extended_types,
        auth_providers: cfg.core.auth_providers,
        plant: None,
    }
}

/// A directory that is missing or holds nothing.
fn is_empty_dir(dir: &Path) -> anyhow::Result<bool> {
    match std::fs::read_dir(dir) {
        Ok(mut rd) => Ok(rd.next().is_none()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(e).with_context(|| dir.display().to_string()),
    }
}

fn persisted(path: &str, n: &ZNode) -> PersistedNode {
    let s = &n.stat;
    PersistedNode {
        path: path.to_string(),
        data: n.data.clone(),
        czxid: s.czxid,
        mzxid: s.mzxid,
        pzxid: s.pzxid,
        ctime: s.ctime,
        mtime: s.mtime,
        ephemeral_owner: s.ephemeral_owner,
        version: s.version,
        cversion: s.cversion,
        aversion: s.aversion,
        acl: n.acl.to_vec(),
    }
}

/// What an import made.
#[derive(Debug)]
pub struct Imported {
    pub restored: Restored,
    pub zxid: Zxid,
    pub znodes: usize,
    pub snapshot: PathBuf,
    pub epochs: Epochs,
}

/// Ensemble's tree for ZooKeeper's, checked to hold the same nodes.
pub fn to_ensemble(zk: &ZkTree, opts: TreeOptions) -> anyhow::Result<DataTree> {
    to_ensemble_with(zk, opts, false)
}

/// [`to_ensemble`], keeping ZooKeeper's /zookeeper/config as it is when `observed`: the tree
/// an observer inside the ZooKeeper ensemble serves (its clients read ZooKeeper's
/// configuration there, as from ZooKeeper's own observers).
pub fn to_ensemble_with(
    zk: &ZkTree,
    opts: TreeOptions,
    observed: bool,
) -> anyhow::Result<DataTree> {
    let mut nodes: Vec<PersistedNode> = zk.nodes.iter().map(|(p, n)| persisted(p, n)).collect();
    // ZooKeeper's /zookeeper/config names its own servers' quorum and election addresses; a
    // configuration in the tree is the one in force, so the imported ensemble would link to
    // the old servers' ports. Its membership is its own zoo.cfg: the node starts as it does in
    // a fresh tree (empty data, mzxid 0 = no reconfig committed).
    if let Some(n) = nodes
        .iter_mut()
        .find(|n| n.path == ensemble_core::path::CONFIG && !observed)
    {
        n.data = Some(Vec::new());
        n.mzxid = 0;
        n.version = 0;
        n.mtime = 0;
    }
    if !opts.extended_types
        && let Some(n) = nodes.iter().find(|n| {
            matches!(
                EphemeralType::of(n.ephemeral_owner, true),
                EphemeralType::Ttl(_)
            )
        })
    {
        bail!(
            "{} is a TTL node: set zookeeper.extendedTypesEnabled=true (as the ZooKeeper \
             servers had it) in the config first",
            n.path
        );
    }
    let last = Zxid(u64::try_from(zk.last_zxid).context("a negative last zxid")?);
    let tree = DataTree::from_persisted(last, &zk.sessions, &nodes, opts)
        .context("ZooKeeper's tree does not make a valid Ensemble tree")?;
    // Both ways agree node by node: nothing was lost or changed on the way.
    let back: Vec<PersistedNode> = tree.persisted_nodes().collect();
    if back != nodes {
        let diff = back
            .iter()
            .zip(&nodes)
            .find(|(a, b)| a != b)
            .map(|(a, _)| a.path.clone())
            .unwrap_or_else(|| format!("{} nodes, not {}", back.len(), nodes.len()));
        bail!("the imported tree differs from ZooKeeper's at {diff}");
    }
    if tree.sessions() != &zk.sessions {
        bail!("the imported sessions differ from ZooKeeper's");
    }
    Ok(tree)
}

/// `ensemble import`: ZooKeeper's files into the empty dataDir of the server `cfg` describes.
pub fn import(cfg: &NodeConfig, zk_data: &Path, zk_log: Option<&Path>) -> anyhow::Result<Imported> {
    let snap_dir = cfg.snap_dir();
    let log_dir = cfg.log_dir();
    for d in [&snap_dir, &log_dir] {
        if !is_empty_dir(d)? {
            bail!(
                "{} is not empty: import fills a new server's dataDir (move the directory \
                 aside, or point dataDir elsewhere)",
                d.display()
            );
        }
    }
    let zk_snap = version_dir(zk_data);
    let zk_logs = version_dir(zk_log.unwrap_or(zk_data));
    let restored = restore(&zk_snap, &zk_logs)?;
    let epochs = ZkEpochs {
        accepted: restored.accepted_epoch,
        current: restored.current_epoch,
    };
    let (zxid, znodes, snapshot, epochs) =
        install(cfg, &restored.tree, epochs, Vouch::ZooKeepersEpochs)?;
    Ok(Imported {
        restored,
        zxid,
        znodes,
        snapshot,
        epochs,
    })
}

/// ZooKeeper's acceptedEpoch and currentEpoch, where known (a standalone server has neither).
#[derive(Clone, Copy, Debug, Default)]
pub struct ZkEpochs {
    pub accepted: Option<u32>,
    pub current: Option<u32>,
}

/// Whether the installed server vouches for its history at once (a `currentEpoch` written).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Vouch {
    /// `ensemble import`: ZooKeeper's own epochs, so a quorum of imported servers vouches for
    /// what ZooKeeper's files vouched for.
    ZooKeepersEpochs,
    /// The live observer's cut-over: no `currentEpoch`. Each observer's replica is a prefix of
    /// ZooKeeper's history, and only the newest holds every write the observers acknowledged;
    /// a server without `currentEpoch` counts in no quorum until it has synced, so the new
    /// ensemble's first election waits for every voter and elects the newest zxid (README,
    /// "The cut-over runbook", step 5).
    Nobody,
}

/// ZooKeeper's tree (with its epochs, where known) as the only state of the empty dataDir of
/// the server `cfg` describes: what `ensemble import` and the live observer's cut-over write.
/// acceptedEpoch is at least ZooKeeper's epochs and the tree's zxid's, so the epoch the new
/// ensemble chooses is above every epoch ZooKeeper used. Returns the zxid, the znode count,
/// the snapshot and the epochs written.
pub fn install(
    cfg: &NodeConfig,
    zk: &ZkTree,
    zk_epochs: ZkEpochs,
    vouch: Vouch,
) -> anyhow::Result<(Zxid, usize, PathBuf, Epochs)> {
    let snap_dir = cfg.snap_dir();
    let log_dir = cfg.log_dir();
    for d in [&snap_dir, &log_dir] {
        if !is_empty_dir(d)? {
            bail!(
                "{} is not empty: the ZooKeeper state goes into a new server's dataDir (move \
                 the directory aside, or point dataDir elsewhere)",
                d.display()
            );
        }
    }
    let tree = to_ensemble(zk, tree_options(cfg))?;
    let zxid = tree.last_zxid();
    let znodes = tree.node_count();
    let bytes = tree.to_snapshot();
    drop(tree);
    let zk_current = zk_epochs.current.unwrap_or(0).max(zxid.epoch());
    let epochs = Epochs {
        accepted_epoch: zk_epochs.accepted.unwrap_or(0).max(zk_current),
        accepted_from: 0,
        current_epoch: match vouch {
            Vouch::ZooKeepersEpochs => zk_current,
            Vouch::Nobody => 0,
        },
    };
    // Everything goes to a temporary sibling, renamed into place last.
    let parent = snap_dir
        .parent()
        .context("the dataDir has no parent directory")?
        .to_path_buf();
    std::fs::create_dir_all(&parent).with_context(|| parent.display().to_string())?;
    let tmp = parent.join(format!(".version-2.import-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).with_context(|| tmp.display().to_string())?;
    let written = (|| -> anyhow::Result<()> {
        write_snapshot_with(&tmp, zxid, &bytes, cfg.snapshot_compression)?;
        write_epochs(&tmp, &Epochs::default(), &epochs)?;
        fsync_dir(&tmp).with_context(|| tmp.display().to_string())?;
        // An empty version-2 (check_dirs may have made one) is replaced.
        if snap_dir.is_dir() {
            std::fs::remove_dir(&snap_dir).with_context(|| snap_dir.display().to_string())?;
        }
        std::fs::rename(&tmp, &snap_dir).with_context(|| snap_dir.display().to_string())?;
        fsync_dir(&parent).with_context(|| parent.display().to_string())?;
        std::fs::create_dir_all(&log_dir).with_context(|| log_dir.display().to_string())?;
        Ok(())
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    let snapshot = crate::storage::snapshot::list_snapshots(&snap_dir)?
        .pop()
        .map(|(_, p)| p)
        .context("the imported snapshot is not there")?;
    Ok((zxid, znodes, snapshot, epochs))
}

/// ZooKeeper's snapshot of Ensemble's tree, with its digest.
pub fn to_zookeeper(tree: &DataTree) -> ZkSnapshot {
    let mut zk = ZkTree::empty(tree.last_zxid().as_i64(), tree.sessions().clone());
    for n in tree.persisted_nodes() {
        let stat = StatPersisted {
            czxid: n.czxid,
            mzxid: n.mzxid,
            ctime: n.ctime,
            mtime: n.mtime,
            version: n.version,
            cversion: n.cversion,
            aversion: n.aversion,
            ephemeral_owner: n.ephemeral_owner,
            pzxid: n.pzxid,
        };
        // Path order puts every parent first.
        zk.insert(
            n.path,
            ZNode {
                data: n.data,
                acl: n.acl.into(),
                stat,
                children: 0,
            },
        );
    }
    // ZooKeeper writes dbid 0 and never reads it back.
    let snap = zk.to_snapshot(0);
    debug_assert_eq!(snap.digest.map(|d| d.version), Some(DIGEST_VERSION));
    snap
}

/// What an export wrote.
#[derive(Debug)]
pub struct Exported {
    pub zxid: Zxid,
    pub znodes: usize,
    pub snapshot: PathBuf,
    pub digest: ZxidDigest,
    pub notes: Vec<String>,
}

/// `ensemble export`: the server's state as ZooKeeper's dataDir `out` (which must be empty
/// of ZooKeeper's files: its `version-2` missing or empty; a `myid` there is kept).
pub fn export(cfg: &NodeConfig, out: &Path) -> anyhow::Result<Exported> {
    let v2 = out.join("version-2");
    if !is_empty_dir(&v2)? {
        bail!(
            "{} is not empty: export writes a new ZooKeeper dataDir",
            v2.display()
        );
    }
    let (tree, notes) = load_state(&cfg.snap_dir(), &cfg.log_dir(), tree_options(cfg))?;
    let ours = read_epochs(&cfg.snap_dir())?;
    let snap = to_zookeeper(&tree);
    let zxid = tree.last_zxid();
    let znodes = tree.node_count();
    drop(tree);
    let bytes = snapshot::encode(&snap);
    std::fs::create_dir_all(out).with_context(|| out.display().to_string())?;
    let tmp = out.join(format!(".version-2.export-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).with_context(|| tmp.display().to_string())?;
    let name = format!("snapshot.{:x}", zxid.0);
    let epoch = zxid.epoch().max(ours.current_epoch);
    let written = (|| -> anyhow::Result<()> {
        write_file(&tmp.join(&name), &bytes)?;
        // ZooKeeper writes the bare number (`QuorumPeer.writeLongToFile`).
        write_file(
            &tmp.join("acceptedEpoch"),
            epoch.max(ours.accepted_epoch).to_string().as_bytes(),
        )?;
        write_file(&tmp.join("currentEpoch"), epoch.to_string().as_bytes())?;
        fsync_dir(&tmp).with_context(|| tmp.display().to_string())?;
        if v2.is_dir() {
            std::fs::remove_dir(&v2).with_context(|| v2.display().to_string())?;
        }
        std::fs::rename(&tmp, &v2).with_context(|| v2.display().to_string())?;
        fsync_dir(out).with_context(|| out.display().to_string())?;
        Ok(())
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    Ok(Exported {
        zxid,
        znodes,
        snapshot: v2.join(name),
        digest: snap.digest.context("the export has a digest")?,
        notes,
    })
}

fn write_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut f = std::fs::File::create(path).with_context(|| path.display().to_string())?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .with_context(|| path.display().to_string())
}
