//! Executing the core's output for one server. The simulator has no interpreter of its own:
//! a server's `Ready` goes through the test kit's (`ensemble_testkit::execute`), which walks it
//! in core's order (writes before what depends on them) against the server's disk, and the
//! world is its `Host`: the traces and the ZAB checks on each write and action (`observe`), the links
//! (`transport`), the group-commit fsyncs (`appended`, `fsync_done`) and the role bookkeeping.

use crate::lines::{AppendLine, ConnLine, ReplyLine, SendLine, WatchLine};
use crate::net::QUORUM;
use crate::scheduler::Ev;
use crate::transport::client::S2C;
use crate::world::{Who, World};
use ensemble_core::effect::{Action, EPOCH_PROMISED, Write};
use ensemble_core::peer::{PeerMsg, ServerState};
use ensemble_core::server::Event;
use ensemble_core::txn::{ServerId, Txn};
use ensemble_core::zxid::Zxid;
use ensemble_testkit::{Disk, Flow, Host, Seen, ToClient};
use std::sync::Arc;

impl Host for World {
    fn disk(&mut self, id: ServerId) -> &mut Disk {
        &mut self.nodes.get_mut(&id).expect("node").disk
    }

    /// Each write's and action's trace line, and the checks on a log append
    /// (`zab.zxid-unique`, `zab.log-order`: a violating append is not written). Once the server
    /// is gone (a checker or a fault took it down while its step was carried out) nothing more
    /// of it happens.
    fn observe(&mut self, id: ServerId, seen: Seen<'_>) -> Flow {
        if self.nodes[&id].server.is_none() {
            return Flow::Stop;
        }
        match seen {
            Seen::Write(w) => {
                if let Write::PersistEpochs(e) = w
                    && e.current_epoch > 0
                {
                    // a sync completed (or it leads): it holds a leader's history again
                    let n = self.nodes.get_mut(&id).expect("node");
                    n.lost_state = false;
                    n.cut_state = false;
                }
                self.observe_write(id, w)
            }
            // a server's sends are most of its actions: their claims alone, the others' out
            // of line (`observe_other`)
            Seen::Action(a @ Action::Send { to, msg }) => self.observe_send(id, a, *to, msg),
            Seen::Action(a) => self.observe_other(id, a),
        }
    }

    fn send(&mut self, from: ServerId, to: ServerId, msg: PeerMsg) {
        self.send_peer(from, to, msg);
    }

    fn disconnect_peer(&mut self, id: ServerId, peer: ServerId) {
        self.break_peer_conn(id, peer, QUORUM);
    }

    fn to_client(&mut self, _id: ServerId, out: ToClient) {
        match out {
            ToClient::Connected { conn, response } => {
                self.send_to_client(conn, S2C::Connected(response))
            }
            ToClient::Reply {
                conn,
                xid,
                zxid,
                reply,
                ..
            } => self.send_to_client(
                conn,
                S2C::Reply {
                    xid,
                    zxid: zxid.as_i64(),
                    reply,
                },
            ),
            ToClient::Watch { conn, event } => self.send_to_client(conn, S2C::Watch(event)),
            ToClient::Close { conn } => {
                self.send_to_client(conn, S2C::Close);
                if let Some(c) = self.transport.conns.get_mut(&conn) {
                    c.server_closed = true;
                }
            }
        }
    }

    fn state_changed(&mut self, id: ServerId, state: ServerState, epoch: u32) {
        let old = self.nodes[&id].state;
        self.nodes.get_mut(&id).expect("node").state = state;
        self.fle_state(id, old, state);
        self.read_only_state(id, state);
        if state == ServerState::Looking {
            self.stats.elections += 1;
        }
        let role = self.nodes[&id].role();
        self.log(
            Who::N(id),
            role,
            format_args!("  state -> {state:?} epoch e{epoch}"),
        );
    }

    /// Group commit, as ZooKeeper's SyncRequestProcessor does: one fsync in flight at a time;
    /// appends made meanwhile ride on the next one.
    fn appended(&mut self, id: ServerId, _txns: &[Arc<Txn>], upto: u64) {
        let n = self.nodes.get_mut(&id).expect("node");
        if !n.disk.fsync_in_flight {
            n.disk.fsync_in_flight = true;
            let inc = n.inc;
            let (lo, hi) = self.params.fsync_ms;
            let d = self.rng.range(lo, hi);
            self.schedule(
                self.sched.now + d,
                Ev::Fsync {
                    node: id,
                    inc,
                    upto,
                },
            );
        }
    }

