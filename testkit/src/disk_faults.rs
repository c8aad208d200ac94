//! Storage faults on a [`Disk`] with bytes, and what recovery makes of them.
//!
//! Nothing reads a running server's files, so a fault is kept as [`Damage`] waiting for the
//! next recovery and applied then, to a copy of the bytes ([`Disk::trial`]): a flipped bit, a
//! log write that landed at the wrong place, a sector whose reads fail, the log bytes a lying
//! fsync never wrote. A write that replaces the bytes a damage is about (a truncation, a file
//! written again or removed) takes the damage with it, as it would on a disk. The trial's
//! outcome ([`Outcome`]) compares what recovery returned with what was written: the same, a
//! refusal (the damage was seen), a prefix (the log after some txn is gone: what a torn tail
//! looks like), or something else — corruption served, which no fault may cause.

use crate::disk::{DataDir, Disk};
use ensemble_core::server::{Epochs, Recovered};
use ensemble_core::zxid::Zxid;
use ensemble_storage::epochs::{ACCEPTED, CURRENT};
use ensemble_storage::log::HEADER_LEN;
use ensemble_storage::{Files, MemDir};
use std::fmt;

/// Which of the data dir's two directories a file is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    /// `dataDir/version-2`: snapshots and epoch files.
    Snap,
    /// `dataLogDir/version-2`: the txn log.
    Log,
}

/// The kind of file a fault aims at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    Log,
    Snapshot,
    Epoch,
}

impl FileKind {
    pub const ALL: [FileKind; 3] = [FileKind::Log, FileKind::Snapshot, FileKind::Epoch];

    pub fn name(self) -> &'static str {
        match self {
            FileKind::Log => "log",
            FileKind::Snapshot => "snapshot",
            FileKind::Epoch => "epoch",
        }
    }

    pub fn from_name(s: &str) -> Option<FileKind> {
        FileKind::ALL.into_iter().find(|k| k.name() == s)
    }
}

/// A storage fault waiting for the next recovery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Damage {
    /// Bit `bit` of byte `at` flipped.
    Flip {
        dir: Dir,
        file: String,
        at: usize,
        bit: u8,
    },
    /// The log write of `[at, at + len)` of `file` landed at `to_at` of `to_file` instead:
    /// its own place holds zeros (what was there before), the other place is overwritten.
    Misdirect {
        file: String,
        at: usize,
        len: usize,
        to_dir: Dir,
        to_file: String,
        to_at: usize,
    },
    /// Reads of the sector under byte `at` fail.
    Latent { dir: Dir, file: String, at: usize },
    /// The log's bytes from `at` on never reached the platter: fsyncs acknowledged, not done.
    LostSync { file: String, at: usize },
}

impl DataDir {
    /// The directory `d` names.
    fn dir_mut(&mut self, d: Dir) -> &mut MemDir {
        match d {
            Dir::Snap => &mut self.snap,
            Dir::Log => &mut self.log,
        }
    }
}

impl Damage {
    /// Is this damage about bytes of `file` in `dir` at or after `from`?
    pub(crate) fn touches(&self, d: Dir, name: &str, from: usize) -> bool {
        match self {
            Damage::Flip { dir, file, at, .. } | Damage::Latent { dir, file, at } => {
                *dir == d && file == name && *at >= from
            }
            Damage::Misdirect {
                file,
                at,
                len,
                to_dir,
                to_file,
                to_at,
            } => {
                (d == Dir::Log && file == name && at + len > from)
                    || (*to_dir == d && to_file == name && to_at + len > from)
            }
            Damage::LostSync { file, .. } => d == Dir::Log && file == name,
        }
    }

