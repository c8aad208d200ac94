//! ZooKeeper's txn log files (`FileTxnLog`): a `FileHeader` (magic "ZKLG", version 2, dbid),
//! then records — the Adler32 of the entry (a long), the entry as a buffer (TxnHeader, txn,
//! since 3.6 a TxnDigest), the end-of-record byte 'B' — and the preallocated zero tail, where
//! a zero-length entry marks the end (`Util.readTxnBytes`).

use super::jute::{Adler32, InputArchive, JuteError};
use super::records::{TxnDigest, TxnHeader, decode_txn_entry};
use ensemble_core::ResolvedTxn;

pub const LOG_MAGIC: [u8; 4] = *b"ZKLG";
pub const VERSION: i32 = 2;
const END_OF_RECORD: u8 = b'B';

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogRecord {
    /// The record's offset in the file.
    pub offset: u64,
    pub hdr: TxnHeader,
    pub txn: ResolvedTxn,
    pub digest: Option<TxnDigest>,
}

/// How the records ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogEnd {
    /// At the preallocated zeros or the end of the file.
    Clean,
    /// A last record cut short (a crash while writing it): ZooKeeper stops reading there too.
    Torn { offset: u64, reason: String },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZkLog {
    pub dbid: i64,
    pub records: Vec<LogRecord>,
    pub end: LogEnd,
}

/// Decode a log file. A record whose checksum does not match, or whose checksummed bytes do
/// not decode, is corruption (an error naming its offset); a record cut by the end of the
/// file is a torn tail.
pub fn decode(file: &[u8]) -> Result<ZkLog, JuteError> {
    let mut i = InputArchive::new(file, 0);
    let magic = i.int("magic")?;
    if magic.to_be_bytes() != LOG_MAGIC {
        return Err(JuteError {
            offset: 0,
            reason: format!("not a ZooKeeper txn log (magic {magic:#010x}, not \"ZKLG\")"),
        });
    }
    let version = i.int("version")?;
    if version != VERSION {
        return Err(JuteError {
            offset: 4,
            reason: format!("log format version {version}, only {VERSION} is known"),
        });
    }
    let dbid = i.long("dbid")?;
    let mut records = Vec::new();
    let end = loop {
        let at = i.offset();
        if i.remaining() == 0 {
            break LogEnd::Clean;
        }
        let torn = |reason: String| LogEnd::Torn { offset: at, reason };
        if i.remaining() < 12 {
            // Preallocation pads with zeros; a short zero remainder is the padding's end.
            if i.rest().iter().all(|&b| b == 0) {
                break LogEnd::Clean;
            }
            break torn("a record header cut short".into());
        }
        let crc = i.long("checksum")?;
        let len = i.int("entry length")?;
        if len == 0 {
            // The preallocated tail; anything but zeros after it is not ours to read, as
            // ZooKeeper does not.
            if crc != 0 {
                return Err(JuteError {
                    offset: at,
                    reason: format!("an empty entry with checksum {crc:#x}"),
                });
            }
            break LogEnd::Clean;
        }
        let Ok(n) = usize::try_from(len) else {
            return Err(JuteError {
                offset: at + 8,
                reason: format!("negative entry length {len}"),
            });
        };
        if n > i.remaining() {
            break torn(format!(
                "an entry of {n} bytes with {} left in the file",
                i.remaining()
            ));
        }
        let body_at = i.offset();
        let entry = i.rest_take(n);
        if i.remaining() == 0 {
            break torn("the end-of-record byte is missing".into());
        }
        let eor = i.byte("end of record")?;
        let sum = Adler32::of(entry);
        if sum != crc {
            // A torn write leaves zeros (preallocated) where the entry's tail never landed.
            if i.remaining() == 0 || file[body_at as usize..].iter().all(|&b| b == 0) {
                break torn("checksum mismatch in the last record".into());
            }
            return Err(JuteError {
                offset: at,
                reason: format!("checksum {crc:#x} but the entry sums to {sum:#x}"),
            });
        }
        if eor != END_OF_RECORD {
            // ZooKeeper: "Last transaction was partial."
            break torn(format!("end-of-record byte {eor:#04x}, not 'B'"));
        }
        let (hdr, txn, digest) = decode_txn_entry(entry, body_at)?;
        if let Some(last) = records.last().map(|r: &LogRecord| r.hdr.zxid)
            && hdr.zxid <= last
        {
            return Err(JuteError {
                offset: at,
                reason: format!("zxid {:#x} after {last:#x}: out of order", hdr.zxid),
            });
        }
        records.push(LogRecord {
            offset: at,
            hdr,
            txn,
            digest,
        });
    };
    Ok(ZkLog { dbid, records, end })
}
