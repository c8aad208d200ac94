//! A leader's SNAP streamed from its snapshot file (`Action::SendSnapshot`), one frame at a
//! time as the connection to the learner drains: the leader holds one part of the snapshot in
//! memory per learner being synced, whatever the tree's size, and its core thread never
//! serialises the tree for a sync. The frames are those the core would have sent: `SnapPart`s
//! cut by `snap_layout`, then the SNAP (`Sync`) with the last bytes and the first txns.

use super::wire;
use crate::storage::snapshot_stream::{SnapshotStream, find_snapshot};
use ensemble_core::peer::{SnapBytes, SyncMode};
use ensemble_core::sync_stream::snap_layout;
use ensemble_core::{PeerMsg, Txn, Zxid};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long the file may take to appear: the core hands a snapshot to the storage's writer
/// thread and may sync a learner from it before the writer has renamed it into place.
const APPEAR_WITHIN: Duration = Duration::from_secs(120);

/// What the core asked to send.
pub struct SnapSend {
    pub snap_dir: PathBuf,
    pub zxid: Zxid,
    pub part: usize,
    pub txns: Vec<Arc<Txn>>,
    pub committed: Zxid,
}

/// One SNAP being sent.
pub struct SnapSending {
    what: SnapSend,
    since: Instant,
    reader: Option<SnapshotStream>,
    /// Data bytes sent so far.
    sent: u64,
}

/// The next step of a SNAP being sent.
pub enum Step {
    /// A `SnapPart` frame; more follow.
    Part(Vec<u8>),
    /// The SNAP frame: the stream is over.
    Last(Vec<u8>),
    /// The file is not there yet: try again shortly.
    Wait,
}

impl SnapSending {
    pub fn new(what: SnapSend) -> SnapSending {
        SnapSending {
            what,
            since: Instant::now(),
            reader: None,
            sent: 0,
        }
    }

    /// The snapshot's zxid (for messages).
    pub fn zxid(&self) -> Zxid {
        self.what.zxid
    }

    /// Read and encode the next frame. Blocking (file reads, decompression): run it off the
    /// async workers. `Err` ends the stream: the connection must break before the SNAP leaves.
    pub fn next_frame(&mut self) -> Result<Step, String> {
        let w = &self.what;
        if self.reader.is_none() {
            let found = find_snapshot(&w.snap_dir, w.zxid)
                .map_err(|e| format!("{}: {e}", w.snap_dir.display()))?;
            let Some(path) = found else {
                if self.since.elapsed() < APPEAR_WITHIN {
                    return Ok(Step::Wait);
                }
                return Err(format!(
                    "no snapshot file of {} in {} after {APPEAR_WITHIN:?}",
                    w.zxid,
                    w.snap_dir.display()
                ));
            };
            let reader = SnapshotStream::open(&path, w.zxid)?;
            tracing::info!(
                "streaming the SNAP at {} from {} ({} bytes)",
                w.zxid,
                path.display(),
                reader.total()
            );
            self.reader = Some(reader);
        }
        let r = self.reader.as_mut().expect("opened above");
        let total = r.total();
        let (part, last_start) = snap_layout(total, w.part);
        let mut frame = Vec::new();
        if self.sent < last_start {
            let data = r.next(part as usize)?;
            assert_eq!(data.len() as u64, part, "a part short of the layout");
            let msg = PeerMsg::SnapPart {
                zxid: w.zxid,
                offset: self.sent,
                total,
                data: SnapBytes::from(Arc::new(data)),
            };
            self.sent += part;
            wire::encode_frame(&msg, &mut frame).map_err(|e| e.to_string())?;
            return Ok(Step::Part(frame));
        }
        let last = r.next((total - self.sent) as usize)?;
        self.sent = total;
        let msg = PeerMsg::Sync {
            mode: SyncMode::Snap {
                zxid: w.zxid,
                snapshot: SnapBytes::from(Arc::new(last)),
            },
            txns: std::mem::take(&mut self.what.txns),
            committed: self.what.committed,
        };
        wire::encode_frame(&msg, &mut frame).map_err(|e| e.to_string())?;
        Ok(Step::Last(frame))
    }
}
