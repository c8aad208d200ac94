//! The transaction log's format and its recovery: files `log.<hex zxid of the first txn>`
//! under `dataLogDir/version-2/`.
//!
//! File layout: a 16-byte header (`ENSTXLOG`, format version, reserved), then records
//! `[payload len u32 LE][sum u32 LE][payload = bincode(Txn)]`, then zeros: files are
//! preallocated (extended sparse, as ZooKeeper does) so that appends rarely change the file
//! size. A record of length 0 ends the log.
//!
//! The sum is the crc32 of the payload XOR the record's own offset in the file (format version
//! 2; version 1, still read, had the crc32 alone). A checksum alone proves a record intact, not
//! that it is where it was written: a write that landed on the previous record's slot (a
//! misdirected write) left a log that read as valid and one txn short. With its offset in the
//! sum, a record found anywhere but where it was written fails, and the offset it was written
//! for is named. (ZooKeeper's own log format, read by the import, has no such check.)

use crate::StorageError;
use crate::codec::{
    MAX_RECORD, crc, txn_encode_options, txn_options, u32_at, u64_at, zxid_of_name,
};
use crate::files::Files;
use bincode::Options;
use ensemble_core::{Txn, Zxid};

pub const LOG_MAGIC: &[u8; 8] = b"ENSTXLOG";
/// The format written. Version 1 (sums without the offset) is still read; the node starts a
/// new file rather than append version-2 records to a version-1 file.
pub const LOG_VERSION: u32 = 2;
/// The first version whose sums carry the record's offset.
const PLACED_FROM: u32 = 2;
pub const HEADER_LEN: usize = 16;
pub const RECORD_HEADER: usize = 8;

pub fn log_file_name(first: Zxid) -> String {
    format!("log.{:x}", first.0)
}

/// A new log file's first bytes.
pub fn file_header() -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(LOG_MAGIC);
    h[8..12].copy_from_slice(&LOG_VERSION.to_le_bytes());
    h
}

/// The format version of a log file whose first bytes are `head` (`None`: not a log file).
pub fn file_version(head: &[u8]) -> Option<u32> {
    (head.get(..8)? == LOG_MAGIC).then(|| u32_at(head, 8))?
}

/// Log files among `f`'s, oldest first, by name.
pub fn list_logs(f: &impl Files) -> Result<Vec<(Zxid, String)>, StorageError> {
    let mut out: Vec<(Zxid, String)> = f
        .list()
        .map_err(|e| StorageError::io(&f.path(""), e))?
        .into_iter()
        .filter_map(|n| zxid_of_name(&n, "log").map(|z| (Zxid(z), n)))
        .collect();
    out.sort();
    Ok(out)
}

/// What a record's offset adds to its sum (XOR): injective below 4 GiB, so the offset a
/// record was written for can be read back from a misplaced one.
fn offset_mix(at: u64) -> u32 {
    (at as u32) ^ ((at >> 32) as u32)
}

/// Move a record encoded by [`encode_record`] at `from` to offset `to` (its sum names its
/// offset): the test kit encodes a txn once and writes it at each server's own offset.
pub fn place_record(record: &mut [u8], from: u64, to: u64) {
    if let Some(sum) = u32_at(record, 4) {
        let placed = sum ^ offset_mix(from) ^ offset_mix(to);
        record[4..8].copy_from_slice(&placed.to_le_bytes());
    }
}

/// Append one record to `out`, encoded in place (no intermediate buffer); `base` is the file
/// offset `out[0]` goes to, so the record's sum names where it lies.
pub fn encode_record(txn: &Txn, out: &mut Vec<u8>, base: u64) -> Result<(), StorageError> {
    let start = out.len();
    out.extend_from_slice(&[0; RECORD_HEADER]);
    let encoded = txn_encode_options().serialize_into(&mut *out, txn);
    let len = out.len() - start - RECORD_HEADER;
    if let Err(e) = encoded {
        out.truncate(start);
        return Err(StorageError::Encode(format!("txn {}: {e}", txn.zxid)));
    }
    if len as u64 > MAX_RECORD {
        out.truncate(start);
        return Err(StorageError::Encode(format!(
            "txn {}: {len} bytes, over the record limit",
            txn.zxid
        )));
    }
    let sum = crc(&out[start + RECORD_HEADER..]) ^ offset_mix(base + start as u64);
    out[start..start + 4].copy_from_slice(&(len as u32).to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&sum.to_le_bytes());
    Ok(())
}

