//! A large state for the SNAP benchmark, without writing it through clients (which costs the
//! voters the log and periodic snapshots of every write): a tree of `--znodes` znodes of
//! `--data` bytes built in memory, written once as a snapshot file in the node's format (part
//! by part, as a server writes its own, so this process holds the tree and one part), with
//! `acceptedEpoch`/`currentEpoch` of epoch 1, into the first `--data-dir`'s `version-2`, and
//! hard-linked into the others' (snapshots are written to a temporary and renamed, never
//! changed in place, so the voters can share the file's blocks on disk).
//!
//!     cargo build --release -p ensemble-bench
//!     target/release/ensemble-bigstate --znodes 4096 --data 1048576 \
//!         --data-dir /tmp/big/data_1 --data-dir /tmp/big/data_2
//!
//! BENCHMARKS.md ("Large-state sync") has the whole run.

use clap::Parser;
use ensemble_core::tree::{DataTree, TreeOptions};
use ensemble_core::{Epochs, Zxid};
use ensemble_node::storage::epochs::write_epochs;
use ensemble_node::storage::snapshot::SnapshotFileWriter;
use ensemble_testkit::txns::create;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Parser)]
struct Args {
    /// znodes under `/big` (besides it)
    #[arg(long, default_value_t = 4096)]
    znodes: u32,
    /// bytes of data per znode
    #[arg(long, default_value_t = 1 << 20)]
    data: usize,
    /// a server's dataDir (its `version-2` is created); the first gets the file, the others
    /// hard links to it
    #[arg(long = "data-dir", required = true)]
    data_dirs: Vec<PathBuf>,
    /// bytes per snapshot part written
    #[arg(long, default_value_t = 4 << 20)]
    part: usize,
}

/// Bytes that do not compress (xorshift64), different per znode.
fn payload(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    v
}

fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let t0 = Instant::now();
    let mut tree = DataTree::new(TreeOptions::default());
    let mut zxid = Zxid::new(1, 0);
    zxid = zxid.next();
    anyhow::ensure!(
        tree.apply(&create(zxid, "/big".into(), vec![]))
            .reply
            .is_ok()
    );
    for i in 0..a.znodes {
        zxid = zxid.next();
        let txn = create(zxid, format!("/big/n{i:06}"), payload(i.into(), a.data));
        anyhow::ensure!(tree.apply(&txn).reply.is_ok(), "create {i}");
    }
    eprintln!(
        "tree of {} znodes built in {:?}",
        a.znodes + 1,
        t0.elapsed()
    );

    let t1 = Instant::now();
    let dirs: Vec<PathBuf> = a.data_dirs.iter().map(|d| d.join("version-2")).collect();
    for d in &dirs {
        std::fs::create_dir_all(d)?;
    }
    let mut writer = SnapshotFileWriter::create(&dirs[0], zxid)?;
    tree.begin_snapshot(a.part.max(1));
    let path = loop {
        let pieces = tree.continue_snapshot(4096);
        anyhow::ensure!(!pieces.is_empty() || tree.snapshot_remaining() > 0);
        let mut done = None;
        for p in pieces {
            writer.push(&p.data)?;
            if p.last {
                done = Some(());
            }
        }
        if done.is_some() {
            break writer.finish()?;
        }
    };
    let size = std::fs::metadata(&path)?.len();
    eprintln!(
        "{} ({size} bytes) written in {:?}",
        path.display(),
        t1.elapsed()
    );
    drop(tree);

    let epochs = Epochs {
        accepted_epoch: 1,
        accepted_from: 0,
        current_epoch: 1,
    };
    for d in &dirs {
        if d != &dirs[0] {
            let link = d.join(path.file_name().expect("a file name"));
            std::fs::hard_link(&path, &link)?;
            eprintln!("{} linked", link.display());
        }
        write_epochs(d, &Epochs::default(), &epochs)?;
    }
    println!("zxid {zxid} bytes {size}");
    Ok(())
}