    /// Carry it out on `files`; false when its bytes are not there.
    fn apply(&self, files: &mut DataDir) -> bool {
        match self {
            Damage::Flip { dir, file, at, bit } => files.dir_mut(*dir).flip_bit(file, *at, *bit),
            Damage::Latent { dir, file, at } => files.dir_mut(*dir).set_unreadable(file, *at),
            Damage::Misdirect {
                file,
                at,
                len,
                to_dir,
                to_file,
                to_at,
            } => {
                let Ok(bytes) = files.log.read(file) else {
                    return false;
                };
                let Some(record) = bytes.get(*at..at + len).map(<[u8]>::to_vec) else {
                    return false;
                };
                let zeroed = files.log.write_at(file, *at, &vec![0; *len]);
                let landed = files.dir_mut(*to_dir).write_at(to_file, *to_at, &record);
                zeroed || landed
            }
            Damage::LostSync { file, at } => match files.log.file(file) {
                Some(f) if *at < f.len() => {
                    files.log.truncate(file, *at);
                    true
                }
                _ => false,
            },
        }
    }
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Damage::Flip { file, at, bit, .. } => {
                write!(f, "bit {bit} of byte {at} of {file} flipped")
            }
            Damage::Misdirect {
                file,
                at,
                len,
                to_file,
                to_at,
                ..
            } => write!(
                f,
                "the {len}-byte write at {at} of {file} landed at {to_at} of {to_file}"
            ),
            Damage::Latent { file, at, .. } => {
                write!(f, "a latent read error in {file} at byte {at}")
            }
            Damage::LostSync { file, at } => {
                write!(
                    f,
                    "{file} from byte {at} never reached the platter (fsyncs acknowledged)"
                )
            }
        }
    }
}

/// What a recovery through damage returned, against what was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// What was written (maybe read from an older snapshot and more of the log).
    Exact,
    /// Recovery refused the disk: the damage was seen.
    Refused(String),
    /// What was written through `through`; the logged txns after it are gone, as after a
    /// torn tail (a checksum cannot tell a flipped last record from a torn one).
    Lost { through: Zxid, lost: Vec<Zxid> },
    /// Something else than what was written: corruption served.
    Served(String),
}

/// A recovery tried on a copy of the bytes with the waiting damage applied.
pub struct Trial {
    pub dir: DataDir,
    pub result: Result<ensemble_storage::Recovery, String>,
    /// The damage that found its bytes.
    pub applied: Vec<Damage>,
    pub outcome: Outcome,
}

impl Disk {
    /// Drop waiting damage about bytes of `file` at or after `from`: they were written again.
    pub(crate) fn forget_damage(&mut self, dir: Dir, file: &str, from: usize) {
        if !self.damage.is_empty() {
            self.damage.retain(|d| !d.touches(dir, file, from));
        }
        if dir == Dir::Log
            && let Some((f, at)) = &self.platter
            && f == file
            && *at >= from
        {
            self.platter = None;
        }
    }

    /// A bit flip in a durable byte of a file of kind `kind`, picked by `draw`; a description,
    /// or `None` when the disk has no such bytes.
    pub fn corrupt(&mut self, kind: FileKind, draw: u64) -> Option<Damage> {
        let (dir, file, len) = self.durable_file(kind, draw)?;
        let at = (draw >> 8) as usize % len;
        let d = Damage::Flip {
            dir,
            file,
            at,
            bit: (draw % 8) as u8,
        };
        self.add_damage(d)
    }

    /// A latent read error on a sector of a file of kind `kind`.
    pub fn latent(&mut self, kind: FileKind, draw: u64) -> Option<Damage> {
        let (dir, file, len) = self.durable_file(kind, draw)?;
        let at = (draw >> 8) as usize % len;
        self.add_damage(Damage::Latent { dir, file, at })
    }