    fn write_failed(
        &mut self,
        id: ServerId,
        what: ensemble_testkit::write_errors::FailingWrite,
        error: &ensemble_storage::StorageError,
        stopped: bool,
    ) {
        self.on_write_failed(id, what, error, stopped);
    }

    fn snapshot_taken(&mut self, id: ServerId, zxid: Zxid, reset_log: bool) {
        if reset_log {
            self.nodes.get_mut(&id).expect("node").snapshot_loaded = Some(zxid);
            if let Err(v) = self.check_snap_persisted(id, zxid) {
                self.fail(v);
            }
            // a SNAP's snapshot: the tree the learner now serves (the others are checked
            // where they are loaded, see check/persisted.rs)
            if let Err(v) = self.check_persisted_round_trip(id) {
                self.fail(v);
            }
        }
    }
}

impl World {
    /// The claims on a peer message server `id`'s core sends, in the order `observe_other`
    /// keeps for every action: the ones that judge other actions (ephemerals reported, quorums
    /// counted, connections answered) cannot change their verdict on a send.
    fn observe_send(&mut self, id: ServerId, a: &Action, to: ServerId, msg: &PeerMsg) -> Flow {
        let r = match msg {
            PeerMsg::Ack { zxid } => self.check_ack_durable(id, *zxid),
            PeerMsg::HandOver { zxid, designated } => self.check_handover(id, *zxid, *designated),
            PeerMsg::AckEpoch {
                epoch,
                counted: true,
                ..
            } => self.check_epoch_promised(id, Some((to, *epoch))),
            PeerMsg::Request { .. } => self.expired_answers_action(id, a),
            _ => Ok(()),
        };
        if let Err(v) = r.and_then(|()| self.check_packet_role(id, a)) {
            self.fail(v);
            return Flow::Skip;
        }
        self.traffic_sent(id, to, msg);
        self.observe_last(id, a)
    }

    /// What every action ends with, a send or not: its trace line, then the claims on the
    /// SNAP stream and on read-only mode.
    fn observe_last(&mut self, id: ServerId, a: &Action) -> Flow {
        self.trace_action(id, a);
        if let Err(v) = self
            .check_snap_action(id, a)
            .and_then(|()| self.check_read_only_action(id, a))
        {
            self.fail(v);
            return Flow::Skip;
        }
        Flow::Execute
    }

    /// Every action but a send (`observe_send`), each claim where it judges.
    #[inline(never)]
    fn observe_other(&mut self, id: ServerId, a: &Action) -> Flow {
        if let Action::EphemeralsDeleted {
            session,
            zxid,
            paths,
        } = a
        {
            self.sessions.reported(id, *session, *zxid, paths);
            self.close_reason_session_closed(id, *session);
        }
        if let Action::QuorumCounted { purpose, members } = a
            && *purpose == "election"
        {
            self.fle_counted(id, members);
        }
        if let Action::QuorumCounted { purpose, members } = a
            && let Err(v) = if *purpose == EPOCH_PROMISED {
                self.check_epoch_promised(id, None)
            } else {
                self.check_counted(id, purpose, members)
            }
        {
            self.fail(v);
            return Flow::Skip;
        }
        if let Err(v) = self
            .expired_answers_action(id, a)
            .and_then(|()| self.check_packet_role(id, a))
        {
            self.fail(v);
            return Flow::Skip;
        }
        if let Action::ConnectReply { .. } | Action::Close { .. } = a {
            self.conn_action(id, a)
        }
        match a {
            Action::ConnectReply { conn, response } if response.timeout_ms == 0 => {
                self.expired_unclosed.push(*conn)
            }
            Action::Close { conn } => self.expired_unclosed.retain(|c| c != conn),
            _ => {}
        }
        self.observe_last(id, a)
    }

