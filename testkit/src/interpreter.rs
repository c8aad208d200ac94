//! The one in-memory interpreter of the core's output. Every in-memory driver of a `Server`
//! (the golden scripts, the fuzz harness, corebench, and the simulator) hands
//! the [`Ready`] that `Server::handle_ready` filled to [`execute`], which carries it
//! out: durable writes against the server's in-memory [`Disk`], everything else through the
//! driver's [`Host`] (peer links, client connections, traces and checkers).
//!
//! The kit has no effect loop and no ordering rule of its own: the order ("a write is done
//! before anything after it") lives in core's types, and [`Ready::drive_both`] walks it. A
//! server's [`ServerIo`] is both its `DurableStore` and its `ActionSink`, and carries out one
//! write or action at a time. The in-memory disk does every write at once, durably, except `Append`,
//! which stays volatile until a later fsync; the core waits for `Event::Persisted` before
//! anything depends on it. A disk told to fail a write (`write_errors.rs`) fails it: the drive
//! stops there, as the core's contract says, and the host hears of it (`Host::write_failed`).

use crate::disk::Disk;
use crate::write_errors::FailingWrite;
use ensemble_core::effect::{Action, ActionSink, DurableStore, Ready, Write};
use ensemble_core::peer::{PeerMsg, ServerState};
use ensemble_core::server::ConnId;
use ensemble_core::sync_stream::snap_messages;
use ensemble_core::txn::{ServerId, Txn};
use ensemble_core::zxid::Zxid;
use ensemble_proto::proto::{ConnectResponse, OpCode, Reply, WatchedEvent};
use ensemble_storage::StorageError;
use std::sync::Arc;

/// What goes out to one client connection.
#[derive(Debug)]
pub enum ToClient {
    Connected {
        conn: ConnId,
        response: ConnectResponse,
    },
    Reply {
        conn: ConnId,
        xid: i32,
        zxid: Zxid,
        opcode: OpCode,
        reply: Reply,
    },
    Watch {
        conn: ConnId,
        event: WatchedEvent,
    },
    /// Close the connection (after what was queued before it).
    Close {
        conn: ConnId,
    },
}

/// A write or an action of a server's `Ready`, shown to the host just before it is carried out.
#[derive(Clone, Copy, Debug)]
pub enum Seen<'a> {
    Write(&'a Write),
    Action(&'a Action),
}

/// What a host decides about the write or action it is shown before it is carried out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    Execute,
    /// Drop this one (a checker failed the run on it), go on with the next.
    Skip,
    /// Drop this one and everything after it in the `Ready` (the server is gone).
    Stop,
}

/// The world around the servers, as the interpreter sees it.
pub trait Host {
    /// The disk of server `id`.
    fn disk(&mut self, id: ServerId) -> &mut Disk;

    /// Every write and action, in order, before it is carried out: traces and checkers look
    /// here.
    fn observe(&mut self, _id: ServerId, _seen: Seen<'_>) -> Flow {
        Flow::Execute
    }

    /// A peer message onto the link `from` → `to`.
    fn send(&mut self, from: ServerId, to: ServerId, msg: PeerMsg);

    /// Server `id` breaks its quorum connection with `peer`.
    fn disconnect_peer(&mut self, id: ServerId, peer: ServerId);

    /// Something for one of server `id`'s client connections.
    fn to_client(&mut self, id: ServerId, out: ToClient);

    /// The role changed (traces, checkers).
    fn state_changed(&mut self, _id: ServerId, _state: ServerState, _epoch: u32) {}

    /// `txns` were appended; an fsync must cover write sequence number `upto` before they are
    /// durable (a host with group commit schedules it here; others fsync when they choose).
    fn appended(&mut self, _id: ServerId, _txns: &[Arc<Txn>], _upto: u64) {}

    /// A snapshot at `zxid` is durable (`reset_log`: the log restarts after it).
    fn snapshot_taken(&mut self, _id: ServerId, _zxid: Zxid, _reset_log: bool) {}

    /// A durable write of server `id` failed on a disk told to fail it (`Disk::fail_next`).
    /// `stopped`: the drive stopped there, nothing after it was carried out (the core's
    /// contract; the runtime must now stop the server, as ZooKeeper exits). A host that never
    /// arms a failure never hears of one.
    fn write_failed(
        &mut self,
        id: ServerId,
        what: FailingWrite,
        error: &StorageError,
        stopped: bool,
    ) {
        let _ = stopped;
        panic!(
            "server {id}: a {} failed on a disk told to fail nothing: {error}",
            what.name()
        );
    }
}