    /// One of the durable log records, picked by `draw`, was written to the wrong place:
    /// another offset of the log (`to` = Log) or a snapshot or epoch file. One log misdirect
    /// in four is the write of the last durable record landing on the previous record's slot
    /// (a write sent to a stale offset): the one place where a checksum alone leaves a valid
    /// log one txn short, so it is drawn often enough that a reader not checking places is
    /// caught (plant `log-record-place-unchecked`).
    pub fn misdirect(&mut self, to: FileKind, draw: u64) -> Option<Damage> {
        let file = self.log_file.clone()?;
        let durable: Vec<usize> = self
            .log
            .iter()
            .take_while(|e| e.durable)
            .map(|e| e.end)
            .collect();
        if durable.is_empty() {
            return None;
        }
        let start = |i: usize| if i == 0 { HEADER_LEN } else { durable[i - 1] };
        if to == FileKind::Log && durable.len() >= 2 && (draw >> 56).is_multiple_of(4) {
            let i = durable.len() - 1;
            let at = start(i);
            let len = durable[i] - at;
            let to_at = start(i - 1);
            let to_len = self.files.as_ref()?.log.file(&file)?.len();
            if to_at + len > to_len {
                return None;
            }
            return self.add_damage(Damage::Misdirect {
                file: file.clone(),
                at,
                len,
                to_dir: Dir::Log,
                to_file: file,
                to_at,
            });
        }
        let i = (draw as usize) % durable.len();
        let at = start(i);
        let len = durable[i] - at;
        let (to_dir, to_file, to_len) = self.durable_file(to, draw >> 16)?;
        if to_len < len {
            return None;
        }
        let mut to_at = (draw >> 24) as usize % (to_len - len + 1);
        if to_dir == Dir::Log && to_file == file && to_at.abs_diff(at) < len {
            // not onto itself: that would be a write in the right place
            to_at = if at >= len { at - len } else { at + len };
            if to_at + len > to_len {
                return None;
            }
        }
        self.add_damage(Damage::Misdirect {
            file,
            at,
            len,
            to_dir,
            to_file,
            to_at,
        })
    }

    /// The next `n` fsyncs of the log are acknowledged and not done.
    pub fn lie_about_fsyncs(&mut self, n: u32) -> bool {
        if self.files.is_none() {
            return false;
        }
        self.lying_fsyncs = n;
        true
    }

    /// After a crash: what the lying fsyncs did not write. `keep(n)` says how many of the `n`
    /// bytes reached the platter anyway; the rest are lost at the next recovery.
    pub fn reveal_lost_fsyncs(&mut self, keep: impl FnOnce(usize) -> usize) -> Option<Damage> {
        if self.platter.is_none() {
            self.lying_fsyncs = 0;
            return None;
        }
        self.lying_fsyncs = 0;
        let (file, at) = self.platter.take()?;
        let len = self.files.as_ref()?.log.file(&file)?.len();
        if at >= len {
            return None;
        }
        let kept = keep(len - at).min(len - at);
        if kept == len - at {
            return None;
        }
        self.add_damage(Damage::LostSync {
            file,
            at: (at + kept).max(HEADER_LEN),
        })
    }

    fn add_damage(&mut self, d: Damage) -> Option<Damage> {
        self.damaged = true;
        self.damage.push(d.clone());
        Some(d)
    }

    /// A file of `kind` with durable bytes, picked by `draw`: its dir, name and durable length.
    fn durable_file(&self, kind: FileKind, draw: u64) -> Option<(Dir, String, usize)> {
        let files = self.files.as_ref()?;
        let (dir, m): (Dir, &MemDir) = match kind {
            FileKind::Log => (Dir::Log, &files.log),
            FileKind::Snapshot | FileKind::Epoch => (Dir::Snap, &files.snap),
        };
        let names: Vec<&str> = m
            .names()
            .filter(|n| match kind {
                FileKind::Log => n.starts_with("log."),
                FileKind::Snapshot => n.starts_with("snapshot."),
                FileKind::Epoch => *n == ACCEPTED || *n == CURRENT,
            })
            .filter(|n| m.file(n).is_some_and(|f| f.durable_len() > 0))
            .collect();
        if names.is_empty() {
            return None;
        }
        let name = names[(draw as usize / 7) % names.len()];
        let len = m.file(name)?.durable_len();
        Some((dir, name.to_string(), len))
    }

