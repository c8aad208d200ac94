//! The log and what commits from it (ZooKeeper's SyncRequestProcessor, CommitProcessor and
//! FinalRequestProcessor, for both roles): logging txns in order, cutting the log back on a
//! TRUNC, and applying committed txns to the tree, which fires watches, binds and closes
//! sessions' connections, answers the writes waiting here and paces the snapshot.

use crate::client_pipeline::{ConnPhase, Wait};
use crate::effect::{Action, Ready, Write};
use crate::plant::Plant;
use crate::role::RoleMut;
use crate::server::ConnId;
use crate::txn::Txn;
use crate::zookeeper_server::ZooKeeperServer;
use crate::zxid::Zxid;
use std::sync::Arc;

impl ZooKeeperServer {
    /// Log txns (after the caller made sure they extend the history in zxid order).
    pub(crate) fn append(&mut self, txns: Vec<Arc<Txn>>, out: &mut Ready) {
        if txns.is_empty() {
            return;
        }
        self.log_in_memory(&txns);
        out.push(Write::Append { txns });
    }

    /// Add txns to the history without writing them (yet): the caller logs them later, in one
    /// `Write::Append`.
    pub(crate) fn log_in_memory(&mut self, txns: &[Arc<Txn>]) {
        for t in txns {
            self.log.append(Arc::clone(t));
        }
        if txns.iter().any(|t| t.op.new_membership().is_some()) {
            self.refresh_pending();
        }
        assert!(txns.is_empty() || txns.last().is_some_and(|t| t.zxid == self.last_logged()));
    }

    /// Drop every logged txn after `to`. Only txns never applied may go: ZAB guarantees a
    /// committed txn is in every later leader's history, so a TRUNC never reaches one.
    pub(crate) fn truncate(&mut self, to: Zxid, out: &mut Ready) {
        assert!(
            to >= self.tree.last_zxid(),
            "TRUNC to {} below the applied {} on server {}",
            to,
            self.tree.last_zxid(),
            self.cfg.my_id
        );
        self.log.truncate(to);
        self.refresh_pending();
        assert!(self.last_logged() <= to && self.tree.last_zxid() <= self.last_logged());
        out.push(Write::Truncate { after: to });
    }

    /// Apply every logged txn through `to` (commits are cumulative).
    pub(crate) fn commit_to(&mut self, role: &mut RoleMut, to: Zxid, out: &mut Ready) {
        let to = to.min(self.last_logged());
        let applied = self.tree.last_zxid();
        if to <= applied {
            return;
        }
        let start = self.log.position_after(applied);
        let end = self.log.position_after(to);
        // Applying only appends to the history (a write released behind a sync), so the
        // indexes stay put; each txn is held by a reference count, not copied.
        for i in start..end {
            let txn = self.log.get(i);
            self.apply_txn(role, &txn, out);
        }
        // Every logged txn through `to` is applied, none after it.
        assert_eq!(self.log.position_after(self.tree.last_zxid()), end);
        assert!(self.tree.last_zxid() <= to);
        self.after_apply(role, out);
        self.trim_log();
    }

    fn apply_txn(&mut self, role: &mut RoleMut, txn: &Txn, out: &mut Ready) {
        assert!(
            txn.zxid > self.tree.last_zxid(),
            "{} applied twice",
            txn.zxid
        );
        assert!(
            txn.zxid <= self.last_logged(),
            "{} applied before logged",
            txn.zxid
        );
        let outcome = self.tree.apply(txn);
        assert_eq!(self.tree.last_zxid(), txn.zxid);
        if txn.op.new_membership().is_some() {
            self.activate_membership(txn.zxid);
        }
        let mut events = Vec::new();
        for (trigger, acl) in outcome.triggers.iter().zip(&outcome.watch_acls) {
            let start = events.len();
            self.watches.trigger(trigger, &mut events);
            // As ZooKeeper 3.8.4+ (CVE-2024-23944): an event reaches only a connection that
            // may READ the node it names (the parent, for a child event); the watch is spent
            // either way.
            if let Some(acl) = acl
                && crate::watch::events_checked_for_read(self.cfg.plant)
            {
                let fired = events.split_off(start);
                let conns = &self.clients.conns;
                events.extend(fired.into_iter().filter(|(conn, _)| {
                    conns.get(conn).is_some_and(|c| {
                        crate::acl::check(acl, ensemble_proto::proto::perms::READ, &c.auth)
                    })
                }));
            }
        }
        let lose = self.plant(Plant::LostWatch) && txn.zxid.counter() % 3 == 1;
        if !lose {
            for (conn, event) in events {
                out.push(Action::Watch { conn, event });
            }
        }
        role.txn_applied(self.now, txn);
        match txn.op.created_session() {
            Some(timeout_ms) if txn.origin.server == self.cfg.my_id => {
                self.session_created(role, txn.origin.rid, txn.session, timeout_ms, out);
            }
            _ if txn.op.is_close_session() => {
                let mut paths = outcome.ephemerals_deleted.clone();
                if self.plant(Plant::EphemeralsMisreported) {
                    paths.pop();
                }
                out.push(Action::EphemeralsDeleted {
                    session: txn.session,
                    zxid: txn.zxid,
                    paths,
                });
                // Every connection of that session here goes, once its own queue is answered.
                let conns: Vec<ConnId> = self
                    .clients
                    .conns
                    .iter()
                    .filter(|(_, c)| c.session == txn.session && c.phase == ConnPhase::Connected)
                    .map(|(id, _)| *id)
                    .collect();
                for conn in conns {
                    if let Some(c) = self.clients.conns.get_mut(&conn) {
                        c.closing = true;
                    }
                }
                if self.plant(Plant::CloseSessionClosesCreatorsSessions) {
                    crate::plant::close_creators_sessions(&mut self.clients, txn.session);
                }
            }
            _ => {}
        }
        if txn.origin.server == self.cfg.my_id
            && txn.origin.rid != 0
            && let Some(conn) = self.clients.rid_owner.remove(&txn.origin.rid)
        {
            if let Some(c) = self.clients.conns.get_mut(&conn) {
                for p in c.queue.iter_mut() {
                    if matches!(p.wait, Wait::Write { rid } if rid == txn.origin.rid) {
                        p.result = Some((txn.zxid, outcome.reply.clone()));
                    }
                }
            }
            self.drain(role, conn, out);
        }
        if txn.op.is_close_session() {
            let conns: Vec<ConnId> = self
                .clients
                .conns
                .iter()
                .filter(|(_, c)| c.closing)
                .map(|(id, _)| *id)
                .collect();
            for conn in conns {
                self.drain(role, conn, out);
            }
        }
        self.snapshots.txn_applied(&self.cfg, &mut self.tree, out);
    }

    /// Write up to `budget` more nodes of the snapshot being written.
    pub(crate) fn snapshot_step(&mut self, budget: usize, out: &mut Ready) {
        self.snapshots.step(&mut self.tree, budget, out);
        self.trim_log();
    }

    /// Trim the in-memory log window to the txns after the newest snapshot handed to the disk
    /// plus `commitLogCount` before it (after applying, and when a snapshot ends).
    fn trim_log(&mut self) {
        let (applied, keep) = (self.tree.last_zxid(), self.cfg.committed_log_size);
        if self.plant(Plant::LogTrimPastSnapshot) {
            self.log.trim_by_count(applied, keep);
        } else if self.log.trim(applied, self.snapshots.on_disk, keep) {
            crate::probe!("log.trim-held-by-snapshot");
        }
    }
}
