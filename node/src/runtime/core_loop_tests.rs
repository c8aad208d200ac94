//! The interpreter's rule for failed writes, with a store that fails on demand: nothing
//! that follows a failed durable write in the core's effect order leaves the process.

use super::*;
use crate::runtime::clients::ClientShared;
use crate::runtime::disk::Backend;
use crate::runtime::peers::{Backlog, OutCmd};
use crate::storage::StorageError;
use ensemble_core::{Action, ConnId, Epochs, Output, PeerMsg, Txn, Write, Zxid};
use ensemble_proto::proto::{Reply, Response};
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// Which writes fail, and what was asked of the store.
#[derive(Default)]
struct Faults {
    fail_epochs: bool,
    fail_truncate: bool,
    fail_reset_snapshot: bool,
    fail_append: bool,
    calls: Vec<&'static str>,
    /// The number of txns in each append handed over.
    appended: Vec<usize>,
}

struct FaultyStore(Arc<Mutex<Faults>>);

fn injected(what: &str) -> StorageError {
    StorageError::io(
        std::path::Path::new(what),
        std::io::Error::from_raw_os_error(libc::ENOSPC),
    )
}

impl FaultyStore {
    fn call(
        &self,
        what: &'static str,
        fails: impl Fn(&Faults) -> bool,
    ) -> Result<(), StorageError> {
        let mut f = self.0.lock().expect("test lock");
        f.calls.push(what);
        if fails(&f) {
            Err(injected(what))
        } else {
            Ok(())
        }
    }
}

impl Backend for FaultyStore {
    fn append(&mut self, txns: Vec<Arc<Txn>>) -> Result<(), StorageError> {
        self.0.lock().expect("test lock").appended.push(txns.len());
        self.call("append", |f| f.fail_append)
    }
    fn truncate(&mut self, _: Zxid) -> Result<(), StorageError> {
        self.call("truncate", |f| f.fail_truncate)
    }
    fn snapshot_part(&mut self, _: Zxid, _: u32, _: Arc<Vec<u8>>) -> Result<(), StorageError> {
        self.call("snapshot_part", |_| false)
    }
    fn snapshot(
        &mut self,
        _: Zxid,
        _: u32,
        _: Arc<Vec<u8>>,
        reset_log: bool,
    ) -> Result<(), StorageError> {
        self.call("snapshot", |f| reset_log && f.fail_reset_snapshot)
    }
    fn persist_epochs(&mut self, _: Epochs) -> Result<(), StorageError> {
        self.call("persist_epochs", |f| f.fail_epochs)
    }
    fn purge(&mut self) -> Result<(), StorageError> {
        self.call("purge", |_| false)
    }
    fn close(self: Box<Self>) -> Result<(), StorageError> {
        Ok(())
    }
}

struct Rig {
    lp: CoreLoop,
    faults: Arc<Mutex<Faults>>,
    election: mpsc::UnboundedReceiver<OutCmd>,
    quorum: mpsc::UnboundedReceiver<OutCmd>,
    client: mpsc::Receiver<Outgoing>,
    _input: mpsc::Receiver<Input>,
    _dir: PathGuard,
}

struct PathGuard(std::path::PathBuf);
impl Drop for PathGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const CONN: ConnId = 7;

