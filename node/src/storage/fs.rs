//! The shared storage code's [`Files`] on a real directory: recovery (`ensemble-storage`) reads
//! and repairs `dataDir`/`dataLogDir` through this.

use super::codec::fsync_dir;
use ensemble_core::Zxid;
use ensemble_storage::Files;
use std::fs::OpenOptions;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub struct FsDir {
    dir: PathBuf,
}

impl FsDir {
    pub fn new(dir: &Path) -> FsDir {
        FsDir {
            dir: dir.to_path_buf(),
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

    /// Plain or compressed, streamed from the file.
    fn load_snapshot(&self, name: &str) -> Result<(Zxid, Arc<Vec<u8>>), String> {
        super::snapshot::read_snapshot_file(&self.dir.join(name)).map(|(z, d)| (z, Arc::new(d)))
    }
}
