//! The read side of the data tree: answering reads (with their ACL checks), and the queries
//! the server, 4lw and the checkers ask; its consistency check.

use super::*;

impl DataTree {
    /// Answer a read (exists, getData, getACL, getChildren, getChildren2, multiRead,
    /// getAllChildrenNumber) as FinalRequestProcessor does, with `auth` the connection's ids.
    /// getEphemerals needs the session: use [`DataTree::read_as`].
    pub fn read(&self, request: &Request, auth: &[Id]) -> Reply {
        match request {
            Request::GetEphemerals { .. } => Err(KeeperError::Unimplemented),
            _ => self.read_as(request, auth, 0),
        }
    }

    /// [`DataTree::read`] for a client of `session` (getEphemerals answers its ephemerals).
    /// An invalid path is BadArguments (ZooKeeper's client never sends one).
    pub fn read_as(&self, request: &Request, auth: &[Id], session: SessionId) -> Reply {
        match request {
            // READ on an existing node since ZooKeeper 3.8.4 (ZOOKEEPER-2590).
            Request::Exists { path, .. } => {
                let node = self.node_at(path)?;
                if !acl::check(self.acls.get(node.meta.acl), perms::READ, auth) {
                    return Err(KeeperError::NoAuth);
                }
                Ok(Response::Stat(self.client_stat(node)))
            }
            Request::GetData { path, .. } => {
                let (data, stat) = self.get_data_checked(path, auth)?;
                assert_eq!(
                    stat.data_length as usize,
                    data.len(),
                    "{path}: stat and data"
                );
                if self.is_null_data(path) {
                    assert!(data.is_empty(), "{path}: null data with bytes");
                    return Ok(Response::GetDataNull { stat });
                }
                Ok(Response::GetData { data, stat })
            }
            Request::GetAcl { path } => {
                let node = self.node_at(path)?;
                let acl = self.acls.get(node.meta.acl);
                if !acl::check(acl, perms::READ | perms::ADMIN, auth) {
                    return Err(KeeperError::NoAuth);
                }
                let unmasked =
                    crate::plant::active(self.opts.plant, crate::plant::Plant::GetAclUnmasked);
                let acl = if acl::check(acl, perms::ADMIN, auth) || unmasked {
                    acl.to_vec()
                } else {
                    acl::mask_digests(acl)
                };
                Ok(Response::GetAcl {
                    acl,
                    stat: self.client_stat(node),
                })
            }
            Request::GetChildren { path, .. } => {
                let (children, _) = self.get_children_checked(path, auth)?;
                Ok(Response::GetChildren { children })
            }
            Request::GetChildren2 { path, .. } => {
                let (children, stat) = self.get_children_checked(path, auth)?;
                Ok(Response::GetChildren2 { children, stat })
            }
            Request::GetAllChildrenNumber { path } => {
                let node = self.node_at(path)?;
                if !acl::check(self.acls.get(node.meta.acl), perms::READ, auth) {
                    return Err(KeeperError::NoAuth);
                }
                let n = self.all_children_number(path).expect("exists");
                assert!(
                    n >= node.meta.num_children as usize,
                    "{path}: fewer descendants than children"
                );
                Ok(Response::AllChildrenNumber(
                    i32::try_from(n).unwrap_or(i32::MAX),
                ))
            }
            Request::MultiRead(ops) => Ok(Response::MultiRead(
                ops.iter()
                    .map(|op| match op {
                        ReadOp::GetChildren { path } => match self.get_children_checked(path, auth)
                        {
                            Ok((children, _)) => ReadResult::GetChildren(children),
                            Err(e) => ReadResult::Error(e),
                        },
                        ReadOp::GetData { path } => match self.get_data_checked(path, auth) {
                            Ok((_, stat)) if self.is_null_data(path) => {
                                ReadResult::GetDataNull { stat }
                            }
                            Ok((data, stat)) => ReadResult::GetData { data, stat },
                            Err(e) => ReadResult::Error(e),
                        },
                    })
                    .collect(),
            )),
            Request::GetEphemerals { prefix } => Ok(Response::GetEphemerals {
                paths: self.ephemerals(session, prefix),
            }),
            _ => Err(KeeperError::Unimplemented),
        }
    }

    pub(super) fn get_data_checked(
        &self,
        path: &str,
        auth: &[Id],
    ) -> Result<(Vec<u8>, Stat), KeeperError> {
        let node = self.node_at(path)?;
        if !acl::check(self.acls.get(node.meta.acl), perms::READ, auth) {
            return Err(KeeperError::NoAuth);
        }
        Ok((node.data.to_vec(), self.client_stat(node)))
    }

    pub(super) fn get_children_checked(
        &self,
        path: &str,
        auth: &[Id],
    ) -> Result<(Vec<String>, Stat), KeeperError> {
        let node = self.node_at(path)?;
        if !acl::check(self.acls.get(node.meta.acl), perms::READ, auth) {
            return Err(KeeperError::NoAuth);
        }
        Ok((
            self.children_of(path, node.meta.num_children as usize),
            self.client_stat(node),
        ))
    }

