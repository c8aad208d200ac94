//! Jute's primitive encodings: a bounds-checked reader over one record and append-only writers.
//! int = 4 bytes BE, long = 8 bytes BE, bool = 1 byte, buffer/ustring = int length + bytes
//! (-1 = null), vector = int count + items.

use super::{JuteError, MAX_BUFFER};
use crate::proto::{Acl, Id, Stat};

/// Wire size of a `Stat`: 6 longs and 5 ints.
pub(crate) const STAT_LEN: usize = 6 * 8 + 5 * 4;

/// A cursor over one record. Every read checks the bytes that remain, so a hostile length can
/// never make it allocate more than the frame holds.
#[derive(Clone)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, pos: 0 }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    pub(crate) fn offset(&self) -> usize {
        self.pos
    }

    /// What is left, consuming it.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        let r = &self.buf[self.pos..];
        self.pos = self.buf.len();
        r
    }

    /// The record must end exactly here.
    pub(crate) fn finish(&self) -> Result<(), JuteError> {
        match self.remaining() {
            0 => Ok(()),
            n => Err(JuteError::Trailing(n)),
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], JuteError> {
        if self.remaining() < n {
            return Err(JuteError::Truncated {
                offset: self.pos,
                wanted: n - self.remaining(),
            });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], JuteError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    pub(crate) fn int(&mut self) -> Result<i32, JuteError> {
        Ok(i32::from_be_bytes(self.array()?))
    }

    pub(crate) fn long(&mut self) -> Result<i64, JuteError> {
        Ok(i64::from_be_bytes(self.array()?))
    }

    /// Java's `DataInput.readBoolean`: any non-zero byte is true.
    pub(crate) fn bool(&mut self) -> Result<bool, JuteError> {
        Ok(self.array::<1>()?[0] != 0)
    }

    /// A length field for a buffer or string: -1 (null) reads as `None`; anything else must be
    /// non-negative, within `MAX_BUFFER` and within the bytes left.
    fn len(&mut self) -> Result<Option<usize>, JuteError> {
        let offset = self.pos;
        let len = self.int()?;
        if len == -1 {
            return Ok(None);
        }
        let bad = JuteError::BadLength {
            offset,
            len: i64::from(len),
        };
        let n = usize::try_from(len).map_err(|_| bad.clone())?;
        if n > MAX_BUFFER || n > self.remaining() {
            return Err(bad);
        }
        Ok(Some(n))
    }

    /// A buffer; null reads as empty.
    pub(crate) fn buffer(&mut self) -> Result<Vec<u8>, JuteError> {
        Ok(self.buffer_or_null()?.0)
    }

    /// A buffer, and whether it was null (length -1): znode data keeps that apart.
    pub(crate) fn buffer_or_null(&mut self) -> Result<(Vec<u8>, bool), JuteError> {
        match self.len()? {
            None => Ok((Vec::new(), true)),
            Some(n) => Ok((self.take(n)?.to_vec(), false)),
        }
    }

    /// A ustring; null reads as empty. Invalid UTF-8 is refused rather than silently replaced,
    /// because a path altered in transit would name another node.
    pub(crate) fn ustring(&mut self) -> Result<String, JuteError> {
        let offset = self.pos;
        match self.len()? {
            None => Ok(String::new()),
            Some(n) => {
                let bytes = self.take(n)?;
                String::from_utf8(bytes.to_vec()).map_err(|_| JuteError::BadValue {
                    offset,
                    what: "string is not UTF-8",
                })
            }
        }
    }

    /// A vector count: null (-1) reads as empty. Each item takes at least `min_item` bytes, so a
    /// count larger than what could fit is refused before anything is allocated.
    pub(crate) fn count(&mut self, min_item: usize) -> Result<usize, JuteError> {
        let offset = self.pos;
        let len = self.int()?;
        if len == -1 {
            return Ok(0);
        }
        let bad = JuteError::BadLength {
            offset,
            len: i64::from(len),
        };
        let n = usize::try_from(len).map_err(|_| bad.clone())?;
        if n.saturating_mul(min_item.max(1)) > self.remaining() {
            return Err(bad);
        }
        Ok(n)
    }

    pub(crate) fn strings(&mut self) -> Result<Vec<String>, JuteError> {
        let n = self.count(4)?;
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(self.ustring()?);
        }
        Ok(v)
    }

    pub(crate) fn stat(&mut self) -> Result<Stat, JuteError> {
        Ok(Stat {
            czxid: self.long()?,
            mzxid: self.long()?,
            ctime: self.long()?,
            mtime: self.long()?,
            version: self.int()?,
            cversion: self.int()?,
            aversion: self.int()?,
            ephemeral_owner: self.long()?,
            data_length: self.int()?,
            num_children: self.int()?,
            pzxid: self.long()?,
        })
    }

    pub(crate) fn acls(&mut self) -> Result<Vec<Acl>, JuteError> {
        // perms + two string lengths
        let n = self.count(12)?;
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            let perms = self.int()?;
            let scheme = self.ustring()?;
            let id = self.ustring()?;
            v.push(Acl {
                perms,
                id: Id { scheme, id },
            });
        }
        Ok(v)
    }
}

pub(crate) fn put_int(out: &mut Vec<u8>, v: i32) {
    out.extend_from_slice(&v.to_be_bytes());
}

pub(crate) fn put_long(out: &mut Vec<u8>, v: i64) {
    out.extend_from_slice(&v.to_be_bytes());
}

pub(crate) fn put_bool(out: &mut Vec<u8>, v: bool) {
    out.push(u8::from(v));
}

/// Lengths beyond i32 cannot be framed at all; encoders are only handed values that came
/// through `MAX_BUFFER`-bounded paths, so saturating is a formality.
fn len_i32(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

pub(crate) fn put_buffer(out: &mut Vec<u8>, v: &[u8]) {
    put_int(out, len_i32(v.len()));
    out.extend_from_slice(v);
}

/// A buffer, or null (length -1) when `null`.
pub(crate) fn put_data(out: &mut Vec<u8>, v: &[u8], null: bool) {
    if null {
        put_int(out, -1);
    } else {
        put_buffer(out, v);
    }
}

pub(crate) fn put_ustring(out: &mut Vec<u8>, v: &str) {
    put_buffer(out, v.as_bytes());
}

pub(crate) fn put_strings(out: &mut Vec<u8>, v: &[String]) {
    put_int(out, len_i32(v.len()));
    for s in v {
        put_ustring(out, s);
    }
}

pub(crate) fn put_stat(out: &mut Vec<u8>, s: &Stat) {
    put_long(out, s.czxid);
    put_long(out, s.mzxid);
    put_long(out, s.ctime);
    put_long(out, s.mtime);
    put_int(out, s.version);
    put_int(out, s.cversion);
    put_int(out, s.aversion);
    put_long(out, s.ephemeral_owner);
    put_int(out, s.data_length);
    put_int(out, s.num_children);
    put_long(out, s.pzxid);
}

pub(crate) fn put_acls(out: &mut Vec<u8>, v: &[Acl]) {
    put_int(out, len_i32(v.len()));
    for a in v {
        put_int(out, a.perms);
        put_ustring(out, &a.id.scheme);
        put_ustring(out, &a.id.id);
    }
}

/// Runs `body` to append a record, then writes the 4-byte length prefix in front of it.
pub(crate) fn framed(out: &mut Vec<u8>, body: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    body(out);
    let len = len_i32(out.len() - start - 4);
    out[start..start + 4].copy_from_slice(&len.to_be_bytes());
}