/// Carry out what server `id` produced, in `ready`'s order; `ready` is left empty.
pub fn execute<H: Host + ?Sized>(host: &mut H, id: ServerId, ready: &mut Ready) {
    let mut io = ServerIo {
        host,
        id,
        stopped: false,
        failed: None,
    };
    let outcome = ready.drive_both(&mut io);
    // `Err` is the host's Stop or a write the disk was told to fail
    assert!(outcome.is_ok() || io.stopped || io.failed.is_some());
    if let Some((what, error)) = io.failed.take() {
        io.host.write_failed(id, what, &error, outcome.is_err());
    }
}

/// Why a drive ended early.
enum Halt {
    /// The host said [`Flow::Stop`]: nothing more of this `Ready` is carried out.
    Stopped,
    /// A write failed (`ServerIo::failed` has it).
    Failed,
}

/// One server's side of the host while its `Ready` is driven: its store and its sink.
struct ServerIo<'a, H: ?Sized> {
    host: &'a mut H,
    id: ServerId,
    /// The host said Stop: later actions are dropped, and the next write ends the drive.
    stopped: bool,
    /// The first write that failed, and how.
    failed: Option<(FailingWrite, StorageError)>,
}

impl<H: Host + ?Sized> DurableStore for ServerIo<'_, H> {
    type Error = Halt;
    fn write(&mut self, write: Write) -> Result<(), Halt> {
        if self.admit(Seen::Write(&write)) {
            if let Some(what) = FailingWrite::of(&write)
                && let Some(e) = self.host.disk(self.id).write_fails(what)
            {
                // nothing of it was written; the first failure is the one reported
                self.failed.get_or_insert((what, e));
                return Err(Halt::Failed);
            }
            self.do_write(write);
        }
        if self.stopped {
            return Err(Halt::Stopped);
        }
        Ok(())
    }
}

impl<H: Host + ?Sized> ActionSink for ServerIo<'_, H> {
    fn act(&mut self, action: Action) {
        if self.admit(Seen::Action(&action)) {
            self.do_action(action);
        }
    }
}