    /// Recovery on a copy of the bytes with the waiting damage applied, and its outcome.
    pub fn trial(&self) -> Option<Trial> {
        let mut dir = self.files.clone()?;
        let applied: Vec<Damage> = self
            .damage
            .iter()
            .filter(|d| d.apply(&mut dir))
            .cloned()
            .collect();
        let result =
            ensemble_storage::recover(&mut dir.snap, &mut dir.log).map_err(|e| e.to_string());
        let outcome = match &result {
            Err(e) => Outcome::Refused(e.clone()),
            Ok(r) => self.judge(&r.recovered),
        };
        Some(Trial {
            dir,
            result,
            applied,
            outcome,
        })
    }

    /// What `got` is against what was written.
    fn judge(&self, got: &Recovered) -> Outcome {
        // Forgetting currentEpoch is allowed (recovery does when a misdirect cut the log's
        // tail, or a cut reached below that epoch's history: the server then vouches for
        // nothing until it syncs); anything else is not.
        let forgot = Epochs {
            current_epoch: 0,
            ..self.epochs
        };
        if got.epochs != self.epochs && got.epochs != forgot {
            return Outcome::Served(format!(
                "epochs {:?}, written {:?}",
                got.epochs, self.epochs
            ));
        }
        let base = match (&got.snapshot, &self.snapshot) {
            (None, None) => Zxid::ZERO,
            (Some((z, data)), _) => {
                let written = self.retained.iter().find(|(w, _)| w == z);
                match written {
                    Some((_, w)) if *w == data.to_bytes() => *z,
                    Some(_) => {
                        return Outcome::Served(format!(
                            "snapshot {z}'s data differs from what was written"
                        ));
                    }
                    None => return Outcome::Served(format!("snapshot {z} was never written")),
                }
            }
            (None, Some((z, _))) => {
                return Outcome::Served(format!("no snapshot, while {z} was written"));
            }
        };
        let want: Vec<_> = self.log.iter().filter(|e| e.txn.zxid > base).collect();
        if got.log.len() > want.len() {
            return Outcome::Served(format!(
                "{} txns after {base}, {} written",
                got.log.len(),
                want.len()
            ));
        }
        for (g, w) in got.log.iter().zip(&want) {
            if g != &*w.txn {
                return Outcome::Served(format!(
                    "txn {} is not what was written at {}",
                    g.zxid, w.txn.zxid
                ));
            }
        }
        if got.log.len() < want.len() {
            let through = got.log.last().map_or(base, |t| t.zxid);
            return Outcome::Lost {
                through,
                lost: want[got.log.len()..].iter().map(|e| e.txn.zxid).collect(),
            };
        }
        Outcome::Exact
    }

    /// Take a trial's bytes and what it recovered: the waiting damage is now on the disk,
    /// and the logical view loses what recovery did not find. The trial must not be `Served`
    /// or `Refused`.
    pub fn accept(&mut self, trial: Trial) -> Recovered {
        let rec = trial.result.expect("an accepted trial recovered");
        assert!(
            matches!(trial.outcome, Outcome::Exact | Outcome::Lost { .. }),
            "accepting {:?}",
            trial.outcome
        );
        self.files = Some(trial.dir);
        self.scarred |= !trial.applied.is_empty();
        self.damage.clear();
        self.platter = None;
        self.log_file = rec.tail.as_ref().map(|t| t.name.clone());
        self.recovery_warnings = rec.warnings;
        self.epochs = rec.recovered.epochs;
        if let Outcome::Lost { through, .. } = trial.outcome {
            let keep = self.log.partition_point(|e| e.txn.zxid <= through);
            self.log.truncate(keep);
            self.durable_prefix = self.durable_prefix.min(keep);
        }
        if let Some((z, data)) = &rec.recovered.snapshot
            && self.snapshot.as_ref().is_none_or(|(s, _)| s != z)
        {
            // an older snapshot: the newer ones failed their check
            self.snapshot = Some((*z, data.to_bytes()));
        }
        rec.recovered
    }