/// Server 1 of three (not started: effects are handed to the interpreter directly), with
/// links to server 2 and one client connection.
fn rig(tag: &str, faults: Faults) -> Rig {
    let dir = std::env::temp_dir().join(format!("ens-coreloop-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("tmp dir");
    std::fs::write(dir.join("myid"), "1").expect("myid");
    let text = format!(
        "tickTime=2000\ninitLimit=5\nsyncLimit=2\ndataDir={}\nclientPort=23301\n\
         server.1=127.0.0.1:23311:23321\nserver.2=127.0.0.1:23312:23322\n\
         server.3=127.0.0.1:23313:23323\n",
        dir.display()
    );
    let cfg = crate::config::parse(&dir.join("zoo.cfg"), &text).expect("config");
    let clock = Clock::new();
    let server = Server::new(cfg.core.clone(), Default::default(), clock.now()).expect("server");
    let (etx, election) = mpsc::unbounded_channel();
    let (qtx, quorum) = mpsc::unbounded_channel();
    let (input_tx, input) = mpsc::channel(16);
    let shared = Arc::new(ClientShared {
        max_per_ip: 0,
        max_cnxns: 0,
        total: Default::default(),
        throttle: Mutex::new(crate::limits::ConnectionThrottle::new(
            Default::default(),
            0,
            1,
        )),
        started: std::time::Instant::now(),
        max_buffer: cfg.max_buffer,
        whitelist: cfg.whitelist.clone(),
        next_conn: AtomicU64::new(0),
        per_ip: Default::default(),
        input: input_tx,
        rejected: AtomicU64::new(0),
        auth: Default::default(),
        outstanding: Arc::new(crate::limits::Outstanding::new(0)),
    });
    let faults = Arc::new(Mutex::new(faults));
    let mut lp = CoreLoop::new(
        server,
        Box::new(FaultyStore(faults.clone())),
        Arc::new(cfg),
        clock,
        BTreeMap::from([(2, (etx, qtx, Arc::new(Backlog::default())))]),
        None,
        shared,
    );
    let (ctx, client) = mpsc::channel(16);
    let (kill, _) = oneshot::channel();
    lp.on_input(Input::ClientOpened {
        conn: CONN,
        addr: "127.0.0.1:40000".parse().expect("addr"),
        tx: ctx,
        kill,
        queued: Arc::new(AtomicUsize::new(0)),
    });
    Rig {
        lp,
        faults,
        election,
        quorum,
        client,
        _input: input,
        _dir: PathGuard(dir),
    }
}

fn ack_epoch() -> Output {
    Output::Action(Action::Send {
        to: 2,
        msg: PeerMsg::AckEpoch {
            epoch: 1,
            current_epoch: 0,
            last_zxid: Zxid::ZERO,
            counted: true,
        },
    })
}

fn ack_newleader() -> Output {
    Output::Action(Action::Send {
        to: 2,
        msg: PeerMsg::AckNewLeader { zxid: Zxid::ZERO },
    })
}

fn reply() -> Output {
    Output::Action(Action::Reply {
        conn: CONN,
        xid: 1,
        zxid: Zxid::ZERO,
        opcode: OpCode::Exists,
        reply: Ok(Response::Empty) as Reply,
    })
}

fn epochs() -> Output {
    Output::Write(Write::PersistEpochs(Epochs {
        accepted_epoch: 1,
        accepted_from: 2,
        current_epoch: 0,
    }))
}

/// Execute `outputs` as one batch and report what left: quorum frames, election
/// messages, client frames.
fn run_batch(r: &mut Rig, outputs: Vec<Output>) -> (usize, usize, usize) {
    r.lp.ready.extend(outputs);
    r.lp.execute();
    r.lp.flush();
    let count = |f: &mut dyn FnMut() -> bool| {
        let mut n = 0;
        while f() {
            n += 1;
        }
        n
    };
    let q = count(&mut || r.quorum.try_recv().is_ok());
    let e = count(&mut || r.election.try_recv().is_ok());
    let c = count(&mut || r.client.try_recv().is_ok());
    (q, e, c)
}

fn append(counter: u32) -> Output {
    let txn = Txn {
        zxid: Zxid::new(1, counter),
        time: 0,
        session: 1,
        cxid: 0,
        origin: ensemble_core::txn::Origin::NONE,
        op: ensemble_core::TxnOp::CloseSession,
    };
    Output::Write(Write::Append {
        txns: vec![Arc::new(txn)],
    })
}

#[test]
fn the_appends_of_a_batch_reach_the_log_writer_in_one_hand_off() {
    let mut r = rig("group", Faults::default());
    let sent = run_batch(
        &mut r,
        vec![append(1), ack_epoch(), append(2), reply(), append(3)],
    );
    assert_eq!(sent, (1, 0, 1));
    let f = r.faults.lock().expect("lock");
    assert_eq!(
        (f.calls.as_slice(), f.appended.as_slice()),
        (&["append"][..], &[3][..])
    );
}

#[test]
fn a_barrier_hands_the_appends_before_it_over_first() {
    let mut r = rig("order", Faults::default());
    let truncate = Output::Write(Write::Truncate {
        after: Zxid::new(1, 1),
    });
    let sent = run_batch(
        &mut r,
        vec![append(1), append(2), truncate, ack_newleader(), append(3)],
    );
    assert_eq!(sent, (1, 0, 0));
    let f = r.faults.lock().expect("lock");
    assert_eq!(f.calls, ["append", "truncate", "append"]);
    assert_eq!(f.appended, [2, 1]);
}

#[test]
fn what_follows_a_durable_write_leaves_when_it_succeeded() {
    let mut r = rig("ok", Faults::default());
    let sent = run_batch(
        &mut r,
        vec![epochs(), ack_epoch(), ack_newleader(), reply()],
    );
    assert_eq!(
        sent,
        (1, 0, 1),
        "one quorum hand-off and one client hand-off"
    );
    assert!(r.lp.fatal.is_none());
}

#[test]
fn no_ackepoch_after_a_failed_persist_epochs() {
    let mut r = rig(
        "epochs",
        Faults {
            fail_epochs: true,
            ..Faults::default()
        },
    );
    let notification = Output::Action(Action::Send {
        to: 2,
        msg: PeerMsg::Ping { round: 1 },
    });
    let sent = run_batch(&mut r, vec![epochs(), ack_epoch(), notification, reply()]);
    assert_eq!(sent, (0, 0, 0));
    let fatal = fatal_text(&r);
    assert!(
        fatal.contains("acceptedEpoch") && fatal.contains("No space left"),
        "{fatal}"
    );
    // Later batches execute nothing either, not even another durable write.
    let sent = run_batch(&mut r, vec![epochs(), ack_newleader()]);
    assert_eq!(sent, (0, 0, 0));
    assert_eq!(r.faults.lock().expect("lock").calls, ["persist_epochs"]);
}

#[test]
fn frames_encoded_before_the_failure_in_the_batch_are_dropped_too() {
    let mut r = rig(
        "before",
        Faults {
            fail_truncate: true,
            ..Faults::default()
        },
    );
    let sent = run_batch(
        &mut r,
        vec![
            ack_epoch(),
            reply(),
            Output::Write(Write::Truncate { after: Zxid::ZERO }),
            ack_newleader(),
        ],
    );
    assert_eq!(sent, (0, 0, 0));
    assert!(r.lp.fatal.is_some());
}

#[test]
fn no_ack_newleader_after_a_failed_snapshot_from_the_leader() {
    let mut r = rig(
        "snap",
        Faults {
            fail_reset_snapshot: true,
            ..Faults::default()
        },
    );
    let snap = Output::Write(Write::Snapshot {
        zxid: Zxid::ZERO,
        parts: 0,
        data: Arc::new(vec![]),
        reset_log: true,
    });
    let sent = run_batch(&mut r, vec![snap, ack_newleader(), reply()]);
    assert_eq!(sent, (0, 0, 0));
    assert!(r.lp.fatal.is_some());
}

#[test]
fn a_failed_append_hand_off_stops_the_write_after_it() {
    let mut r = rig(
        "append",
        Faults {
            fail_append: true,
            ..Faults::default()
        },
    );
    // Appends are handed over before the next durable write: that hand-off fails, and the
    // epochs are not written, nor the ACK after them sent.
    let sent = run_batch(&mut r, vec![append(1), epochs(), ack_epoch()]);
    assert_eq!(sent, (0, 0, 0));
    assert_eq!(r.faults.lock().expect("lock").calls, ["append"]);
}

/// The error the loop stopped on, as it is reported ("" if it has not stopped).
fn fatal_text(r: &Rig) -> String {
    r.lp.fatal
        .as_ref()
        .map(|e| e.to_string())
        .unwrap_or_default()
}

/// The loop stopped on a failure: a quorum ACK and a client reply after it leave nothing, and
/// the error it stopped on names `what`.
fn assert_stopped_naming(r: &mut Rig, what: &str) {
    let sent = run_batch(r, vec![ack_newleader(), reply()]);
    assert_eq!(sent, (0, 0, 0));
    let fatal = fatal_text(r);
    assert!(fatal.contains(what), "{fatal}");
}

#[test]
fn a_log_writer_failure_stops_everything_after_it() {
    let mut r = rig("logfail", Faults::default());
    r.lp.on_log_event(Some(LogEvent::Failed(
        "/x/log.1: No space left on device".into(),
    )));
    assert_stopped_naming(&mut r, "/x/log.1");
}

#[test]
fn a_failed_background_snapshot_stops_everything_after_it() {
    let mut r = rig("snapfail", Faults::default());
    r.lp.on_log_event(Some(LogEvent::SnapshotFailed(
        "the snapshot at 0x100000005 cannot be written, stopping: /x/snapshot.100000005.tmp: \
         No space left on device"
            .into(),
    )));
    assert_stopped_naming(&mut r, "snapshot.100000005");
}
