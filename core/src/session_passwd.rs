//! Session passwords, as ZooKeeper makes and checks them (`ZooKeeperServer.generatePasswd` /
//! `checkPasswd`): sixteen bytes of `java.util.Random` seeded with the session id XOR the
//! constant `superSecret` (0xB3415C00, the same in every ZooKeeper release). Any server can
//! check a re-attaching client without the password being replicated.
//!
//! Ensemble gives out exactly ZooKeeper's password, so a session moves between the two
//! systems either way: one imported from ZooKeeper's files (`ensemble import`) or taken over at
//! a cut-over re-attaches with the password its client already holds, and one exported back
//! re-attaches to ZooKeeper. This is no weaker than before: the password has never been a
//! secret in either system (ZooKeeper's constant is public, as was Ensemble's former one); it
//! stops a client from attaching to a session id by mistake, and a re-attach grants no
//! identity — authentication and ACL rights belong to the connection, not the session.
//! Passwords of Ensemble's former derivation (servers before this change gave them out) are
//! still taken, so a rolling upgrade expires no session.

use ensemble_proto::proto::SessionId;
use sha1::{Digest, Sha1};

/// ZooKeeper's `superSecret`.
const SUPER_SECRET: i64 = 0xB341_5C00;

/// `java.util.Random`'s linear congruential generator (its documented algorithm).
struct JavaRandom(u64);

impl JavaRandom {
    const MULTIPLIER: u64 = 0x5_DEEC_E66D;
    const MASK: u64 = (1 << 48) - 1;

    fn new(seed: i64) -> JavaRandom {
        JavaRandom((seed as u64 ^ Self::MULTIPLIER) & Self::MASK)
    }

    fn next_int(&mut self) -> i32 {
        self.0 = (self.0.wrapping_mul(Self::MULTIPLIER).wrapping_add(0xB)) & Self::MASK;
        (self.0 >> 16) as i32
    }

    /// `nextBytes`: each int fills up to four bytes, low byte first.
    fn next_bytes(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(4) {
            let mut rnd = self.next_int();
            for b in chunk {
                *b = rnd as u8;
                rnd >>= 8;
            }
        }
    }
}

/// The password of `session` (ZooKeeper's `generatePasswd`).
pub fn generate_passwd(session: SessionId) -> Vec<u8> {
    let mut p = vec![0u8; 16];
    JavaRandom::new(session ^ SUPER_SECRET).next_bytes(&mut p);
    p
}

/// Ensemble's former derivation, still taken on re-attach.
fn legacy_passwd(session: SessionId) -> Vec<u8> {
    let mut h = Sha1::new();
    h.update(session.to_be_bytes());
    h.update(b"ensemble session secret");
    h.finalize()[..16].to_vec()
}

/// Does `passwd` re-attach `session` (ZooKeeper's `checkPasswd`)? `legacy_only` is the
/// planted bug of issue 17: only Ensemble's former derivation is taken, so a session whose
/// client holds ZooKeeper's password is refused as expired.
pub fn check_passwd(session: SessionId, passwd: &[u8], legacy_only: bool) -> bool {
    session != 0
        && ((!legacy_only && passwd == generate_passwd(session).as_slice())
            || passwd == legacy_passwd(session).as_slice())
}

/// The password given out for `session` (planted: Ensemble's former one).
pub fn issued_passwd(session: SessionId, legacy_only: bool) -> Vec<u8> {
    if legacy_only {
        legacy_passwd(session)
    } else {
        generate_passwd(session)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    /// What `new java.util.Random(id ^ 0xB3415C00L).nextBytes(new byte[16])` gives on
    /// OpenJDK 17 (the computation of ZooKeeper 3.8's `generatePasswd`).
    #[test]
    fn zookeepers_password_bytes_for_known_ids() {
        for (id, want) in [
            (0u64, "f22acd4a97e69d6d20a49bb638eadb38"),
            (1, "054cc74a37327db215e702e20c73f005"),
            (0x0100_000a_3b2c_0001, "49e69db12bf92579f9d48e1b20956f44"),
            (u64::MAX, "20f62cb5648dc2d771471c8a2486a9ee"),
            (i64::MAX as u64, "20f62cb5648dc2d771471c8a2486a9ee"),
        ] {
            assert_eq!(hex(&generate_passwd(id as i64)), want, "session {id:#x}");
        }
    }

    #[test]
    fn both_derivations_reattach_and_nothing_else_does() {
        let s = 0x0100_000a_3b2c_0001;
        assert!(check_passwd(s, &generate_passwd(s), false));
        assert!(check_passwd(s, &legacy_passwd(s), false));
        assert!(!check_passwd(s, &generate_passwd(s + 1), false));
        let mut wrong = generate_passwd(s);
        wrong[0] ^= 0x5a;
        assert!(!check_passwd(s, &wrong, false));
        assert!(!check_passwd(s, &[], false));
        assert!(!check_passwd(0, &generate_passwd(0), false));
        // planted: ZooKeeper's password refused
        assert!(!check_passwd(s, &generate_passwd(s), true));
        assert!(check_passwd(s, &issued_passwd(s, true), true));
    }
}
