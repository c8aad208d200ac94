//! What a reconnecting client presents as its session's password. Most present the one their
//! connect got (ZooKeeper's derivation); some, by the client's reconnect counter (no draw, so
//! no other draw moves), present something else, as a client guessing another's session or a
//! client of an Ensemble server before the password change would:
//!
//! * a byte of its password flipped (every 8th from the first): refused;
//! * the legacy password of its own session (every 8th from the third): Ensemble's former
//!   derivation, which servers still take so that a rolling upgrade expires no session, so it
//!   re-attaches;
//! * the legacy password of another session (every 8th from the fifth): refused.
//!
//! The legacy derivation is computed here from the session id, on its own (SHA-1 of the id,
//! big-endian, then the former secret's text; the first sixteen bytes), not through the core.

use ensemble_proto::proto::SessionId;
use sha1::{Digest, Sha1};

/// What one reconnect presents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Presented {
    /// The password the connect gave.
    Issued,
    /// A byte of it flipped: neither derivation takes it.
    Flipped,
    /// Ensemble's former password of this session: taken.
    LegacyOwn,
    /// Ensemble's former password of another session: refused.
    LegacyOther,
}

impl Presented {
    /// The `n`th reconnect with a session (counted from 1).
    pub fn nth(n: u64) -> Presented {
        match n % 8 {
            1 => Presented::Flipped,
            3 => Presented::LegacyOwn,
            5 => Presented::LegacyOther,
            _ => Presented::Issued,
        }
    }

    /// Must the server refuse it as expired?
    pub fn refused(self) -> bool {
        matches!(self, Presented::Flipped | Presented::LegacyOther)
    }

    /// The password sent for `session`, whose client holds `issued`.
    pub fn passwd(self, session: SessionId, issued: &[u8]) -> Vec<u8> {
        match self {
            Presented::Issued => issued.to_vec(),
            Presented::Flipped => {
                let mut p = issued.to_vec();
                match p.first_mut() {
                    Some(b) => *b ^= 0x5a,
                    None => p.push(0x5a),
                }
                p
            }
            Presented::LegacyOwn => legacy_passwd(session),
            // another server's session (ids carry their server on top), so never ours
            Presented::LegacyOther => legacy_passwd(session ^ (1 << 56)),
        }
    }
}

/// Ensemble's former password of `session`.
pub fn legacy_passwd(session: SessionId) -> Vec<u8> {
    let mut h = Sha1::new();
    h.update(session.to_be_bytes());
    h.update(b"ensemble session secret");
    h.finalize()[..16].to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_passwords_differ_by_session_and_from_the_issued_one() {
        let s = 0x0100_000a_3b2c_0001;
        let own = Presented::LegacyOwn.passwd(s, &[1; 16]);
        let other = Presented::LegacyOther.passwd(s, &[1; 16]);
        assert_eq!(own.len(), 16);
        assert_ne!(own, other);
        assert_ne!(own, legacy_passwd(s + 1));
        assert_ne!(Presented::Flipped.passwd(s, &[1; 16]), vec![1; 16]);
        // the core takes its own session's legacy password and refuses another's
        assert!(ensemble_core::session_passwd::check_passwd(s, &own, false));
        assert!(!ensemble_core::session_passwd::check_passwd(
            s, &other, false
        ));
        let kinds: Vec<_> = (1..=8).map(Presented::nth).collect();
        assert_eq!(kinds.iter().filter(|k| k.refused()).count(), 2);
        assert!(kinds.contains(&Presented::LegacyOwn));
    }
}
