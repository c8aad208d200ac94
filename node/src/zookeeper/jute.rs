//! Jute's binary archive as ZooKeeper's files use it (`BinaryInputArchive`,
//! `BinaryOutputArchive`): int = 4 bytes BE, long = 8 bytes BE, boolean = 1 byte, buffer and
//! ustring = int length then the bytes (-1: null), vector = int count then the items.
//!
//! The reader counts from the start of the file, so a decoding error names the offset where
//! the file is bad; every length is checked against what is left before anything is copied.

use std::fmt;

/// A decoding failure at `offset` bytes into the (decompressed) file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JuteError {
    pub offset: u64,
    pub reason: String,
}

impl fmt::Display for JuteError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "at offset {}: {}", self.offset, self.reason)
    }
}

/// A bounds-checked cursor; `base` is the file offset of `buf[0]`.
#[derive(Clone)]
pub struct InputArchive<'a> {
    buf: &'a [u8],
    pos: usize,
    base: u64,
}

impl<'a> InputArchive<'a> {
    pub fn new(buf: &'a [u8], base: u64) -> InputArchive<'a> {
        InputArchive { buf, pos: 0, base }
    }

    /// The file offset of the next byte.
    pub fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    pub fn pos(&self) -> usize {
        self.pos
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn error(&self, reason: impl Into<String>) -> JuteError {
        JuteError {
            offset: self.offset(),
            reason: reason.into(),
        }
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], JuteError> {
        if self.remaining() < n {
            return Err(self.error(format!(
                "truncated: {what} needs {n} bytes, {} left",
                self.remaining()
            )));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub fn byte(&mut self, what: &str) -> Result<u8, JuteError> {
        Ok(self.take(1, what)?[0])
    }

    pub fn bool(&mut self, what: &str) -> Result<bool, JuteError> {
        Ok(self.byte(what)? != 0)
    }

    pub fn int(&mut self, what: &str) -> Result<i32, JuteError> {
        let b = self.take(4, what)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn long(&mut self, what: &str) -> Result<i64, JuteError> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_be_bytes(a))
    }

    /// A buffer; `None` for the null buffer (length -1).
    pub fn buffer(&mut self, what: &str) -> Result<Option<&'a [u8]>, JuteError> {
        let at = self.offset();
        let len = self.int(what)?;
        if len == -1 {
            return Ok(None);
        }
        let n = usize::try_from(len).map_err(|_| JuteError {
            offset: at,
            reason: format!("{what}: negative length {len}"),
        })?;
        if n > self.remaining() {
            return Err(JuteError {
                offset: at,
                reason: format!(
                    "{what}: length {n} beyond the {} bytes left",
                    self.remaining()
                ),
            });
        }
        self.take(n, what).map(Some)
    }

    /// A ustring (Java's modified UTF-8 is plain UTF-8 for what ZooKeeper writes here).
    pub fn ustring(&mut self, what: &str) -> Result<String, JuteError> {
        let at = self.offset();
        let bytes = self
            .buffer(what)?
            .ok_or_else(|| self.error(format!("{what}: null string")))?;
        String::from_utf8(bytes.to_vec()).map_err(|_| JuteError {
            offset: at,
            reason: format!("{what}: not UTF-8"),
        })
    }

    /// A vector's count, checked against the bytes left (each item takes at least `min` bytes).
    pub fn count(&mut self, what: &str, min: usize) -> Result<usize, JuteError> {
        let at = self.offset();
        let n = self.int(what)?;
        let n = usize::try_from(n).map_err(|_| JuteError {
            offset: at,
            reason: format!("{what}: negative count {n}"),
        })?;
        if n.saturating_mul(min.max(1)) > self.remaining() {
            return Err(JuteError {
                offset: at,
                reason: format!("{what}: {n} items cannot fit in {} bytes", self.remaining()),
            });
        }
        Ok(n)
    }

    /// The next `n` bytes, which the caller has checked are there.
    pub fn rest_take(&mut self, n: usize) -> &'a [u8] {
        assert!(n <= self.remaining(), "rest_take past the end");
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        s
    }

    pub fn rest(&mut self) -> &'a [u8] {
        let r = &self.buf[self.pos..];
        self.pos = self.buf.len();
        r
    }
}

/// `BinaryOutputArchive` into memory.
#[derive(Default)]
pub struct OutputArchive {
    pub out: Vec<u8>,
}

impl OutputArchive {
    pub fn byte(&mut self, v: u8) {
        self.out.push(v);
    }

    pub fn bool(&mut self, v: bool) {
        self.out.push(u8::from(v));
    }

    pub fn int(&mut self, v: i32) {
        self.out.extend_from_slice(&v.to_be_bytes());
    }

    pub fn long(&mut self, v: i64) {
        self.out.extend_from_slice(&v.to_be_bytes());
    }

    pub fn buffer(&mut self, v: Option<&[u8]>) {
        match v {
            None => self.int(-1),
            Some(b) => {
                self.int(i32::try_from(b.len()).expect("a jute buffer is under 2 GiB"));
                self.out.extend_from_slice(b);
            }
        }
    }

    pub fn ustring(&mut self, s: &str) {
        self.buffer(Some(s.as_bytes()));
    }
}

/// `java.util.zip.Adler32`, the checksum of snapshots and log records.
#[derive(Clone, Copy)]
pub struct Adler32 {
    a: u32,
    b: u32,
}

impl Default for Adler32 {
    fn default() -> Adler32 {
        Adler32 { a: 1, b: 0 }
    }
}

impl Adler32 {
    const MOD: u32 = 65521;
    /// Bytes that can be summed before the sums must be reduced (zlib's NMAX).
    const NMAX: usize = 5552;

    pub fn update(&mut self, data: &[u8]) {
        for chunk in data.chunks(Self::NMAX) {
            for &x in chunk {
                self.a += u32::from(x);
                self.b += self.a;
            }
            self.a %= Self::MOD;
            self.b %= Self::MOD;
        }
    }

    pub fn value(&self) -> i64 {
        i64::from((self.b << 16) | self.a)
    }

    pub fn of(data: &[u8]) -> i64 {
        let mut a = Adler32::default();
        a.update(data);
        a.value()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adler32_known_values() {
        // zlib's reference values
        assert_eq!(Adler32::of(b""), 1);
        assert_eq!(Adler32::of(b"Wikipedia"), 0x11e6_0398);
        let big = vec![0xffu8; 100_000];
        let mut a = Adler32::default();
        a.update(&big[..33]);
        a.update(&big[33..]);
        assert_eq!(a.value(), Adler32::of(&big));
    }

    #[test]
    fn reader_names_offsets_and_refuses_lengths_beyond_the_input() {
        let mut o = OutputArchive::default();
        o.int(7);
        o.ustring("/a");
        o.buffer(None);
        o.int(1000);
        let mut i = InputArchive::new(&o.out, 100);
        assert_eq!(i.int("x").unwrap(), 7);
        assert_eq!(i.ustring("p").unwrap(), "/a");
        assert_eq!(i.buffer("d").unwrap(), None);
        let e = i.buffer("d").unwrap_err();
        assert_eq!(e.offset, 100 + 4 + 6 + 4);
        assert!(e.reason.contains("beyond"), "{e}");
    }
}
