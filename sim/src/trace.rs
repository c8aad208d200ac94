//! The run's trace: one line per event. Every line is hashed (FNV-1a, 64 bit) so a run can print
//! one number that changes if anything in it changed; `replay` also prints the lines. Lines are
//! hashed as they are formatted, without building strings, unless they are to be printed.

use std::fmt::{self, Write};

pub struct Trace {
    hash: u64,
    lines: u64,
    /// Print lines as they come (replay streams them), keeping the last few for context.
    echo: bool,
    tail: std::collections::VecDeque<String>,
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
const TAIL: usize = 40;

/// Feeds formatted text to the hash (and to a string when printing).
struct HashWriter<'a> {
    hash: &'a mut u64,
    out: Option<&'a mut String>,
}

impl Write for HashWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        // FNV-1a over 8-byte words (then the tail bytes): fast, and stable across platforms
        let mut h = *self.hash;
        let mut chunks = s.as_bytes().chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            h ^= u64::from_le_bytes(w);
            h = h.wrapping_mul(FNV_PRIME);
        }
        for b in chunks.remainder() {
            h ^= *b as u64;
            h = h.wrapping_mul(FNV_PRIME);
        }
        *self.hash = h;
        if let Some(o) = self.out.as_mut() {
            o.push_str(s);
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
        }
    }

    pub fn line(&mut self, now: u64, who: impl fmt::Display, role: &str, what: fmt::Arguments) {
        let mut text = String::new();
        let mut w = HashWriter {
            hash: &mut self.hash,
            out: self.echo.then_some(&mut text),
        };
        let _ = writeln!(w, "{now:>9} {who:<4} {role:<9} {what}");
        self.lines += 1;
        if self.echo {
            text.pop();
            println!("{text}");
            self.tail.push_back(text);
            if self.tail.len() > TAIL {
                self.tail.pop_front();
            }
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
