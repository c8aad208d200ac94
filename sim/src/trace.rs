//! The run's trace: one line per event, hashed (FNV-1a, 64 bit) so a run can print one number
//! that changes if anything in it changed; `replay` also prints the lines.
//!
//! Frequent lines are given as data ([`Line`]): a run that only hashes feeds their fields to the
//! hash and never formats them (formatting was a quarter of a seed's time). Rare lines are
//! formatted straight into the hash, without building strings. Either way the hash depends only
//! on the run, so the same seed on the same build gives the same hash in any process.

use std::fmt::{self, Write};

pub struct Trace {
    hash: u64,
    lines: u64,
    /// Print lines as they come (replay streams them), keeping the last few for context.
    echo: bool,
    tail: std::collections::VecDeque<String>,
    /// Keep every line as a record instead of printing it (filtered replay, the explorer).
    records: Option<Vec<Rec>>,
}

/// One trace line kept whole: its number (from 1, in trace order), time, subject (`n3`, `c2`,
/// `net`, `sim`, `ref`), role column and text.
#[derive(Clone, Debug)]
pub struct Rec {
    pub n: u64,
    pub now: u64,
    pub who: String,
    pub role: String,
    pub text: String,
}

impl Rec {
    /// The line as `replay` prints it.
    pub fn line(&self) -> String {
        format!(
            "{:>9} {:<4} {:<9} {}",
            self.now, self.who, self.role, self.text
        )
    }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
const TAIL: usize = 40;

/// Feeds data to the trace hash: FNV-1a over 64-bit words.
pub struct TraceHasher {
    h: u64,
}

impl TraceHasher {
    #[inline]
    pub fn u(&mut self, x: u64) {
        self.h ^= x;
        self.h = self.h.wrapping_mul(FNV_PRIME);
    }

    #[inline]
    pub fn i(&mut self, x: i64) {
        self.u(x as u64)
    }

    /// Bytes, 8 at a time (then the tail, then the length, so "ab"+"c" differs from "a"+"bc").
    pub fn b(&mut self, s: &[u8]) {
        let mut chunks = s.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.u(u64::from_le_bytes(w));
        }
        let mut w = [0u8; 8];
        let rest = chunks.remainder();
        w[..rest.len()].copy_from_slice(rest);
        self.u(u64::from_le_bytes(w));
        self.u(s.len() as u64);
    }

    pub fn s(&mut self, s: &str) {
        self.b(s.as_bytes())
    }
}

/// A trace line given as data: hashed field by field, formatted only to be printed.
pub trait Line {
    /// Feed every field the text shows (and a tag that tells the kind of line apart).
    fn hash(&self, h: &mut TraceHasher);
    fn text(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result;
}

struct Text<'a, L: Line + ?Sized>(&'a L);

impl<L: Line + ?Sized> fmt::Display for Text<'_, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.text(f)
    }
}

/// Feeds formatted text to the hash, 8 bytes at a time whatever pieces the formatter writes
/// (a piece per `write_str` cost a word of padding and a length each).
struct HashWriter<'a> {
    hash: &'a mut TraceHasher,
    word: [u8; 8],
    fill: usize,
    len: u64,
}

impl<'a> HashWriter<'a> {
    fn new(hash: &'a mut TraceHasher) -> Self {
        HashWriter {
            hash,
            word: [0; 8],
            fill: 0,
            len: 0,
        }
    }

    /// The last partial word, then the length (so "ab" differs from "ab\0").
    fn finish(mut self) {
        if self.fill > 0 {
            self.word[self.fill..].fill(0);
            self.hash.u(u64::from_le_bytes(self.word));
        }
        self.hash.u(self.len);
    }
}

impl Write for HashWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut b = s.as_bytes();
        self.len += b.len() as u64;
        while !b.is_empty() {
            let n = (8 - self.fill).min(b.len());
            self.word[self.fill..self.fill + n].copy_from_slice(&b[..n]);
            self.fill += n;
            b = &b[n..];
            if self.fill == 8 {
                self.hash.u(u64::from_le_bytes(self.word));
                self.fill = 0;
            }
        }
        Ok(())
    }
}

/// A short string on the stack (names in trace lines).
#[derive(Default)]
pub struct StackStr {
    buf: [u8; 32],
    len: usize,
}

impl StackStr {
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or("?")
    }
}

impl Write for StackStr {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let b = s.as_bytes();
        let n = b.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&b[..n]);
        self.len += n;
        Ok(())
    }
}

impl Trace {
    pub fn new(echo: bool) -> Trace {
        Trace {
            hash: FNV_OFFSET,
            lines: 0,
            echo,
            tail: Default::default(),
            records: None,
        }
    }

    /// A trace that keeps every line as a [`Rec`] (nothing printed); the hash is the same.
    pub fn recording() -> Trace {
        Trace {
            records: Some(Vec::new()),
            ..Trace::new(false)
        }
    }

    /// The lines kept by a [`Trace::recording`] trace.
    pub fn take_records(&mut self) -> Vec<Rec> {
        self.records.take().unwrap_or_default()
    }

    /// A line given as data. `who` is the line's subject as a number (its [`fmt::Display`] is
    /// what a printed line shows). Printed or not, the hash is the same.
    #[inline]
    pub fn emit<L: Line + ?Sized>(
        &mut self,
        now: u64,
        who: (u64, impl fmt::Display),
        role: &str,
        line: &L,
    ) {
        if self.echo {
            self.print(now, who.1, role, format_args!("{}", Text(line)));
        } else if self.records.is_some() {
            self.record(now, who.1, role, format_args!("{}", Text(line)));
        }
        let mut h = TraceHasher { h: self.hash };
        h.u(now);
        h.u(who.0);
        h.s(role);
        line.hash(&mut h);
        self.hash = h.h;
        self.lines += 1;
    }

    /// A rare line: its text formatted into the hash. `who` as in [`Trace::emit`]: the time,
    /// subject and role are hashed as data, never padded into text.
    pub fn line(
        &mut self,
        now: u64,
        who: (u64, impl fmt::Display),
        role: &str,
        what: fmt::Arguments,
    ) {
        if self.echo {
            self.print(now, &who.1, role, what);
        } else if self.records.is_some() {
            self.record(now, &who.1, role, what);
        }
        let mut h = TraceHasher { h: self.hash };
        h.u(now);
        h.u(who.0);
        h.s(role);
        let mut w = HashWriter::new(&mut h);
        let _ = w.write_fmt(what);
        w.finish();
        self.hash = h.h;
        self.lines += 1;
    }

    fn print(&mut self, now: u64, who: impl fmt::Display, role: &str, what: fmt::Arguments) {
        let text = format!("{now:>9} {who:<4} {role:<9} {what}");
        println!("{text}");
        self.tail.push_back(text);
        if self.tail.len() > TAIL {
            self.tail.pop_front();
        }
    }

    fn record(&mut self, now: u64, who: impl fmt::Display, role: &str, what: fmt::Arguments) {
        let n = self.lines + 1;
        if let Some(r) = self.records.as_mut() {
            r.push(Rec {
                n,
                now,
                who: who.to_string().trim().to_string(),
                role: role.to_string(),
                text: what.to_string(),
            });
        }
    }

    pub fn hash(&self) -> u64 {
        self.hash
    }

    pub fn len(&self) -> u64 {
        self.lines
    }

    pub fn is_empty(&self) -> bool {
        self.lines == 0
    }

    /// The last lines printed (the failure's context, in replay).
    pub fn tail(&self) -> impl Iterator<Item = &String> {
        self.tail.iter()
    }
}
