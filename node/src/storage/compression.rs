//! Snapshot compression, as ZooKeeper's `zookeeper.snapshot.compression.method` selects it
//! (`SnapStream.StreamMode`): `gz` and `snappy` as ZooKeeper names them, plus `zstd`; none
//! (the default, ZooKeeper's `CHECKED`) writes the plain checksummed file. The method shows in
//! the file name as ZooKeeper puts it there (`snapshot.<zxid>.gz`, `.snappy`; ours `.zst`),
//! and recovery reads whichever it finds, so the setting can change between restarts.

use std::fmt;
use std::io::{self, Read, Write};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SnapshotCompression {
    /// ZooKeeper's `CHECKED`: no compression, a checksum (here the file's header).
    #[default]
    None,
    Gz,
    Snappy,
    Zstd,
}

impl SnapshotCompression {
    pub const ALL: [SnapshotCompression; 4] = [
        SnapshotCompression::None,
        SnapshotCompression::Gz,
        SnapshotCompression::Snappy,
        SnapshotCompression::Zstd,
    ];

    /// The setting's value, case-insensitive as ZooKeeper compares it. ZooKeeper falls back to
    /// no compression for a value it does not know; a typo silently costing the disk space the
    /// operator meant to save is refused here instead.
    pub fn parse(value: &str) -> Result<SnapshotCompression, String> {
        match value.trim().to_ascii_lowercase().as_str() {
            "" | "checked" | "none" => Ok(SnapshotCompression::None),
            "gz" => Ok(SnapshotCompression::Gz),
            "snappy" => Ok(SnapshotCompression::Snappy),
            "zstd" => Ok(SnapshotCompression::Zstd),
            other => Err(format!(
                "snapshot compression method '{other}' is not one of gz, snappy, zstd (or empty \
                 for none)"
            )),
        }
    }

    /// The file name's suffix after `snapshot.<zxid>`, without the dot; `None` for none.
    pub fn extension(self) -> Option<&'static str> {
        match self {
            SnapshotCompression::None => None,
            SnapshotCompression::Gz => Some("gz"),
            SnapshotCompression::Snappy => Some("snappy"),
            SnapshotCompression::Zstd => Some("zst"),
        }
    }

    pub fn from_extension(ext: &str) -> Option<SnapshotCompression> {
        SnapshotCompression::ALL
            .into_iter()
            .find(|m| m.extension() == Some(ext))
    }

    /// A writer compressing into `out`; [`Encoder::finish`] ends the stream.
    pub fn encoder<W: Write>(self, out: W) -> io::Result<Encoder<W>> {
        Ok(match self {
            SnapshotCompression::None => Encoder::None(out),
            SnapshotCompression::Gz => Encoder::Gz(flate2::write::GzEncoder::new(
                out,
                flate2::Compression::default(),
            )),
            SnapshotCompression::Snappy => {
                Encoder::Snappy(Box::new(snap::write::FrameEncoder::new(out)))
            }
            SnapshotCompression::Zstd => {
                let mut e = zstd::stream::write::Encoder::new(out, ZSTD_LEVEL)?;
                // The frame carries its own checksum, as gzip's and snappy's frames do.
                e.include_checksum(true)?;
                Encoder::Zstd(e)
            }
        })
    }

    /// A reader of what `input` decompresses to, checked as [`Self::decompress`] checks it.
    pub fn decoder<'a>(
        self,
        input: impl Read + Send + 'a,
    ) -> io::Result<Box<dyn Read + Send + 'a>> {
        Ok(match self {
            SnapshotCompression::None => Box::new(input),
            SnapshotCompression::Gz => Box::new(flate2::read::MultiGzDecoder::new(input)),
            SnapshotCompression::Snappy => Box::new(snap::read::FrameDecoder::new(input)),
            SnapshotCompression::Zstd => Box::new(zstd::stream::read::Decoder::new(input)?),
        })
    }

    /// Everything `input` decompresses to. Each format's own checksums are checked on the way
    /// (gzip's CRC-32, snappy's per-frame CRC-32C, zstd's content checksum).
    pub fn decompress(self, input: impl Read) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        match self {
            SnapshotCompression::None => {
                let mut input = input;
                input.read_to_end(&mut out)?;
            }
            SnapshotCompression::Gz => {
                flate2::read::MultiGzDecoder::new(input).read_to_end(&mut out)?;
            }
            SnapshotCompression::Snappy => {
                snap::read::FrameDecoder::new(input).read_to_end(&mut out)?;
            }
            SnapshotCompression::Zstd => {
                zstd::stream::read::Decoder::new(input)?.read_to_end(&mut out)?;
            }
        }
        Ok(out)
    }
}