    fn observe_write(&mut self, id: ServerId, w: &Write) -> Flow {
        let who = Who::N(id);
        let role = self.nodes[&id].role();
        match w {
            Write::Append { txns } => {
                if let Err(v) = self.check_read_only_write(id, w) {
                    self.fail(v);
                    return Flow::Skip;
                }
                if let (Some(a), Some(b)) = (txns.first(), txns.last()) {
                    let line = AppendLine {
                        first: a.zxid,
                        last: b.zxid,
                        n: txns.len(),
                    };
                    self.emit(who, role, &line);
                }
                if let Err(v) = self.check_append(id, txns) {
                    self.fail(v);
                    return Flow::Skip;
                }
                for t in txns {
                    if matches!(t.op, ensemble_core::txn::TxnOp::CloseSession) {
                        self.shared.close_logged.insert(t.session);
                    }
                }
            }
            Write::Truncate { after } => {
                self.log(who, role, format_args!("  truncate after {after}"))
            }
            Write::SnapshotPart { .. } => {}
            Write::Snapshot {
                zxid, reset_log, ..
            } => self.log(
                who,
                role,
                format_args!(
                    "  snapshot at {zxid}{}",
                    if *reset_log { " (log reset)" } else { "" }
                ),
            ),
            Write::PersistEpochs(e) => self.log(
                who,
                role,
                format_args!(
                    "  persist epochs accepted=e{} (from n{}) current=e{}",
                    e.accepted_epoch, e.accepted_from, e.current_epoch
                ),
            ),
        }
        Flow::Execute
    }

    fn trace_action(&mut self, id: ServerId, a: &Action) {
        let who = Who::N(id);
        let role = self.nodes[&id].role();
        match a {
            Action::Send { to, msg } => {
                self.emit(who, role, &SendLine { to: *to, msg });
                self.fle_sent(id, *to, msg);
            }
            Action::SendSnapshot {
                to,
                zxid,
                part,
                txns,
                committed,
            } => self.log(
                who,
                role,
                format_args!(
                    "  send n{to}: SNAP from the snapshot file at {zxid} in parts of {part} \
                     (+{} txns, committed {committed})",
                    txns.len()
                ),
            ),
            Action::DisconnectPeer { peer } => {
                self.log(who, role, format_args!("  disconnect n{peer}"))
            }
            Action::ConnectReply { conn, response } => {
                let line = ConnLine::ConnectReply {
                    conn: *conn,
                    session: response.session_id,
                    timeout: response.timeout_ms,
                };
                self.emit(who, role, &line)
            }
            Action::Reply {
                conn,
                xid,
                zxid,
                reply,
                ..
            } => self.emit(
                who,
                role,
                &ReplyLine {
                    conn: *conn,
                    xid: *xid,
                    zxid: *zxid,
                    reply,
                },
            ),
            Action::Watch { conn, event } => self.emit(
                who,
                role,
                &WatchLine {
                    conn: Some(*conn),
                    event,
                },
            ),
            Action::Close { conn } => self.emit(who, role, &ConnLine::Close { conn: *conn }),
            // traced once the role is recorded (`state_changed`), under the new role
            Action::StateChanged { .. } => {}
            // checked (`session.ephemerals-reported`), not traced: a report, not an effect
            Action::EphemeralsDeleted { .. } => {}
            Action::QuorumCounted { purpose, members } => {
                let list: Vec<String> = members
                    .iter()
                    .map(|(id, ok)| {
                        format!("n{id}{}", if *ok { "" } else { "(vouches for nothing)" })
                    })
                    .collect();
                self.log(
                    who,
                    role,
                    format_args!("  quorum counted ({purpose}): {}", list.join(" ")),
                )
            }
        }
    }

    /// An fsync completes: what it covered is durable (the core hears `Persisted`), and
    /// appends made while it ran get the next one (group commit).
    pub(crate) fn fsync_done(&mut self, node: ServerId, inc: u64, upto: u64) {
        let n = self.nodes.get_mut(&node).expect("node");
        if n.inc != inc || !n.up() {
            return;
        }
        n.disk.fsync_in_flight = false;
        if self.fsync_fails(node) {
            return;
        }
        let n = self.nodes.get_mut(&node).expect("node");
        let through = n.disk.fsync(upto);
        if n.disk.last_seq() > upto {
            // appends arrived while this fsync ran: the next one covers them
            n.disk.fsync_in_flight = true;
            let next = n.disk.last_seq();
            let (lo, hi) = self.params.fsync_ms;
            let d = self.rng.range(lo, hi);
            self.schedule(
                self.sched.now + d,
                Ev::Fsync {
                    node,
                    inc,
                    upto: next,
                },
            );
        }
        if let Some(through) = through {
            self.deliver(node, Event::Persisted { through });
        }
    }
}
