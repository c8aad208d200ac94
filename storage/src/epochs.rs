//! `acceptedEpoch` and `currentEpoch` in `dataDir/version-2/`, as ZooKeeper keeps them (one
//! decimal number each). `acceptedEpoch` has a second line: the leader it was accepted from,
//! in the same file so the pair changes atomically.
//!
//! A last line `#crc32 <8 hex digits>` holds the CRC-32 of the bytes before it, so a flipped
//! bit that leaves a number parsable (`4` into `5`) is caught; ZooKeeper reads the first line
//! only, and files without the line (written before it existed) still load. Anything else
//! after the expected lines is refused: a flip cannot turn the checksum line into one that is
//! ignored.

use crate::StorageError;
use crate::files::Files;
use ensemble_core::{Epochs, Zxid};

pub const ACCEPTED: &str = "acceptedEpoch";
pub const CURRENT: &str = "currentEpoch";

/// The checksum line's prefix.
const CRC_LINE: &str = "#crc32 ";

/// `text` with its checksum line.
fn with_crc(text: String) -> String {
    let sum = crate::codec::crc(text.as_bytes());
    format!("{text}{CRC_LINE}{sum:08x}\n")
}

/// `acceptedEpoch`'s text.
pub fn accepted_text(e: &Epochs) -> String {
    with_crc(format!("{}\n{}\n", e.accepted_epoch, e.accepted_from))
}

/// `currentEpoch`'s text.
pub fn current_text(e: &Epochs) -> String {
    with_crc(format!("{}\n", e.current_epoch))
}

/// `currentEpoch`'s text with a second line: the last zxid durable when it was written
/// (`through`), the history that epoch's sync left on this disk. Recovery that finds less
/// than that removes the file (the server vouches for nothing until it syncs again).
/// ZooKeeper reads the first line only.
pub fn current_text_through(e: &Epochs, through: Zxid) -> String {
    with_crc(format!("{}\n{through}\n", e.current_epoch))
}

/// The second line of `currentEpoch`, if it has one: the last zxid durable when it was
/// written (`current_text_through`).
pub fn read_current_through(f: &impl Files) -> Result<Option<Zxid>, StorageError> {
    let Some(lines) = lines(f, CURRENT, 2)? else {
        return Ok(None);
    };
    lines.get(1).map(|l| through_line(f, l)).transpose()
}

/// `currentEpoch`'s second line: a zxid as `Zxid` displays it (lowercase hex after `0x`), so
/// that a flipped bit, in it or in a checksum line it could pass for, is refused.
fn through_line(f: &impl Files, line: &str) -> Result<Zxid, StorageError> {
    line.strip_prefix("0x")
        .filter(|h| {
            !h.is_empty()
                && h.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
        .and_then(|h| u64::from_str_radix(h, 16).ok())
        .map(Zxid)
        .ok_or_else(|| bad(f, CURRENT, "second line is not a zxid"))
}

/// The value lines of an epoch file, its checksum (when it has one) verified; at most `max`
/// value lines.
fn verified_lines(
    f: &impl Files,
    name: &str,
    text: &str,
    max: usize,
) -> Result<Vec<String>, StorageError> {
    let body = match text.rfind(CRC_LINE) {
        Some(at) => {
            let line = text[at + CRC_LINE.len()..].trim_end_matches('\n');
            // lowercase only, as written: `A` for `a` is a flipped bit too
            let hex = line
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
            let sum = (line.len() == 8 && hex)
                .then(|| u32::from_str_radix(line, 16).ok())
                .flatten()
                .ok_or_else(|| bad(f, name, "malformed checksum line"))?;
            let body = &text[..at];
            if !body.is_empty() && !body.ends_with('\n') {
                return Err(bad(f, name, "checksum line not on a line of its own"));
            }
            if crate::codec::crc(body.as_bytes()) != sum {
                return Err(bad(f, name, "checksum mismatch"));
            }
            body
        }
        None => text,
    };
    let lines: Vec<String> = body
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    if lines.len() > max {
        return Err(bad(f, name, "unexpected lines after the epoch"));
    }
    Ok(lines)
}

fn lines(f: &impl Files, name: &str, max: usize) -> Result<Option<Vec<String>>, StorageError> {
    match f.read(name) {
        Ok(bytes) => {
            let t = String::from_utf8(bytes).map_err(|_| bad(f, name, "not text"))?;
            verified_lines(f, name, &t, max).map(Some)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StorageError::io(&f.path(name), e)),
    }
}

fn bad(f: &impl Files, name: &str, what: &str) -> StorageError {
    ensemble_core::probe!("storage.epoch-refused");
    StorageError::BadFile {
        path: f.path(name),
        reason: what.to_string(),
    }
}

/// Missing files mean a fresh server (epochs 0).
pub fn read_epochs(f: &impl Files) -> Result<Epochs, StorageError> {
    let mut e = Epochs::default();
    if let Some(lines) = lines(f, ACCEPTED, 2)? {
        let first = lines.first().ok_or_else(|| bad(f, ACCEPTED, "empty"))?;
        e.accepted_epoch = first
            .parse()
            .map_err(|_| bad(f, ACCEPTED, "first line is not an epoch"))?;
        if let Some(from) = lines.get(1) {
            e.accepted_from = from
                .parse()
                .map_err(|_| bad(f, ACCEPTED, "second line is not a server id"))?;
        }
    }
    if let Some(lines) = lines(f, CURRENT, 2)? {
        let first = lines.first().ok_or_else(|| bad(f, CURRENT, "empty"))?;
        e.current_epoch = first.parse().map_err(|_| bad(f, CURRENT, "not an epoch"))?;
        if let Some(line) = lines.get(1) {
            through_line(f, line)?;
        }
    }
    Ok(e)
}