/// Why reading stopped before the end of a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Damage {
    pub offset: u64,
    pub reason: String,
}

/// What one log file holds.
#[derive(Debug)]
pub struct FileScan {
    /// Decoded txns with their offsets (those at or below the scan's `skip_through` are not).
    pub txns: Vec<(u64, Txn)>,
    /// The zxid of the last valid record, decoded or not.
    pub last: Option<Zxid>,
    /// Offset just past the last good record (where the next append goes).
    pub end: u64,
    pub len: u64,
    pub damage: Option<Damage>,
    /// A valid record exists after the damage: the damage is not a torn tail.
    pub valid_after_damage: Option<u64>,
}

/// One record read: its size and its txn, or only its zxid when it was not decoded.
// One at a time, moved straight into the list read: boxing would cost an allocation per txn.
#[allow(clippy::large_enum_variant)]
enum Record {
    Txn(Txn),
    Skipped(Zxid),
}

impl Record {
    fn zxid(&self) -> Zxid {
        match self {
            Record::Txn(t) => t.zxid,
            Record::Skipped(z) => *z,
        }
    }
}

/// Try to read one record at `pos` of a file of format `version`. `Ok(None)` = end-of-log
/// marker. A record whose zxid is at or below `skip_through` is checked (checksum, place,
/// order) but not decoded: a snapshot covers it.
fn record_at(
    buf: &[u8],
    pos: usize,
    version: u32,
    prev: Option<Zxid>,
    skip_through: Option<Zxid>,
) -> Result<Option<(usize, Record)>, String> {
    if pos + RECORD_HEADER > buf.len() {
        if buf[pos..].iter().all(|b| *b == 0) {
            return Ok(None);
        }
        return Err("record header cut short".into());
    }
    let len = u32_at(buf, pos).unwrap_or(0) as usize;
    let sum = u32_at(buf, pos + 4).unwrap_or(0);
    if len == 0 {
        if sum == 0 {
            return Ok(None);
        }
        return Err("zero-length record with a checksum".into());
    }
    if len as u64 > MAX_RECORD || pos + RECORD_HEADER + len > buf.len() {
        return Err(format!("record length {len} runs past the end of the file"));
    }
    let payload = &buf[pos + RECORD_HEADER..pos + RECORD_HEADER + len];
    if version >= PLACED_FROM {
        check_placed(payload, sum, pos as u64, buf.len() as u64)?;
    } else if !checksum_matches(payload, sum) {
        return Err("checksum mismatch".into());
    }
    // A txn's encoding starts with its zxid (u64, little-endian).
    let peeked = u64_at(payload, 0).map(Zxid);
    let record = match (peeked, skip_through) {
        (Some(z), Some(s)) if z <= s => Record::Skipped(z),
        _ => Record::Txn(
            txn_options()
                .deserialize(payload)
                .map_err(|e| format!("record does not decode: {e}"))?,
        ),
    };
    if let Some(p) = prev
        && record.zxid() <= p
    {
        return Err(format!("zxid {} does not follow {}", record.zxid(), p));
    }
    Ok(Some((RECORD_HEADER + len, record)))
}

/// The record checksum test (a plant can skip it: the simulator proves a skipped check is caught).
fn checksum_matches(payload: &[u8], sum: u32) -> bool {
    crate::plant::active(ensemble_core::plant::Plant::LogChecksumSkipped) || crc(payload) == sum
}

/// The sum test of a version-2 record at `pos` of a file of `len` bytes: intact and written
/// for this offset. An intact record written for another offset of the file is named so.
fn check_placed(payload: &[u8], sum: u32, pos: u64, len: u64) -> Result<(), String> {
    let payload_sum = crc(payload);
    if payload_sum ^ offset_mix(pos) == sum
        || crate::plant::active(ensemble_core::plant::Plant::LogChecksumSkipped)
    {
        return Ok(());
    }
    // Below 4 GiB the mix is the offset itself: what the record was written for.
    let written_for = u64::from(payload_sum ^ sum);
    if (HEADER_LEN as u64..len).contains(&written_for) {
        if crate::plant::active(ensemble_core::plant::Plant::LogRecordPlaceUnchecked) {
            return Ok(());
        }
        ensemble_core::probe!("storage.misplaced-record");
        return Err(format!(
            "an intact record written for offset {written_for} {MISDIRECTED}"
        ));
    }
    Err("checksum mismatch".into())
}

