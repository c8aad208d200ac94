//! Executing the core's effects for one server: the simulator's interpreter of `Effect`,
//! onto the simulated disk (`disk.rs`), the links (`transport`) and the scheduler: the one
//! place the simulator executes the core's output.

use crate::lines::{AppendLine, ReplyLine, SendLine};
use crate::net::QUORUM;
use crate::scheduler::Ev;
use crate::transport::client::S2C;
use crate::world::{Who, World};
use ensemble_core::peer::ServerState;
use ensemble_core::server::{Effect, Event};
use ensemble_core::txn::ServerId;

impl World {
    /// Carry out one effect of server `id`'s step: sends, replies and watch events onto the
    /// transport, log appends, truncations, snapshots and epochs onto its disk, fsyncs
    /// scheduled (one in flight, group commit), its state change recorded. This is the
    /// simulator's one interpreter of the core's output.
    pub(crate) fn effect(&mut self, id: ServerId, e: Effect) {
        let now = self.sched.now;
        let who = Who::N(id);
        let role = self.nodes[&id].role();
        match e {
            Effect::Send { to, msg } => {
                self.emit(who, role, &SendLine { to, msg: &msg });
                self.send_peer(id, to, msg);
            }
            Effect::DisconnectPeer { peer } => {
                self.log(who, role, format_args!("  disconnect n{peer}"));
                self.break_peer_conn(id, peer, QUORUM);
            }
            Effect::ConnectReply { conn, response } => {
                self.log(
                    who,
                    role,
                    format_args!(
                        "  connect reply conn {conn} session=0x{:x} timeout={}",
                        response.session_id, response.timeout_ms
                    ),
                );
                self.send_to_client(conn, S2C::Connected(response));
            }
            Effect::Reply {
                conn,
                xid,
                zxid,
                reply,
                ..
            } => {
                self.emit(
                    who,
                    role,
                    &ReplyLine {
                        conn,
                        xid,
                        zxid,
                        reply: &reply,
                    },
                );
                self.send_to_client(
                    conn,
                    S2C::Reply {
                        xid,
                        zxid: zxid.as_i64(),
                        reply,
                    },
                );
            }
            Effect::Watch { conn, event } => {
                self.log(
                    who,
                    role,
                    format_args!("  watch conn {conn} {:?} {}", event.kind, event.path),
                );
                self.send_to_client(conn, S2C::Watch(event));
            }
            Effect::Close { conn } => {
                self.log(who, role, format_args!("  close conn {conn}"));
                self.send_to_client(conn, S2C::Close);
                if let Some(c) = self.transport.conns.get_mut(&conn) {
                    c.server_closed = true;
                }
            }
            Effect::Append { txns } => {
                if let (Some(a), Some(b)) = (txns.first(), txns.last()) {
                    let line = AppendLine {
                        first: a.zxid,
                        last: b.zxid,
                        n: txns.len(),
                    };
                    self.emit(who, role, &line);
                }
                if let Err(v) = self.check_append(id, &txns) {
                    self.fail(v);
                    return;
                }
                let n = self.nodes.get_mut(&id).expect("node");
                let upto = n.disk.append(&txns);
                // group commit, as ZooKeeper's SyncRequestProcessor does: one fsync in flight
                // at a time; appends made meanwhile ride on the next one
                if !n.disk.fsync_in_flight {
                    n.disk.fsync_in_flight = true;
                    let inc = n.inc;
                    let (lo, hi) = self.params.fsync_ms;
                    let d = self.rng.range(lo, hi);
                    self.schedule(
                        now + d,
                        Ev::Fsync {
                            node: id,
                            inc,
                            upto,
                        },
                    );
                }
            }
            Effect::Truncate { after } => {
                self.log(who, role, format_args!("  truncate after {after}"));
                self.nodes.get_mut(&id).expect("node").disk.truncate(after);
            }
            Effect::SnapshotPart { zxid, index, data } => {
                self.nodes
                    .get_mut(&id)
                    .expect("node")
                    .disk
                    .snapshot_part(zxid, index, &data);
            }
            Effect::Snapshot {
                zxid,
                parts,
                data,
                reset_log,
            } => {
                self.log(
                    who,
                    role,
                    format_args!(
                        "  snapshot at {zxid}{}",
                        if reset_log { " (log reset)" } else { "" }
                    ),
                );
                let n = self.nodes.get_mut(&id).expect("node");
                if reset_log {
                    n.snapshot_loaded = Some(zxid);
                }
                n.disk.snapshot(zxid, parts, data, reset_log);
            }
            Effect::PersistEpochs(e) => {
                self.log(
                    who,
                    role,
                    format_args!(
                        "  persist epochs accepted=e{} (from n{}) current=e{}",
                        e.accepted_epoch, e.accepted_from, e.current_epoch
                    ),
                );
                self.nodes.get_mut(&id).expect("node").disk.epochs = e;
            }
            Effect::StateChanged { state, epoch } => {
                let n = self.nodes.get_mut(&id).expect("node");
                n.state = state;
                if state == ServerState::Looking {
                    self.stats.elections += 1;
                }
                let role = self.nodes[&id].role();
                self.log(
                    who,
                    role,
                    format_args!("  state -> {state:?} epoch e{epoch}"),
                );
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