impl fmt::Display for SnapshotCompression {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(match self {
            SnapshotCompression::None => "none",
            SnapshotCompression::Gz => "gz",
            SnapshotCompression::Snappy => "snappy",
            SnapshotCompression::Zstd => "zstd",
        })
    }
}

/// zstd's default level: most of the ratio at a speed near snappy's.
const ZSTD_LEVEL: i32 = 3;

/// A compressing writer of one of the methods.
pub enum Encoder<W: Write> {
    None(W),
    Gz(flate2::write::GzEncoder<W>),
    // boxed: its frame buffers would make every encoder as large
    Snappy(Box<snap::write::FrameEncoder<W>>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
}

impl<W: Write> Encoder<W> {
    /// End the compressed stream and hand back the writer under it.
    pub fn finish(self) -> io::Result<W> {
        match self {
            Encoder::None(w) => Ok(w),
            Encoder::Gz(e) => e.finish(),
            Encoder::Snappy(e) => e.into_inner().map_err(|e| e.into_error()),
            Encoder::Zstd(e) => e.finish(),
        }
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::None(w) => w.write(buf),
            Encoder::Gz(e) => e.write(buf),
            Encoder::Snappy(e) => e.write(buf),
            Encoder::Zstd(e) => e.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::None(w) => w.flush(),
            Encoder::Gz(e) => e.flush(),
            Encoder::Snappy(e) => e.flush(),
            Encoder::Zstd(e) => e.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_method_round_trips_and_names_its_files() {
        let data: Vec<u8> = (0..300_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        for m in SnapshotCompression::ALL {
            let mut e = m.encoder(Vec::new()).unwrap();
            e.write_all(&data).unwrap();
            let packed = e.finish().unwrap();
            if m != SnapshotCompression::None {
                assert!(packed.len() < data.len() / 2, "{m}: {}", packed.len());
            }
            assert_eq!(m.decompress(&packed[..]).unwrap(), data, "{m}");
            assert_eq!(SnapshotCompression::parse(&m.to_string()), Ok(m));
            if let Some(ext) = m.extension() {
                assert_eq!(SnapshotCompression::from_extension(ext), Some(m));
            }
        }
        assert_eq!(
            SnapshotCompression::parse("GZ"),
            Ok(SnapshotCompression::Gz)
        );
        assert_eq!(
            SnapshotCompression::parse(""),
            Ok(SnapshotCompression::None)
        );
        assert!(SnapshotCompression::parse("lz4").is_err());
    }

    #[test]
    fn a_damaged_compressed_stream_is_an_error() {
        // Not all alike: flipping a copy's offset within a run of one byte changes nothing.
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7919 % 253) as u8).collect();
        for m in &SnapshotCompression::ALL[1..] {
            let mut e = m.encoder(Vec::new()).unwrap();
            e.write_all(&data).unwrap();
            let mut packed = e.finish().unwrap();
            let mid = packed.len() / 2;
            packed[mid] ^= 0x5a;
            assert!(
                m.decompress(&packed[..]).is_err(),
                "{m}: a flipped byte decompressed"
            );
        }
    }
}