/// Is there any well-formed record (checksum, place and decode all good) at or after `from`?
fn find_valid_after(buf: &[u8], version: u32, from: usize) -> Option<usize> {
    let mut pos = from;
    while pos + RECORD_HEADER < buf.len() {
        // Skip runs of zeros quickly: a record header is never 8 zero bytes.
        if buf[pos..pos + RECORD_HEADER].iter().all(|b| *b == 0) {
            match buf[pos..].iter().position(|b| *b != 0) {
                Some(nz) => {
                    pos = (pos + nz).saturating_sub(RECORD_HEADER - 1).max(pos + 1);
                    continue;
                }
                None => return None,
            }
        }
        if let Ok(Some(_)) = record_at(buf, pos, version, None, None) {
            return Some(pos);
        }
        pos += 1;
    }
    None
}

/// Read a whole log file's bytes. `Err(reason)` only for a file that is not ours. Records at
/// or below `skip_through` are checked but neither decoded nor returned.
pub fn scan_bytes(
    buf: &[u8],
    prev: Option<Zxid>,
    skip_through: Option<Zxid>,
) -> Result<FileScan, String> {
    let len = buf.len() as u64;
    if buf.len() < HEADER_LEN || &buf[..8] != LOG_MAGIC {
        // A file cut short while being created (all zeros) is a torn tail like any other.
        if buf.iter().all(|b| *b == 0) {
            return Ok(FileScan {
                txns: vec![],
                last: None,
                end: 0,
                len,
                damage: Some(Damage {
                    offset: 0,
                    reason: "file header never written".into(),
                }),
                valid_after_damage: None,
            });
        }
        return Err("not an ensemble txn log (bad magic)".into());
    }
    let version = u32_at(buf, 8).unwrap_or(0);
    if !(1..=LOG_VERSION).contains(&version) {
        return Err(format!(
            "txn log format version {version}, this build reads 1 to {LOG_VERSION}"
        ));
    }
    let mut txns = Vec::new();
    let mut pos = HEADER_LEN;
    let mut last = prev;
    let mut damage = None;
    loop {
        match record_at(buf, pos, version, last, skip_through) {
            Ok(Some((n, record))) => {
                last = Some(record.zxid());
                if let Record::Txn(txn) = record {
                    txns.push((pos as u64, txn));
                }
                pos += n;
            }
            Ok(None) => break,
            Err(reason) => {
                damage = Some(Damage {
                    offset: pos as u64,
                    reason,
                });
                break;
            }
        }
    }
    // Whatever stopped us, nothing valid may follow: a zeroed or damaged record with good
    // ones after it is corruption in the middle, not a torn tail.
    let valid_after_damage = find_valid_after(buf, version, pos + 1).map(|p| p as u64);
    if damage.is_none()
        && let Some(at) = valid_after_damage
    {
        damage = Some(Damage {
            offset: pos as u64,
            reason: format!("end-of-log marker before a valid record at {at}"),
        });
    }
    Ok(FileScan {
        txns,
        last,
        end: pos as u64,
        len,
        damage,
        valid_after_damage,
    })
}

/// [`scan_bytes`] of one of `f`'s files.
pub fn scan_file(
    f: &impl Files,
    name: &str,
    prev: Option<Zxid>,
    skip_through: Option<Zxid>,
) -> Result<FileScan, StorageError> {
    let buf = f
        .read(name)
        .map_err(|e| StorageError::io(&f.path(name), e))?;
    scan_bytes(&buf, prev, skip_through).map_err(|reason| StorageError::BadFile {
        path: f.path(name),
        reason,
    })
}

/// Where appends go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tail {
    pub name: String,
    pub offset: u64,
    pub len: u64,
}