    /// The names of `path`'s children, sorted. The map is ordered by full path, so a node's
    /// children are the keys under `path/` minus their own descendants, which are skipped
    /// with one seek per child that has children.
    pub(super) fn children_of(&self, path: &str, expected: usize) -> Vec<String> {
        let prefix = if path == path::ROOT {
            String::from("/")
        } else {
            format!("{path}/")
        };
        let end = prefix_end(&prefix);
        let mut out = Vec::with_capacity(expected);
        let mut from = prefix.clone();
        loop {
            let mut next = None;
            let range = (
                Bound::Included(from.as_str()),
                Bound::Excluded(end.as_str()),
            );
            for (key, _) in self.nodes.range::<str, _>(range) {
                let rest = &key[prefix.len()..];
                if rest.is_empty() {
                    continue; // the root itself
                }
                match rest.find('/') {
                    None => out.push(rest.to_string()),
                    Some(i) => {
                        // A descendant of child `rest[..i]`: jump past all of them.
                        next = Some(format!("{prefix}{}0", &rest[..i]));
                        break;
                    }
                }
            }
            match next {
                Some(n) => from = n,
                None => break,
            }
        }
        assert_eq!(
            out.len(),
            expected,
            "{path}: child count and children disagree"
        );
        out
    }

    /// `DataTree.getAllChildrenNumber`: every descendant, not only children.
    pub fn all_children_number(&self, path: &str) -> Option<usize> {
        self.nodes.get(path)?;
        if path == path::ROOT {
            return Some(self.nodes.len() - 1);
        }
        let prefix = format!("{path}/");
        let end = prefix_end(&prefix);
        Some(
            self.nodes
                .range::<str, _>((
                    Bound::Included(prefix.as_str()),
                    Bound::Excluded(end.as_str()),
                ))
                .count(),
        )
    }

    /// getEphemerals: the session's ephemerals whose path starts with `prefix` (a plain string
    /// prefix, as ZooKeeper; a blank prefix or `/` means all), sorted.
    pub fn ephemerals(&self, session: SessionId, prefix: &str) -> Vec<String> {
        // Java's String.trim(): strip chars <= U+0020 at both ends.
        let trimmed = prefix.trim_matches(|c: char| c <= ' ');
        let all = trimmed.is_empty() || trimmed == path::ROOT;
        self.ephemerals
            .get(&session)
            .into_iter()
            .flatten()
            .filter(|p| all || p.starts_with(prefix))
            .map(|p| p.to_string())
            .collect()
    }

    // ----------------------------------------------------------- accessors

    pub fn last_zxid(&self) -> Zxid {
        self.last_zxid
    }

    /// The Stat a client sees, or `None` if there is no such node.
    pub fn stat(&self, path: &str) -> Option<Stat> {
        self.nodes.get(path).map(|n| self.client_stat(n))
    }

    pub fn exists(&self, path: &str) -> bool {
        self.nodes.contains_key(path)
    }

    /// Data and Stat, without an ACL check (for the server's own use and the checkers).
    pub fn get_data(&self, path: &str) -> Option<(&[u8], Stat)> {
        self.nodes
            .get(path)
            .map(|n| (&n.data[..], self.client_stat(n)))
    }

    /// Children names, sorted, without an ACL check.
    pub fn get_children(&self, path: &str) -> Option<Vec<String>> {
        self.nodes
            .get(path)
            .map(|n| self.children_of(path, n.meta.num_children as usize))
    }

    /// A node's ACL (by slot) for its watch events; no copy when anyone may READ.
    pub(super) fn watch_acl(&self, slot: u32) -> WatchAcl {
        let acl = self.acls.get(slot);
        let anyone_reads = acl.is_empty()
            || acl.iter().any(|a| {
                a.perms & perms::READ != 0 && a.id.scheme == acl::WORLD && a.id.id == acl::ANYONE
            });
        (!anyone_reads).then(|| Arc::from(acl))
    }

    /// The node's ACL, without an ACL check.
    pub fn get_acl(&self, path: &str) -> Option<&[Acl]> {
        self.nodes.get(path).map(|n| self.acls.get(n.meta.acl))
    }

    /// The node's EphemeralType (container, TTL, ephemeral owner).
    pub fn ephemeral_type_of(&self, path: &str) -> Option<EphemeralType> {
        self.nodes
            .get(path)
            .map(|n| self.ephemeral_type(n.meta.ephemeral_owner))
    }

