//! Client guarantees (ZooKeeper Programmer's Guide, "ZooKeeper consistency guarantees"):
//! each reply and watch event is checked against the committed history as it arrives
//! (`impl Client` below), and at the end of a run, ephemerals of expired sessions and the
//! linearizability search over every key's history (`wgl`).

use crate::check::{Claim, Violation, normalize, violation};
use crate::client::session::Pending;
use crate::client::{Client, Ctx, SET_WATCHES_XID, WatchClass};
use crate::world::World;
use ensemble_core::zxid::Zxid;
use ensemble_proto::proto::{KeeperError, ReadOp, ReadResult, Reply, Request, Response, perms};

impl World {
    /// The end-of-run checks: the clients' (ephemerals, then linearizability) around the
    /// recipes'.
    pub(crate) fn end_checks(&mut self) -> Result<(), Violation> {
        self.ephemeral_end_checks()?;
        self.recipe_end_checks()?;
        self.wgl_end_check()
    }

    /// `client.ephemeral-lifetime`: sessions the clients were told expired are closed in the
    /// history, and their ephemerals gone.
    fn ephemeral_end_checks(&mut self) -> Result<(), Violation> {
        let now = self.sched.now;
        let r = &self.reference;
        for (s, at) in &self.shared.expired {
            if !r.sessions_closed.contains_key(s) && r.sessions_created.contains_key(s) {
                return Err(violation(
                    Claim::ClientEphemeralLifetime,
                    now,
                    format!(
                        "session 0x{s:x} was reported expired at t={at}ms but was never closed in the committed history"
                    ),
                ));
            }
            let left = r.tree().session_ephemerals(*s);
            if !left.is_empty() {
                return Err(violation(
                    Claim::ClientEphemeralLifetime,
                    now,
                    format!(
                        "session 0x{s:x} expired at t={at}ms but its ephemerals remain: {left:?}"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// `client.linearizable-wgl`: a linearizability cross-check by search on small per-key
    /// histories.
    fn wgl_end_check(&mut self) -> Result<(), Violation> {
        let now = self.sched.now;
        if let Some(v) = crate::check::wgl::check_history(
            &self.shared.ops,
            &self.reference,
            now,
            &mut self.stats.wgl,
        ) {
            return Err(v);
        }
        Ok(())
    }
}

impl Client {
    /// `client.refused`: an undecodable request is answered with ZooKeeper's error for it,
    /// and one it answers Unimplemented closes the connection next.
    pub(crate) fn check_refused(
        &mut self,
        now: u64,
        xid: i32,
        bad: &crate::client::refused::BadFrame,
        reply: &Reply,
    ) -> Result<(), Violation> {
        if *reply != Err(bad.expect) {
            return Err(violation(
                Claim::ClientRefused,
                now,
                format!(
                    "client {} session 0x{:x}: {} (xid {xid}) was answered {reply:?}, where ZooKeeper answers {:?}",
                    self.idx,
                    self.session_id(),
                    bad.what,
                    bad.expect
                ),
            ));
        }
        self.refused_close = bad.close;
        if bad.close {
            ensemble_core::probe!("sim.client.refused-closed");
        }
        Ok(())
    }

    /// `client.refused`: nothing comes on a connection after the Unimplemented answer that
    /// closes it.
    // `what` is formatted only into a violation: every reply and event asks this
    pub(crate) fn check_open_after_refusal(
        &self,
        now: u64,
        what: std::fmt::Arguments<'_>,
    ) -> Result<(), Violation> {
        if !self.refused_close {
            return Ok(());
        }
        Err(violation(
            Claim::ClientRefused,
            now,
            format!(
                "client {} session 0x{:x}: {what} came on the connection after a request of an unknown opcode was answered Unimplemented, where ZooKeeper closes it",
                self.idx,
                self.session_id()
            ),
        ))
    }

    /// The order claims on a reply's zxid, before the session takes it as seen: a write
    /// of the session is not ordered before what an earlier request saw (`client.fifo`), no
    /// reply goes back (`client.monotonic-reads`) or below the last sync's floor
    /// (`client.sync-read`), and no registered watch lags behind it (`client.watch-missed`).
    pub(crate) fn check_reply_zxid(
        &mut self,
        cx: &mut Ctx,
        xid: i32,
        zxid: i64,
    ) -> Result<(), Violation> {
        let now = cx.now;
        let sid = self.session_id();
        let is_write = self
            .pending
            .front()
            .is_some_and(|p| p.xid == xid && p.request.is_write());
        if zxid > 0 && is_write && zxid < self.seen_floor {
            return Err(violation(
                Claim::ClientFifo,
                now,
                format!(
                    "client {} session 0x{sid:x}: write xid {xid} committed at {}, yet an earlier request of this session was answered at {}: that earlier request saw this later write",
                    self.idx,
                    Zxid(zxid as u64),
                    Zxid(self.seen_floor as u64)
                ),
            ));
        }
        if zxid > 0 {
            if zxid < self.seen_floor {
                return Err(violation(
                    Claim::ClientMonotonicReads,
                    now,
                    format!(
                        "client {} session 0x{sid:x}: reply xid {xid} at zxid {} after it had seen {}",
                        self.idx,
                        Zxid(zxid as u64),
                        Zxid(self.seen_floor as u64)
                    ),
                ));
            }
            if zxid < self.sync_floor {
                return Err(violation(
                    Claim::ClientSyncRead,
                    now,
                    format!(
                        "client {} session 0x{sid:x}: after sync, reply xid {xid} at zxid {} misses writes acknowledged through {} before the sync",
                        self.idx,
                        Zxid(zxid as u64),
                        Zxid(self.sync_floor as u64)
                    ),
                ));
            }
            if xid == SET_WATCHES_XID {
                // A watch for a node's creation may be missed if the node was created and
                // deleted while the client was away (ZooKeeper's documented exception):
                // re-base those before judging.
                let z = Zxid(zxid as u64);
                for ((path, class), reg) in self.watches.iter_mut() {
                    if *class == WatchClass::Exist && cx.reference.node_at(path, z).is_none() {
                        *reg = (*reg).max(z);
                    }
                }
            }
            self.check_watches(cx, Zxid(zxid as u64), xid)?;
        }
        Ok(())
    }

    /// Check one reply against the committed history: ACLs, a write's result and order
    /// (`client.write-result`, `client.linearizable-writes`, `client.fifo`) and a read's
    /// value (`client.read-value`); a successful sync raises the session's floors.
    pub(crate) fn check_reply(
        &mut self,
        cx: &mut Ctx,
        p: &Pending,
        zxid: i64,
        reply: &Reply,
    ) -> Result<(), Violation> {
        let now = cx.now;
        let sid = self.session_id();
        let z = Zxid(zxid.max(0) as u64);
        let sent = &self.auth_ids[..p.auths.min(self.auth_ids.len())];
        let ids = crate::check::acl::Identities {
            sent,
            now: &self.auth_ids,
        };
        crate::check::acl::check_reply(
            self.idx,
            &p.request,
            (reply, zxid),
            &ids,
            cx.reference,
            now,
        )?;
        if p.request.is_write() && !matches!(*p.request, Request::CloseSession) {
            check_path_verdict(self.idx, &p.request, reply, now)?;
            let info = cx.reference.txns.get(&z);
            let mine = info.is_some_and(|t| t.session == sid && t.cxid == p.xid);
            if reply.is_ok() && !mine {
                return Err(violation(
                    Claim::ClientWriteResult,
                    now,
                    format!(
                        "client {} session 0x{sid:x} xid {}: write acknowledged at zxid {z} but the committed txn there is {:?}",
                        self.idx,
                        p.xid,
                        info.map(|t| (format!("0x{:x}", t.session), t.cxid))
                    ),
                ));
            }
            if mine {
                let expected = info.and_then(|t| t.reply.clone());
                if let Some(exp) = expected
                    && normalize(&exp) != normalize(reply)
                {
                    return Err(violation(
                        Claim::ClientWriteResult,
                        now,
                        format!(
                            "client {} xid {} {:?}: reply {:?} but the committed txn {z} gives {:?}",
                            self.idx, p.xid, p.request, reply, exp
                        ),
                    ));
                }
                if zxid <= p.floor {
                    return Err(violation(
                        Claim::ClientLinearizableWrites,
                        now,
                        format!(
                            "client {} xid {}: write committed at {z}, before {} which was acknowledged before this write began",
                            self.idx,
                            p.xid,
                            Zxid(p.floor as u64)
                        ),
                    ));
                }
                if zxid <= self.last_write_zxid {
                    return Err(violation(
                        Claim::ClientFifo,
                        now,
                        format!(
                            "client {} session 0x{sid:x}: write xid {} at {z} ordered before its earlier write at {}",
                            self.idx,
                            p.xid,
                            Zxid(self.last_write_zxid as u64)
                        ),
                    ));
                }
                self.last_write_zxid = zxid;
                if zxid > cx.shared.max_acked {
                    cx.shared.max_acked = zxid;
                }
                cx.shared.acked.push(z);
                if cx.shared.last_write_ok > 0 {
                    let gap = now - cx.shared.last_write_ok;
                    cx.shared.max_write_gap = cx.shared.max_write_gap.max(gap);
                }
                cx.shared.last_write_ok = now;
            }
        } else if matches!(*p.request, Request::Sync { .. }) && reply.is_ok() {
            self.sync_floor = self.sync_floor.max(p.floor);
            self.synced_at = self.synced_at.max(Some(p.invoked));
        } else if let Request::GetEphemerals { prefix } = &*p.request {
            let expected = cx.reference.expected_ephemerals(sid, prefix, z);
            if let (Some(expected), Ok(_)) = (expected, reply) {
                if normalize(reply) == expected {
                    if matches!(&expected, Ok(Response::GetEphemerals { paths }) if !paths.is_empty())
                    {
                        ensemble_core::probe!("sim.read.ephemerals");
                    }
                    return Ok(());
                }
                return Err(violation(
                    Claim::ClientReadValue,
                    now,
                    format!(
                        "client {} session 0x{sid:x} getEphemerals({prefix:?}) answered {:?} at zxid {z}, but the session's ephemerals there are {:?}",
                        self.idx, reply, expected
                    ),
                ));
            }
        } else if let Request::MultiRead(ops) = &*p.request {
            // each op judged as the read it stands for, at the reply's one zxid
            if let Ok(Response::MultiRead(results)) = reply {
                if results.len() != ops.len() {
                    return Err(violation(
                        Claim::ClientReadValue,
                        now,
                        format!(
                            "client {} multiRead of {} ops answered {} results",
                            self.idx,
                            ops.len(),
                            results.len()
                        ),
                    ));
                }
                for (op, result) in ops.iter().zip(results) {
                    let (request, reply) = read_op_as_read(op, result);
                    self.check_read_value(cx, &request, &reply, z, now)?;
                }
                ensemble_core::probe!("sim.read.multi-read");
            }
        } else {
            check_read_path_verdict(self.idx, &p.request, reply, now)?;
            self.check_read_value(cx, &p.request, reply, z, now)?;
        }
        Ok(())
    }

    /// `client.read-value` of one read (a multiRead's op, one at a time): the committed state
    /// at the reply's zxid, `/zookeeper/config` as the configuration in force.
    fn check_read_value(
        &self,
        cx: &Ctx,
        request: &Request,
        reply: &Reply,
        z: Zxid,
        now: u64,
    ) -> Result<(), Violation> {
        let Some(expected) = cx.reference.expected_read(request, z) else {
            return Ok(());
        };
        // Every simulated server has the text of its configuration (`config_node`), so
        // its `/zookeeper/config` never reads as the tree's empty node, through getData or
        // exists (whose stat gives the data's length): ZooKeeper's initConfigInZKDatabase
        // writes the configuration in force there at start.
        // Once a reconfig has committed, the super user may write the node like any other
        // (null data or other text): a server then answers what was written.
        let written_over = written_over_reconfig(cx.reference, z);
        let empty = !written_over
            && match (request, reply) {
                (Request::GetData { path, .. }, Ok(Response::GetData { data, .. })) => {
                    path == ensemble_core::path::CONFIG && data.is_empty()
                }
                (Request::Exists { path, .. }, Ok(Response::Stat(stat))) => {
                    path == ensemble_core::path::CONFIG && stat.data_length == 0
                }
                _ => false,
            };
        if empty {
            let path = ensemble_core::path::CONFIG;
            return Err(violation(
                Claim::ClientReadValue,
                now,
                format!(
                    "client {} {:?} of {path} answered the tree's empty node at zxid {z}, not the configuration in force",
                    self.idx,
                    request.opcode()
                ),
            ));
        }
        let got = stored_config_form(cx.reference, request, normalize(reply), z, &expected);
        let relevant = matches!(got, Ok(_) | Err(KeeperError::NoNode));
        if relevant && got != expected {
            return Err(violation(
                Claim::ClientReadValue,
                now,
                format!(
                    "client {} {:?} answered {:?} at zxid {z}, but the committed state there is {:?}",
                    self.idx, request, got, expected
                ),
            ));
        }
        match got {
            Ok(Response::GetDataNull { .. }) => ensemble_core::probe!("sim.read.null-data"),
            Ok(Response::AllChildrenNumber(_)) => {
                ensemble_core::probe!("sim.read.all-children")
            }
            _ => {}
        }
        Ok(())
    }

    /// Could the server have withheld the event at `zc` of a watch the current connection's
    /// setWatches re-set ahead of the addAuth digests sent after it? It checks READ when the
    /// event fires (ZooKeeper 3.8.4+, CVE-2024-23944), with the ids the connection holds then,
    /// and spends the watch either way: if those digests had not arrived yet and the ids the
    /// connection surely held do not let it READ the node (as it was at `zc`, or just before
    /// for a deletion), the event may rightly never come. ZooKeeper's own client sends its
    /// auth after SetWatches too, so the same holds there.
    fn withheld_before_auth(&self, cx: &Ctx, path: &str, class: WatchClass, zc: Zxid) -> bool {
        if !self.rewatched.contains(&(path.to_string(), class)) {
            return false;
        }
        let node = cx.reference.node_at(path, zc).or_else(|| {
            cx.reference
                .last_below(zc)
                .and_then(|z| cx.reference.node_at(path, z))
        });
        let withheld = node
            .is_some_and(|n| !crate::check::acl::allows(&n.acl, perms::READ, &self.rewatched_ids));
        if withheld {
            ensemble_core::probe!("sim.watch.withheld-before-auth");
        }
        withheld
    }

    /// `client.watch-answer`: checkWatches and removeWatches answer from the connection's
    /// watches, which are exactly the ones the client holds: set by its reads, addWatch and
    /// setWatches, spent by the events it got (an event comes before the reply of any request
    /// the server took after firing it), removed by removeWatches. So `NoWatcher` comes
    /// exactly when the client holds no watch of the type on the path. Only paths whose ACL
    /// lets everyone READ are asked about (no event is withheld there).
    pub(crate) fn check_watch_answer(
        &self,
        cx: &Ctx,
        request: &Request,
        reply: &Reply,
    ) -> Result<(), Violation> {
        let (Request::CheckWatches { path, kind } | Request::RemoveWatches { path, kind }) =
            request
        else {
            return Ok(());
        };
        let found = match reply {
            Ok(_) => true,
            Err(KeeperError::NoWatcher) => false,
            Err(_) => return Ok(()),
        };
        let bits = crate::client::watcher_bits(*kind);
        let has = |c: WatchClass| self.watches.contains_key(&(path.clone(), c));
        let (persistent, recursive) = self.persistent.get(path).copied().unwrap_or_default();
        let holds = (bits.data && (has(WatchClass::Data) || has(WatchClass::Exist)))
            || (bits.child && has(WatchClass::Child))
            || (bits.persistent && persistent)
            || (bits.recursive && recursive);
        if found != holds {
            return Err(violation(
                Claim::ClientWatchAnswer,
                cx.now,
                format!(
                    "client {} {:?} on {path} ({kind:?}) answered {}, but the client holds {} watch of that type there",
                    self.idx,
                    request.opcode(),
                    if found { "ok" } else { "NoWatcher" },
                    if holds { "a" } else { "no" }
                ),
            ));
        }
        if found {
            ensemble_core::probe!("sim.watch.answer-found");
        } else {
            ensemble_core::probe!("sim.watch.answer-none");
        }
        Ok(())
    }

    /// No registered watch may lag behind what the client has seen.
    pub(crate) fn check_watches(&self, cx: &Ctx, seen: Zxid, xid: i32) -> Result<(), Violation> {
        for ((path, class), reg) in &self.watches {
            if let Some((zc, kind)) = cx.reference.first_trigger_after(path, *reg, class.kinds())
                && zc <= seen
                && !self.withheld_before_auth(cx, path, *class, zc)
            {
                return Err(violation(
                    Claim::ClientWatchMissed,
                    cx.now,
                    format!(
                        "client {} watch {class:?} on {path} (set at {reg}): {kind:?} committed at {zc}, yet the client got reply xid {xid} at {seen} without the event",
                        self.idx
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// One op of a multiRead and its result as the single read it stands for (no watch), so the
/// read's judgement applies to it.
fn read_op_as_read(op: &ReadOp, result: &ReadResult) -> (Request, Reply) {
    let request = match op {
        ReadOp::GetData { path } => Request::GetData {
            path: path.clone(),
            watch: false,
        },
        ReadOp::GetChildren { path } => Request::GetChildren {
            path: path.clone(),
            watch: false,
        },
    };
    let reply = match result {
        ReadResult::GetData { data, stat } => Ok(Response::GetData {
            data: data.clone(),
            stat: *stat,
        }),
        ReadResult::GetDataNull { stat } => Ok(Response::GetDataNull { stat: *stat }),
        ReadResult::GetChildren(children) => Ok(Response::GetChildren {
            children: children.clone(),
        }),
        ReadResult::Error(e) => Err(*e),
    };
    (request, reply)
}

/// The version of the last reconfig committed at or before `at`, 0 if none (a reconfig's zxid
/// has a non-zero counter, a first configuration's version none).
fn reconfig_at(reference: &crate::check::Reference, at: Zxid) -> u64 {
    reference
        .configs
        .range(..=at.0)
        .rev()
        .map(|(v, _)| *v)
        .find(|v| v & 0xffff_ffff != 0)
        .unwrap_or(0)
}

/// Was `/zookeeper/config` written by a client (the super user) since the last reconfig
/// committed at or before `at`? A reconfig leaves dataVersion -1, a client's setData 0 or more.
fn written_over_reconfig(reference: &crate::check::Reference, at: Zxid) -> bool {
    reconfig_at(reference, at) != 0
        && reference
            .node_at(ensemble_core::path::CONFIG, at)
            .is_some_and(|n| n.stat.version != -1)
}

/// `/zookeeper/config` reads as the configuration the server has in force when its tree holds
/// an older one (ZooKeeper's initConfigInZKDatabase writes the node from its QuorumVerifier,
/// outside the replicated txns, at start and whenever it takes a newer configuration):
/// * before any reconfig, the server's first configuration (dataVersion -1) instead of the
///   empty data the tree stores: a reply whose text is the run's first members (a joiner's:
///   those plus itself) at version 0 or at an epoch's zxid (the version the first established leader gives it) is compared
///   in its stored form;
/// * a committed configuration newer than the one at the read's zxid, which a server has in
///   force ahead of its tree (its dynamic file's at a restart, one a peer told it while
///   LOOKING): a reply (dataVersion -1) whose text is exactly a committed reconfig's,
///   version and members, newer than the stored one at `at`, is taken as the stored form
///   (`expected`). Only committed configurations are in `Reference::configs`, so a text at
///   a version no reconfig made, or with other members, still fails.
///
/// Any other text stays as it came and fails the comparison.
fn stored_config_form(
    reference: &crate::check::Reference,
    request: &Request,
    reply: Reply,
    at: Zxid,
    expected: &Reply,
) -> Reply {
    use ensemble_core::membership::Membership;
    let Some(first) = reference.configs.get(&0) else {
        return reply;
    };
    let parse = |data: &[u8]| {
        std::str::from_utf8(data)
            .ok()
            .and_then(|t| Membership::parse(t).ok())
    };
    // a joiner's own first configuration is the run's first one plus itself (a higher id)
    let own_first = |m: &Membership| {
        m.servers == first.servers
            || (m.servers.len() == first.servers.len() + 1
                && first
                    .servers
                    .iter()
                    .all(|(id, s)| m.servers.get(id) == Some(s))
                && m.servers.keys().next_back() > first.servers.keys().next_back())
    };
    let first_config =
        |data: &[u8]| parse(data).is_some_and(|m| own_first(&m) && m.version & 0xffff_ffff == 0);
    let committed_ahead = |data: &[u8]| {
        // the tree's configuration, whatever the node's data says
        let stored = reconfig_at(reference, at);
        parse(data)
            .is_some_and(|m| m.version > stored && reference.configs.get(&m.version) == Some(&m))
    };
    if let (Request::GetData { path, .. }, Ok(Response::GetData { data, stat })) = (request, &reply)
        && path == ensemble_core::path::CONFIG
        && stat.version == -1
        && !first_config(data)
        && committed_ahead(data)
    {
        ensemble_core::probe!("sim.config.read-ahead-of-tree");
        return expected.clone();
    }
    match (request, reply) {
        (Request::GetData { path, .. }, Ok(Response::GetData { data, mut stat }))
            if path == ensemble_core::path::CONFIG && stat.version == -1 && first_config(&data) =>
        {
            stat.version = 0;
            stat.data_length = 0;
            Ok(Response::GetData {
                data: Vec::new(),
                stat,
            })
        }
        (Request::Exists { path, .. }, Ok(Response::Stat(mut stat)))
            if path == ensemble_core::path::CONFIG && stat.version == -1 =>
        {
            // exists gives the length of the text in force: before any reconfig the tree's
            // node is empty (dataVersion 0, or more after the super user's null writes);
            // after one, a server with a newer committed configuration in force than its
            // tree's answers that one's length
            let stored = reference.node_at(ensemble_core::path::CONFIG, at);
            match (&stored, expected) {
                (Some(n), _) if n.data.is_empty() => {
                    stat.version = n.stat.version;
                    stat.data_length = 0;
                }
                (Some(n), Ok(Response::Stat(e))) if e.data_length != stat.data_length => {
                    let stored = parse(&n.data).map_or(0, |m| m.version);
                    let ahead = reference
                        .configs
                        .iter()
                        .any(|(v, m)| *v > stored && m.to_text().len() as i32 == stat.data_length);
                    if ahead {
                        ensemble_core::probe!("sim.config.read-ahead-of-tree");
                        stat.data_length = e.data_length;
                    }
                }
                _ => {}
            }
            Ok(Response::Stat(stat))
        }
        (_, reply) => reply,
    }
}

/// `client.read-value` on a plain read's path: ZooKeeper's getData, exists and getChildren
/// look the path up as sent, with none of `PathUtils`'s rules, so a path that is not a
/// znode's is answered NoNode (and "" is the root), never BadArguments. A path holding NUL
/// is left alone (the one a server refuses).
fn check_read_path_verdict(
    client: usize,
    request: &Request,
    reply: &Reply,
    now: u64,
) -> Result<(), Violation> {
    let path = match request {
        Request::GetData { path, .. }
        | Request::Exists { path, .. }
        | Request::GetChildren { path, .. }
        | Request::GetChildren2 { path, .. } => path,
        _ => return Ok(()),
    };
    if path.contains('\0') || !matches!(reply, Err(KeeperError::BadArguments)) {
        if path.is_empty() && reply.is_ok() {
            ensemble_core::probe!("sim.read.empty-path");
        }
        return Ok(());
    }
    Err(violation(
        Claim::ClientReadValue,
        now,
        format!(
            "client {client} {:?} of {path:?} answered BadArguments, but ZooKeeper's read ops check no path rule: NoNode for a path that names no znode, the root for \"\"",
            request.opcode()
        ),
    ))
}

/// `client.write-result` on a plain create's path: refused BadArguments exactly when
/// ZooKeeper's `PathUtils` refuses the path (before anything else is looked at), so never
/// created; a valid path is never refused BadArguments. Outside `/zookeeper`, whose nodes
/// have rules of their own.
fn check_path_verdict(
    client: usize,
    request: &Request,
    reply: &Reply,
    now: u64,
) -> Result<(), Violation> {
    use ensemble_proto::proto::{CreateMode, CreateOp};
    let request = match request {
        Request::NullData { request, .. } => &**request,
        r => r,
    };
    let Request::Create {
        op: CreateOp::Create | CreateOp::Create2,
        path,
        mode,
        ..
    } = request
    else {
        return Ok(());
    };
    if path.starts_with("/zookeeper") {
        return Ok(());
    }
    let sequential = matches!(
        mode,
        CreateMode::PersistentSequential | CreateMode::EphemeralSequential
    );
    let valid = crate::check::model::zk_path_valid(path, sequential);
    let wrong = match reply {
        Ok(_) => !valid,
        Err(KeeperError::BadArguments) => valid,
        Err(_) => false,
    };
    match reply {
        Err(KeeperError::BadArguments) if !valid => ensemble_core::probe!("sim.path.refused"),
        Ok(_) if !path.is_ascii() => ensemble_core::probe!("sim.path.non-ascii"),
        _ => {}
    }
    if wrong {
        return Err(violation(
            Claim::ClientWriteResult,
            now,
            format!(
                "client {client} create of {path:?}{} answered {reply:?}, but ZooKeeper's PathUtils {} that path",
                if sequential { " (sequential)" } else { "" },
                if valid { "accepts" } else { "refuses" }
            ),
        ));
    }
    Ok(())
}