impl<H: Host + ?Sized> ServerIo<'_, H> {
    /// Show it to the host: is it to be carried out?
    #[inline]
    fn admit(&mut self, seen: Seen<'_>) -> bool {
        if self.stopped {
            return false;
        }
        match self.host.observe(self.id, seen) {
            Flow::Execute => true,
            Flow::Skip => false,
            Flow::Stop => {
                self.stopped = true;
                false
            }
        }
    }

    fn do_write(&mut self, write: Write) {
        let (host, id) = (&mut *self.host, self.id);
        match write {
            Write::Append { txns } => {
                let disk = host.disk(id);
                if let (Some(last), Some(first)) = (disk.log.last(), txns.first()) {
                    assert!(
                        first.zxid > last.txn.zxid,
                        "server {id} appended {} after {}",
                        first.zxid,
                        last.txn.zxid
                    );
                }
                let upto = disk.append(&txns);
                host.appended(id, &txns, upto);
            }
            Write::Truncate { after } => host.disk(id).truncate(after),
            Write::SnapshotPart { zxid, index, data } => {
                host.disk(id).snapshot_part(zxid, index, &data)
            }
            Write::Snapshot {
                zxid,
                parts,
                data,
                reset_log,
            } => {
                host.disk(id).snapshot(zxid, parts, data, reset_log);
                host.snapshot_taken(id, zxid, reset_log);
            }
            Write::PersistEpochs(epochs) => host.disk(id).persist_epochs(epochs),
        }
    }

    fn do_action(&mut self, action: Action) {
        let (host, id) = (&mut *self.host, self.id);
        match action {
            Action::Send { to, msg } => {
                assert_ne!(to, id, "a server sends nothing to itself");
                host.send(id, to, msg);
            }
            Action::SendSnapshot {
                to,
                zxid,
                part,
                txns,
                committed,
            } => {
                assert_ne!(to, id, "a server sends nothing to itself");
                match host.disk(id).snapshot_data(zxid) {
                    Some(data) => {
                        for msg in snap_messages(zxid, &data, part, txns, committed) {
                            host.send(id, to, msg);
                        }
                    }
                    // as the node does with a file it cannot read: the learner syncs again
                    None => host.disconnect_peer(id, to),
                }
            }
            Action::DisconnectPeer { peer } => host.disconnect_peer(id, peer),
            Action::ConnectReply { conn, response } => {
                host.to_client(id, ToClient::Connected { conn, response })
            }
            Action::Reply {
                conn,
                xid,
                zxid,
                opcode,
                reply,
            } => host.to_client(
                id,
                ToClient::Reply {
                    conn,
                    xid,
                    zxid,
                    opcode,
                    reply,
                },
            ),
            Action::Watch { conn, event } => host.to_client(id, ToClient::Watch { conn, event }),
            Action::Close { conn } => host.to_client(id, ToClient::Close { conn }),
            Action::StateChanged { state, epoch } => host.state_changed(id, state, epoch),
            // a report: what a runtime logs (the audit log); nothing to carry out
            Action::EphemeralsDeleted { .. } => {}
            // checked by the simulator as it is observed, no effect to carry out
            Action::QuorumCounted { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::txn;
    use ensemble_core::effect::Output;
    use ensemble_core::server::Epochs;

    /// Records what the interpreter asked for, in order.
    #[derive(Default)]
    struct Recorder {
        disk: Disk,
        calls: Vec<String>,
        /// Effects (by position) to skip, and where to stop.
        skip: Option<usize>,
        stop: Option<usize>,
        seen: usize,
    }

    impl Host for Recorder {
        fn disk(&mut self, _id: ServerId) -> &mut Disk {
            &mut self.disk
        }
        fn observe(&mut self, _id: ServerId, _seen: Seen<'_>) -> Flow {
            let i = self.seen;
            self.seen += 1;
            if self.stop == Some(i) {
                Flow::Stop
            } else if self.skip == Some(i) {
                Flow::Skip
            } else {
                Flow::Execute
            }
        }
        fn send(&mut self, from: ServerId, to: ServerId, msg: PeerMsg) {
            self.calls.push(format!("send {from}->{to} {}", msg.name()));
        }
        fn disconnect_peer(&mut self, id: ServerId, peer: ServerId) {
            self.calls.push(format!("disconnect {id}-{peer}"));
        }
        fn to_client(&mut self, _id: ServerId, out: ToClient) {
            self.calls.push(format!("client {out:?}"));
        }
        fn appended(&mut self, _id: ServerId, txns: &[Arc<Txn>], upto: u64) {
            // the append is on the disk by the time the host hears of it
            assert_eq!(self.disk.last_seq(), upto);
            self.calls
                .push(format!("appended {} upto {upto}", txns.len()));
        }
    }

    /// Run `outputs` through the interpreter, as one server's `Ready`.
    fn run(h: &mut Recorder, outputs: Vec<Output>) {
        let mut ready: Ready = outputs.into_iter().collect();
        execute(h, 1, &mut ready);
        assert!(ready.is_empty(), "the interpreter consumes the whole Ready");
    }

    fn effects() -> Vec<Output> {
        vec![
            Write::PersistEpochs(Epochs {
                accepted_epoch: 1,
                accepted_from: 3,
                current_epoch: 1,
            })
            .into(),
            Write::Append {
                txns: vec![txn(1), txn(2)],
            }
            .into(),
            Action::Send {
                to: 2,
                msg: PeerMsg::Ack {
                    zxid: Zxid::new(1, 2),
                },
            }
            .into(),
            Action::DisconnectPeer { peer: 3 }.into(),
        ]
    }

    #[test]
    fn effects_are_carried_out_in_order() {
        let mut h = Recorder::default();
        run(&mut h, effects());
        assert_eq!(h.disk.epochs.accepted_from, 3);
        assert_eq!(h.disk.last_logged(), Zxid::new(1, 2));
        assert_eq!(
            h.disk.unsynced().len(),
            2,
            "an append is volatile until fsynced"
        );
        assert_eq!(
            h.calls,
            vec!["appended 2 upto 2", "send 1->2 ACK", "disconnect 1-3"]
        );
    }

    #[test]
    fn skip_drops_one_effect_and_stop_the_rest() {
        let mut h = Recorder {
            skip: Some(1),
            ..Recorder::default()
        };
        run(&mut h, effects());
        assert!(h.disk.log.is_empty(), "the skipped append is not written");
        assert_eq!(h.calls, vec!["send 1->2 ACK", "disconnect 1-3"]);

        let mut h = Recorder {
            stop: Some(2),
            ..Recorder::default()
        };
        run(&mut h, effects());
        assert_eq!(h.disk.log.len(), 2);
        assert_eq!(h.calls, vec!["appended 2 upto 2"]);

        // a Stop on an action drops the writes of later batches too
        let mut h = Recorder {
            stop: Some(1),
            ..Recorder::default()
        };
        let mut later = effects();
        later.swap(1, 2);
        run(&mut h, later);
        assert!(
            h.disk.log.is_empty(),
            "the append after the Stop is not written"
        );
        assert_eq!(h.disk.epochs.accepted_from, 3, "the write before it is");
        assert!(h.calls.is_empty());
    }

    #[test]
    #[should_panic(expected = "appended 0x100000001 after 0x100000002")]
    fn an_append_out_of_zxid_order_is_a_bug() {
        let mut h = Recorder::default();
        run(
            &mut h,
            vec![
                Write::Append { txns: vec![txn(2)] }.into(),
                Write::Append { txns: vec![txn(1)] }.into(),
            ],
        );
    }
}
