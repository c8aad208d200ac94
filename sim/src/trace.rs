//! The run's trace: one line per event. Every line is hashed (FNV-1a, 64 bit) so a run can print
//! one number that changes if anything in it changed; `replay` also keeps the lines.

use std::collections::VecDeque;

pub struct Trace {
    hash: u64,
    lines: u64,
    /// Keep every line (replay) or only the last few (context for a failure).
    keep_all: bool,
    kept: VecDeque<String>,
    tail: usize,
    /// Print lines as they come (replay streams them).
    echo: bool,
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

impl Trace {
    pub fn new(keep_all: bool, echo: bool) -> Trace {
        Trace { hash: FNV_OFFSET, lines: 0, keep_all, kept: VecDeque::new(), tail: 40, echo }
    }

    pub fn line(&mut self, line: String) {
        for b in line.as_bytes() {
            self.hash ^= *b as u64;
            self.hash = self.hash.wrapping_mul(FNV_PRIME);
        }
        self.hash ^= b'\n' as u64;
        self.hash = self.hash.wrapping_mul(FNV_PRIME);
        self.lines += 1;
        if self.echo {
            println!("{line}");
        }
        if self.keep_all || self.tail > 0 {
            self.kept.push_back(line);
            if !self.keep_all && self.kept.len() > self.tail {
                self.kept.pop_front();
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

    /// The last lines kept (the failure's context).
    pub fn tail(&self) -> impl Iterator<Item = &String> {
        self.kept.iter()
    }
}