/// The log's state after recovery.
#[derive(Debug, Default)]
pub struct Recovery {
    /// The txns after the snapshot recovery was told of.
    pub txns: Vec<Txn>,
    /// The last zxid in the log, whether or not its txn is in `txns`.
    pub last: Option<Zxid>,
    pub tail: Option<Tail>,
    pub warnings: Vec<String>,
    /// A torn tail was cut off.
    pub torn: bool,
    /// The cut began at a misdirected record ([`is_misdirect`]).
    pub misdirect_cut: bool,
}

/// Read the log files a snapshot at `snapshot` does not cover, in order (as ZooKeeper's
/// `getLogFiles`: the newest file starting at or before it, and every later one); repair a
/// torn tail; refuse corruption before it. Txns at or below `snapshot` are not returned.
pub fn recover_after(f: &mut impl Files, snapshot: Option<Zxid>) -> Result<Recovery, StorageError> {
    recover_after_with(f, snapshot, &mut |_| Ok(()))
}

/// A misdirected write recovery found: the record at the damage is intact but was written for
/// another offset. Unlike a torn write, which only cuts records never acknowledged (each was
/// fsynced before its ACK), it can cut acknowledged ones.
pub fn is_misdirect(d: &Damage) -> bool {
    d.reason.ends_with(MISDIRECTED)
}

const MISDIRECTED: &str = "(a misdirected write)";

/// [`recover_after`], calling `before_cut` with the damage before a tail is cut: the caller
/// makes durable whatever must outlive the evidence (the cut removes it).
pub fn recover_after_with(
    f: &mut impl Files,
    snapshot: Option<Zxid>,
    before_cut: &mut dyn FnMut(&Damage) -> Result<(), StorageError>,
) -> Result<Recovery, StorageError> {
    let mut files = list_logs(f)?;
    if let Some(s) = snapshot
        && let Some(pivot) = files.iter().rposition(|(start, _)| *start <= s)
    {
        // Every txn of an earlier file is below the pivot file's first, so the snapshot has it.
        files.drain(..pivot);
    }
    let mut rec = Recovery::default();
    let mut last: Option<Zxid> = None;
    for (i, (_, name)) in files.iter().enumerate() {
        let scan = scan_file(f, name, last, snapshot)?;
        if scan.last.is_some() {
            rec.last = scan.last;
        }
        if let Some(d) = &scan.damage {
            let later_has_records = files[i + 1..].iter().any(|(_, p)| {
                scan_file(f, p, None, snapshot)
                    .map(|s| s.last.is_some() || s.valid_after_damage.is_some())
                    .unwrap_or(true)
            });
            if scan.valid_after_damage.is_some() || later_has_records {
                ensemble_core::probe!("storage.corrupt-log-refused");
                return Err(StorageError::CorruptLog {
                    path: f.path(name),
                    offset: d.offset,
                    reason: d.reason.clone(),
                });
            }
            rec.warnings.push(format!(
                "{}: torn tail at offset {} ({}); truncating it",
                f.path(name).display(),
                d.offset,
                d.reason
            ));
            rec.torn = true;
            rec.misdirect_cut = is_misdirect(d);
            before_cut(d)?;
            let path = f.path(name);
            let at = |e| StorageError::io(&path, e);
            if scan.end < HEADER_LEN as u64 {
                f.remove(name).map_err(at)?;
            } else {
                f.zero_from(name, scan.end, scan.len).map_err(at)?;
            }
            for (_, p) in &files[i + 1..] {
                let path = f.path(p);
                rec.warnings.push(format!(
                    "{}: empty log after a torn tail; removed",
                    path.display()
                ));
                f.remove(p).map_err(|e| StorageError::io(&path, e))?;
            }
            let dir = f.path("");
            f.sync_dir().map_err(|e| StorageError::io(&dir, e))?;
            if scan.end >= HEADER_LEN as u64 {
                rec.tail = Some(Tail {
                    name: name.clone(),
                    offset: scan.end,
                    len: scan.len,
                });
            }
            rec.txns.extend(scan.txns.into_iter().map(|(_, t)| t));
            return Ok(rec);
        }
        if scan.last.is_some() {
            last = scan.last;
        }
        rec.tail = Some(Tail {
            name: name.clone(),
            offset: scan.end,
            len: scan.len,
        });
        rec.txns.extend(scan.txns.into_iter().map(|(_, t)| t));
    }
    Ok(rec)
}