    /// Every node path, sorted (for checkers; O(n)).
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.nodes.keys().map(|k| &**k)
    }

    /// Open sessions with their timeouts.
    pub fn sessions(&self) -> &BTreeMap<SessionId, i32> {
        &self.sessions
    }

    /// The session's ephemerals, sorted.
    pub fn session_ephemerals(&self, session: SessionId) -> Vec<String> {
        self.ephemerals
            .get(&session)
            .into_iter()
            .flatten()
            .map(|p| p.to_string())
            .collect()
    }

    /// Sessions owning at least one ephemeral, with their ephemerals, sorted (the `dump` 4lw).
    pub fn ephemerals_by_session(&self) -> Vec<(SessionId, Vec<String>)> {
        self.ephemerals
            .iter()
            .map(|(s, set)| (*s, set.iter().map(|p| p.to_string()).collect()))
            .collect()
    }

    /// ZooKeeper's znode count (`zk_znode_count`): its node map also holds `""` as an alias of
    /// the root, so it is one more than the number of znodes.
    pub fn node_count(&self) -> usize {
        self.nodes.len() + 1
    }

    pub fn ephemerals_count(&self) -> usize {
        self.ephemerals.values().map(|s| s.len()).sum()
    }

    /// `DataTree.approximateDataSize`: Σ over znodes of path length + data length.
    pub fn approximate_data_size(&self) -> u64 {
        self.data_size
    }

    /// What the container reaper should delete at `now` (ms): containers that had children and
    /// have none, and childless TTL nodes not modified for longer than their TTL. Sorted.
    pub fn reapable(&self, now: i64) -> Vec<String> {
        let mut out: Vec<String> = self
            .containers
            .iter()
            .chain(self.ttls.iter())
            .filter(|p| {
                self.nodes
                    .get(&***p)
                    .is_some_and(|n| self.is_reapable(n, now))
            })
            .map(|p| p.to_string())
            .collect();
        out.sort_unstable();
        out
    }

    /// A deterministic hash of the whole state (nodes, ACLs, sessions, last zxid). Kept up to
    /// date by every change, so this is O(1).
    pub fn digest(&self) -> u64 {
        let mut h = digest::Hasher::new(digest::TAG_TREE);
        h.u64(self.nodes_digest)
            .u64(self.sessions_digest)
            .u64(self.last_zxid.0)
            .u64(self.nodes.len() as u64);
        h.finish()
    }

    /// Recompute every derived structure from the nodes and compare: child counts, the
    /// ephemeral/container/TTL indexes, ACL reference counts, data size and digest. O(n log n);
    /// for tests and the simulator's checkers.
    pub fn check_consistency(&self) -> Result<(), String> {
        for p in &self.null_data {
            match self.nodes.get(p) {
                Some(n) if n.data.is_empty() => {}
                _ => return Err(format!("null-data {p} is missing or has data")),
            }
        }
        let mut children: BTreeMap<&str, u32> = BTreeMap::new();
        let mut digest_sum = 0u64;
        let mut size = 0u64;
        let mut acl_refs: BTreeMap<u32, u64> = BTreeMap::new();
        let mut eph: BTreeMap<SessionId, BTreeSet<&str>> = BTreeMap::new();
        let (mut containers, mut ttls) = (BTreeSet::new(), BTreeSet::new());
        for (path, node) in &self.nodes {
            if let Some(parent) = path::parent(path) {
                if !self.nodes.contains_key(parent) {
                    return Err(format!("{path} has no parent"));
                }
                *children.entry(parent).or_default() += 1;
            }
            digest_sum = digest_sum.wrapping_add(node_hash(&self.acls, path, node));
            size += path::java_len(path) + node.data.len() as u64;
            *acl_refs.entry(node.meta.acl).or_default() += 1;
            match self.ephemeral_type(node.meta.ephemeral_owner) {
                EphemeralType::Normal(s) => {
                    eph.entry(s).or_default().insert(path);
                }
                EphemeralType::Container => {
                    containers.insert(&**path);
                }
                EphemeralType::Ttl(_) => {
                    ttls.insert(&**path);
                }
                EphemeralType::Void => {}
            }
        }
        for (path, node) in &self.nodes {
            let n = children.get(&**path).copied().unwrap_or(0);
            if node.meta.num_children != n {
                return Err(format!(
                    "{path}: numChildren {} but {n} children",
                    node.meta.num_children
                ));
            }
        }
        for (slot, n) in &acl_refs {
            if self.acls.refs(*slot) != *n {
                return Err(format!(
                    "ACL slot {slot}: {} references counted, {n} used",
                    self.acls.refs(*slot)
                ));
            }
        }
        let indexed: BTreeMap<SessionId, BTreeSet<&str>> = self
            .ephemerals
            .iter()
            .map(|(s, set)| (*s, set.iter().map(|p| &**p).collect()))
            .collect();
        if indexed != eph {
            return Err("ephemeral index differs from the nodes".into());
        }
        if self
            .containers
            .iter()
            .map(|p| &**p)
            .collect::<BTreeSet<_>>()
            != containers
            || self.ttls.iter().map(|p| &**p).collect::<BTreeSet<_>>() != ttls
        {
            return Err("container/TTL index differs from the nodes".into());
        }
        self.check_quota_index()?;
        if size != self.data_size {
            return Err(format!("data size {} but {size} counted", self.data_size));
        }
        if digest_sum != self.nodes_digest {
            return Err("node digest differs from a recomputation".into());
        }
        let sessions = self
            .sessions
            .iter()
            .fold(0u64, |a, (s, t)| a.wrapping_add(digest::session(*s, *t)));
        if sessions != self.sessions_digest {
            return Err("session digest differs from a recomputation".into());
        }
        Ok(())
    }
}