    /// Forget the waiting damage (the fault atlas spared this disk): recovery reads what was
    /// written.
    pub fn spare(&mut self) {
        self.damage.clear();
        self.platter = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::txn;
    use ensemble_core::server::Epochs;

    fn disk(n: u32) -> Disk {
        let mut d = Disk::with_files("n1");
        d.persist_epochs(Epochs {
            accepted_epoch: 1,
            accepted_from: 1,
            current_epoch: 1,
        });
        let txns: Vec<_> = (1..=n).map(txn).collect();
        d.append(&txns);
        d.fsync_all();
        d
    }

    fn log_of(d: &Disk) -> Vec<u32> {
        d.log.iter().map(|e| e.txn.zxid.counter()).collect()
    }

    #[test]
    fn a_flip_in_the_middle_of_the_log_is_refused_and_at_its_end_reads_as_a_lost_tail() {
        let mut d = disk(4);
        let second = d.log[1].end;
        // the draw's high bits pick the byte: one inside the second record's payload
        let draw = ((second as u64 - 20) << 8) | 3;
        assert!(d.corrupt(FileKind::Log, draw).is_some());
        assert!(matches!(d.trial().unwrap().outcome, Outcome::Refused(_)));
        d.spare();
        let last = d.log[3].end;
        assert!(
            d.corrupt(FileKind::Log, ((last as u64 - 3) << 8) | 1)
                .is_some()
        );
        let t = d.trial().unwrap();
        let Outcome::Lost { through, ref lost } = t.outcome else {
            panic!("{:?}", t.outcome)
        };
        assert_eq!((through.counter(), lost.len()), (3, 1));
        d.accept(t);
        assert_eq!(log_of(&d), vec![1, 2, 3]);
        assert!(d.scarred);
    }

    #[test]
    fn an_epoch_flip_is_refused_and_a_rewrite_takes_the_damage_with_it() {
        let mut d = disk(2);
        assert!(d.corrupt(FileKind::Epoch, 0).is_some());
        assert!(matches!(d.trial().unwrap().outcome, Outcome::Refused(_)));
        // both epoch files written again: the flipped bytes are gone
        d.persist_epochs(Epochs {
            accepted_epoch: 2,
            accepted_from: 1,
            current_epoch: 2,
        });
        assert_eq!(d.trial().unwrap().outcome, Outcome::Exact);
    }

    #[test]
    fn lying_fsyncs_lose_what_they_covered_at_a_crash() {
        let mut d = disk(2);
        assert!(d.lie_about_fsyncs(5));
        d.append(&[txn(3), txn(4)]);
        d.fsync_all();
        d.crash_losing_unsynced();
        assert!(d.reveal_lost_fsyncs(|_| 0).is_some());
        let t = d.trial().unwrap();
        assert!(
            matches!(&t.outcome, Outcome::Lost { through, .. } if through.counter() == 2),
            "{:?}",
            t.outcome
        );
        // a real fsync after the lie writes everything: nothing to lose
        let mut d = disk(2);
        d.lie_about_fsyncs(1);
        d.append(&[txn(3)]);
        d.fsync_all();
        d.append(&[txn(4)]);
        d.fsync_all();
        d.crash_losing_unsynced();
        assert!(d.reveal_lost_fsyncs(|_| 0).is_none());
    }

    #[test]
    fn a_misdirected_record_is_never_served() {
        for draw in 0..40u64 {
            let mut d = disk(5);
            if d.misdirect(FileKind::Log, draw * 0x0101_0101).is_none() {
                continue;
            }
            let t = d.trial().unwrap();
            assert!(
                !matches!(t.outcome, Outcome::Served(_)),
                "draw {draw}: {:?}",
                t.outcome
            );
        }
    }
}
