//! Snapshot compression: one tree's snapshot written and read back by the node's storage code
//! with each `zookeeper.snapshot.compression.method` (none, gz, snappy, zstd); prints the file
//! size, the write time (through fsync and rename) and the read time (decompress and check).
//!
//!     cargo build --release -p ensemble-bench
//!     target/release/ensemble-snapbench --znodes 1000000 --data 100 --dir /tmp/snapbench

use clap::Parser;
use ensemble_core::Zxid;
use ensemble_core::tree::{DataTree, TreeOptions};
use ensemble_node::storage::compression::SnapshotCompression;
use ensemble_node::storage::snapshot::{read_snapshot, write_snapshot_with};
use ensemble_testkit::txns::create;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Parser)]
struct Args {
    /// znodes in the tree (`/b<k>/n<i>`, 1000 per parent)
    #[arg(long, default_value_t = 200_000)]
    znodes: u32,
    /// bytes of data per znode (text-like: a counter and a repeated phrase)
    #[arg(long, default_value_t = 100)]
    data: usize,
    #[arg(long, default_value = "/tmp/ensemble-snapbench")]
    dir: PathBuf,
}

fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let mut tree = DataTree::new(TreeOptions::default());
    let mut zxid = Zxid::new(1, 0);
    let phrase = b"service=orders region=eu-west-1 endpoint=10.0.3.17:8080 weight=100 ";
    for i in 0..a.znodes {
        if i % 1000 == 0 {
            zxid = zxid.next();
            tree.apply(&create(zxid, format!("/b{}", i / 1000), vec![]));
        }
        zxid = zxid.next();
        let mut data = format!("{i:08} ").into_bytes();
        data.extend(phrase.iter().cycle().take(a.data.saturating_sub(9)));
        data.truncate(a.data);
        tree.apply(&create(zxid, format!("/b{}/n{i}", i / 1000), data));
    }
    let bytes = tree.to_snapshot();
    let at = tree.last_zxid();
    println!(
        "{} znodes of {} bytes: snapshot {:.1} MiB",
        a.znodes,
        a.data,
        bytes.len() as f64 / (1 << 20) as f64
    );
    println!("method  file MiB  ratio  write s  read s");
    for m in SnapshotCompression::ALL {
        let dir = a.dir.join(m.to_string());
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let t0 = Instant::now();
        let path = write_snapshot_with(&dir, at, &bytes, m)?;
        let write = t0.elapsed().as_secs_f64();
        let size = std::fs::metadata(&path)?.len();
        let t1 = Instant::now();
        let back = read_snapshot(&path, at).map_err(anyhow::Error::msg)?;
        let read = t1.elapsed().as_secs_f64();
        anyhow::ensure!(back == bytes, "{m}: read back differs");
        println!(
            "{:<7} {:>8.1} {:>6.2} {:>8.2} {:>7.2}",
            m.to_string(),
            size as f64 / (1 << 20) as f64,
            bytes.len() as f64 / size as f64,
            write,
            read
        );
        std::fs::remove_dir_all(&dir)?;
    }
    Ok(())
}
