//! The shared storage code's [`Files`] on a real directory: recovery (`ensemble-storage`) reads
//! and repairs `dataDir`/`dataLogDir` through this.

use super::codec::fsync_dir;
use ensemble_core::tree::TreeOptions;
use ensemble_core::{RecoveredSnapshot, Zxid};
use ensemble_storage::Files;
use std::fs::OpenOptions;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub struct FsDir {
    dir: PathBuf,
    /// Recovery's view: snapshots are streamed into a tree built with these options rather
    /// than read whole (see [`super::snapshot_stream::load_tree`]).
    tree: Option<TreeOptions>,
}

impl FsDir {
    pub fn new(dir: &Path) -> FsDir {
        FsDir {
            dir: dir.to_path_buf(),
            tree: None,
        }
    }

    /// A directory whose snapshots load as trees with `opts` (the configuration's, see
    /// `Config::tree_options`), never holding a file's data whole.
    pub fn loading_trees(dir: &Path, opts: TreeOptions) -> FsDir {
        FsDir {
            dir: dir.to_path_buf(),
            tree: Some(opts),
        }
    }
}

impl Files for FsDir {
    fn path(&self, name: &str) -> PathBuf {
        if name.is_empty() {
            self.dir.clone()
        } else {
            self.dir.join(name)
        }
    }

    fn list(&self) -> io::Result<Vec<String>> {
        let mut out = Vec::new();
        for ent in std::fs::read_dir(&self.dir)? {
            let ent = ent?;
            if let Some(name) = ent.file_name().to_str() {
                out.push(name.to_string());
            }
        }
        Ok(out)
    }

    fn read(&self, name: &str) -> io::Result<Vec<u8>> {
        std::fs::read(self.dir.join(name))
    }

    fn remove(&mut self, name: &str) -> io::Result<()> {
        std::fs::remove_file(self.dir.join(name))
    }

    fn zero_from(&mut self, name: &str, from: u64, len: u64) -> io::Result<()> {
        let f = OpenOptions::new().write(true).open(self.dir.join(name))?;
        f.set_len(from)?;
        f.set_len(len.max(from))?;
        f.sync_all()
    }

    fn sync_dir(&mut self) -> io::Result<()> {
        fsync_dir(&self.dir)
    }

    /// Plain or compressed: read whole, or streamed into a tree when this view loads trees.
    fn load_snapshot(&self, name: &str) -> Result<(Zxid, RecoveredSnapshot), String> {
        let path = self.dir.join(name);
        match self.tree {
            None => super::snapshot::read_snapshot_file(&path)
                .map(|(z, d)| (z, RecoveredSnapshot::Bytes(Arc::new(d)))),
            Some(opts) => super::snapshot_stream::load_tree(&path, opts)
                .map(|(z, t)| (z, RecoveredSnapshot::Tree(Box::new(t)))),
        }
    }
}
