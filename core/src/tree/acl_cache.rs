//! ZooKeeper's `ReferenceCountedACLCache`: znodes share a handful of distinct ACL lists, so
//! each node keeps a 4-byte index and the lists live here once, with a reference count.

use super::digest;
use ensemble_proto::proto::Acl;
use std::collections::BTreeMap;

#[derive(Clone, Debug, Default)]
pub(crate) struct AclCache {
    entries: Vec<Entry>,
    index: BTreeMap<Vec<Acl>, u32>,
    /// Slots whose count fell to zero, reused last-in first-out (deterministic).
    free: Vec<u32>,
}

#[derive(Clone, Debug)]
struct Entry {
    acl: Vec<Acl>,
    refs: u64,
    /// `digest::acl(acl)`, so the tree digest never rehashes ACL lists.
    hash: u64,
}

impl AclCache {
    /// Take one reference to `acl`, adding it if new.
    pub(crate) fn intern(&mut self, acl: Vec<Acl>) -> u32 {
        if let Some(&i) = self.index.get(&acl) {
            assert_eq!(
                self.entries[i as usize].acl, acl,
                "the index names another slot"
            );
            self.entries[i as usize].refs += 1;
            return i;
        }
        let entry = Entry {
            hash: digest::acl(&acl),
            acl: acl.clone(),
            refs: 1,
        };
        let i = match self.free.pop() {
            Some(i) => {
                assert_eq!(
                    self.entries[i as usize].refs, 0,
                    "a free ACL slot is in use"
                );
                self.entries[i as usize] = entry;
                i
            }
            None => {
                self.entries.push(entry);
                u32::try_from(self.entries.len() - 1).expect("fewer than 2^32 distinct ACLs")
            }
        };
        assert!(self.index.insert(acl, i).is_none(), "an ACL interned twice");
        assert_eq!(
            self.entries[i as usize].refs, 1,
            "a new ACL has one reference"
        );
        assert!(
            self.index.len() <= self.entries.len(),
            "more ACLs than slots"
        );
        i
    }

    /// [`AclCache::intern`] of a list most often already there: no copy unless it is new.
    pub(crate) fn intern_slice(&mut self, acl: &[Acl]) -> u32 {
        if let Some(&i) = self.index.get(acl) {
            self.entries[i as usize].refs += 1;
            return i;
        }
        self.intern(acl.to_vec())
    }

    /// Drop one reference; the slot is freed at zero.
    pub(crate) fn release(&mut self, i: u32) {
        let e = &mut self.entries[i as usize];
        assert!(e.refs > 0, "releasing ACL {i} with no references");
        e.refs -= 1;
        if e.refs == 0 {
            let acl = std::mem::take(&mut e.acl);
            assert_eq!(self.index.remove(&acl), Some(i), "a used ACL unindexed");
            self.free.push(i);
        }
        assert!(
            self.free.len() <= self.entries.len(),
            "more free slots than slots"
        );
    }

    pub(crate) fn get(&self, i: u32) -> &[Acl] {
        let e = &self.entries[i as usize];
        assert!(e.refs > 0, "ACL {i} is not in use");
        &e.acl
    }

    pub(crate) fn hash(&self, i: u32) -> u64 {
        self.entries[i as usize].hash
    }

    pub(crate) fn refs(&self, i: u32) -> u64 {
        self.entries.get(i as usize).map_or(0, |e| e.refs)
    }

    /// Live lists in content order, each with its slot: the canonical table of a snapshot.
    pub(crate) fn sorted(&self) -> impl Iterator<Item = (&Vec<Acl>, u32)> {
        self.index.iter().map(|(acl, &i)| (acl, i))
    }

    /// Number of slots (live or free); every node's index is below it.
    pub(crate) fn slots(&self) -> usize {
        self.entries.len()
    }

    /// A cache with `table` at slots `0..n` and no references yet (snapshot loading); call
    /// [`AclCache::add_ref`] per node, then [`AclCache::drop_unused`].
    pub(crate) fn from_table(table: Vec<Vec<Acl>>) -> AclCache {
        let mut c = AclCache::default();
        for acl in table {
            let i = c.entries.len() as u32;
            c.index.insert(acl.clone(), i);
            c.entries.push(Entry {
                hash: digest::acl(&acl),
                acl,
                refs: 0,
            });
        }
        c
    }

    pub(crate) fn add_ref(&mut self, i: u32) {
        assert!(self.free.is_empty(), "only while a table is loaded");
        self.entries[i as usize].refs += 1;
    }

    pub(crate) fn drop_unused(&mut self) {
        assert!(self.free.is_empty(), "only for a cache fresh from a table");
        for i in 0..self.entries.len() {
            if self.entries[i].refs == 0 {
                let acl = std::mem::take(&mut self.entries[i].acl);
                self.index.remove(&acl);
                self.free.push(i as u32);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ensemble_proto::proto::{Id, perms};

    #[test]
    fn shares_counts_and_reuses_slots() {
        let mut c = AclCache::default();
        let open = Acl::open_unsafe();
        let read = vec![Acl {
            perms: perms::READ,
            id: Id::anyone(),
        }];
        let a = c.intern(open.clone());
        let b = c.intern(open.clone());
        assert_eq!(a, b);
        assert_eq!(c.refs(a), 2);
        let r = c.intern(read.clone());
        assert_ne!(r, a);
        c.release(r);
        assert_eq!(c.refs(r), 0);
        // The freed slot is reused for the next new list.
        let other = vec![Acl {
            perms: perms::WRITE,
            id: Id::anyone(),
        }];
        assert_eq!(c.intern(other.clone()), r);
        assert_eq!(c.get(r), &other[..]);
        c.release(a);
        assert_eq!(c.get(a), &open[..]);
        assert_eq!(c.sorted().count(), 2);
    }
}
