//! The order contract: classification keeps the core's order, the driver executes writes
//! before the actions that follow them, and a failed write releases nothing after it.

use super::*;
use crate::config::{Config, LearnerType};
use crate::peer::{Notification, Vote};
use crate::server::{Event, Recovered, Server};
use crate::txn::{Origin, TxnOp};
use ensemble_proto::proto::Response;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

/// What a store and a sink were asked, in one sequence: their relative order is the point.
type Log = Rc<RefCell<Vec<String>>>;

/// A store that logs each write and fails the `fail_at`-th one (counting from 0).
struct Store {
    log: Log,
    writes: usize,
    fail_at: Option<usize>,
}

impl DurableStore for Store {
    type Error = String;
    fn write(&mut self, write: Write) -> Result<(), String> {
        let name = name(&Output::Write(write));
        self.log.borrow_mut().push(name.clone());
        let n = self.writes;
        self.writes += 1;
        if self.fail_at == Some(n) {
            return Err(format!("{name} failed"));
        }
        Ok(())
    }
}

struct Sink(Log);

impl ActionSink for Sink {
    fn act(&mut self, action: Action) {
        self.0.borrow_mut().push(name(&Output::Action(action)));
    }
}

fn rig(fail_at: Option<usize>) -> (Log, Store, Sink) {
    let log = Log::default();
    let store = Store {
        log: log.clone(),
        writes: 0,
        fail_at,
    };
    (log.clone(), store, Sink(log))
}

/// Names that tell the outputs of a test apart.
fn name(o: &Output) -> String {
    match o {
        Output::Action(a) => match a {
            Action::Send { to, .. } => format!("send{to}"),
            Action::SendSnapshot { to, .. } => format!("snap{to}"),
            Action::DisconnectPeer { peer } => format!("disconnect{peer}"),
            Action::ConnectReply { conn, .. } => format!("connect{conn}"),
            Action::Reply { conn, xid, .. } => format!("reply{conn}.{xid}"),
            Action::Watch { conn, .. } => format!("watch{conn}"),
            Action::Close { conn } => format!("close{conn}"),
            Action::StateChanged { epoch, .. } => format!("state{epoch}"),
            Action::EphemeralsDeleted { zxid, .. } => format!("ephemerals{zxid}"),
            Action::QuorumCounted { purpose, .. } => format!("counted-{purpose}"),
        },
        Output::Write(w) => match w {
            Write::Append { txns } => format!("append{}", txns[0].zxid),
            Write::Truncate { after } => format!("truncate{after}"),
            Write::SnapshotPart { index, .. } => format!("part{index}"),
            Write::Snapshot { reset_log, .. } => format!("snapshot{}", u8::from(*reset_log)),
            Write::PersistEpochs(e) => format!("epochs{}", e.accepted_epoch),
        },
    }
}

fn send(to: ServerId) -> Output {
    Output::Action(Action::Send {
        to,
        msg: PeerMsg::Ack {
            zxid: Zxid::new(1, 1),
        },
    })
}

fn reply(xid: i32) -> Output {
    Output::Action(Action::Reply {
        conn: 1,
        xid,
        zxid: Zxid::ZERO,
        opcode: OpCode::Exists,
        reply: Ok(Response::Empty),
    })
}

fn append(counter: u32) -> Output {
    Output::Write(Write::Append {
        txns: vec![Arc::new(Txn {
            zxid: Zxid::new(1, counter),
            time: 0,
            session: 1,
            cxid: 0,
            origin: Origin::NONE,
            op: TxnOp::CloseSession,
        })],
    })
}

fn epochs(accepted_epoch: u32) -> Output {
    Output::Write(Write::PersistEpochs(Epochs {
        accepted_epoch,
        accepted_from: 2,
        current_epoch: 0,
    }))
}

fn snapshot(reset_log: bool) -> Output {
    Output::Write(Write::Snapshot {
        zxid: Zxid::ZERO,
        parts: 0,
        data: Arc::new(vec![]),
        reset_log,
    })
}

fn names(outputs: &[Output]) -> Vec<String> {
    outputs.iter().map(name).collect()
}

/// The batches as (writes, then) names.
fn shape(ready: &Ready) -> Vec<(Vec<String>, Vec<String>)> {
    ready
        .batches()
        .iter()
        .map(|b| {
            let w = b
                .writes()
                .iter()
                .cloned()
                .map(Output::from)
                .collect::<Vec<_>>();
            let a = b
                .then()
                .iter()
                .cloned()
                .map(Output::from)
                .collect::<Vec<_>>();
            (names(&w), names(&a))
        })
        .collect()
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

#[test]
fn barriers_are_truncate_epochs_and_the_leaders_snap() {
    let barrier = |o: Output| match o {
        Output::Write(w) => w.is_barrier(),
        Output::Action(_) => panic!("not a write"),
    };
    assert!(barrier(epochs(1)));
    assert!(barrier(Output::Write(Write::Truncate {
        after: Zxid::ZERO
    })));
    assert!(barrier(snapshot(true)));
    assert!(!barrier(snapshot(false)));
    assert!(!barrier(append(1)));
    assert!(!barrier(Output::Write(Write::SnapshotPart {
        zxid: Zxid::ZERO,
        index: 0,
        data: Arc::new(vec![]),
    })));
}

#[test]
fn a_write_after_an_action_opens_a_batch() {
    let ready: Ready = [
        send(2),
        append(1),
        send(3),
        epochs(1),
        Output::Write(Write::Truncate { after: Zxid::ZERO }),
        reply(1),
        Output::Action(Action::StateChanged {
            state: ServerState::Following,
            epoch: 1,
        }),
        append(2),
    ]
    .into_iter()
    .collect();
    assert_eq!(
        shape(&ready),
        [
            (s(&[]), s(&["send2"])),
            (s(&["append0x100000001"]), s(&["send3"])),
            (s(&["epochs1", "truncate0x0"]), s(&["reply1.1", "state1"])),
            (s(&["append0x100000002"]), s(&[])),
        ]
    );
}

/// A deterministic mix of effects (xorshift), the same on every run.
fn mix(seed: u64, n: usize) -> Vec<Output> {
    let mut x = seed | 1;
    let mut counter = 0;
    (0..n)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            match x % 6 {
                0 => {
                    counter += 1;
                    append(counter)
                }
                1 => epochs(i as u32),
                2 => snapshot(x.is_multiple_of(4)),
                3 => send(i as u64),
                4 => reply(i as i32),
                _ => Output::Action(Action::Close { conn: i as u64 }),
            }
        })
        .collect()
}

#[test]
fn drive_executes_in_the_core_order() {
    let mut ready = Ready::new();
    for seed in 1..200 {
        let effects = mix(seed, (seed % 23) as usize);
        ready.extend(effects.iter().cloned());
        let (log, mut store, mut sink) = rig(None);
        assert_eq!(ready.drive(&mut store, &mut sink), Ok(()));
        assert_eq!(*log.borrow(), names(&effects), "seed {seed}");
        assert!(ready.is_empty() && ready.batches().is_empty());
    }
}

#[test]
fn a_failed_barrier_releases_nothing_after_it() {
    let effects = vec![
        send(2),
        append(1),
        reply(1),
        epochs(1),
        send(3),
        Output::Write(Write::Truncate { after: Zxid::ZERO }),
        reply(2),
    ];
    let mut ready: Ready = effects.into_iter().collect();
    // Writes: append (0), epochs (1).
    let (log, mut store, mut sink) = rig(Some(1));
    assert_eq!(
        ready.drive(&mut store, &mut sink),
        Err("epochs1 failed".to_string())
    );
    assert_eq!(
        *log.borrow(),
        s(&["send2", "append0x100000001", "reply1.1", "epochs1"])
    );
    assert!(ready.is_empty(), "the rest is dropped");
    // Reused afterwards, it starts clean.
    ready.push(reply(3));
    let (log, mut store, mut sink) = rig(None);
    assert_eq!(ready.drive(&mut store, &mut sink), Ok(()));
    assert_eq!(*log.borrow(), s(&["reply1.3"]));
}

#[test]
fn a_failed_write_of_any_kind_stops_the_writes_and_actions_after_it() {
    for seed in 1..200 {
        let effects = mix(seed, 16);
        let writes: Vec<usize> = effects
            .iter()
            .enumerate()
            .filter(|(_, o)| matches!(o, Output::Write(_)))
            .map(|(i, _)| i)
            .collect();
        for (k, &at) in writes.iter().enumerate() {
            let mut ready: Ready = effects.iter().cloned().collect();
            let (log, mut store, mut sink) = rig(Some(k));
            assert!(ready.drive(&mut store, &mut sink).is_err());
            assert_eq!(
                *log.borrow(),
                names(&effects[..=at]),
                "seed {seed} write {k}"
            );
            assert!(ready.is_empty());
        }
    }
}

/// A store and a sink in one object, for `drive_both`.
struct Joint(Store, Sink);

impl DurableStore for Joint {
    type Error = String;
    fn write(&mut self, write: Write) -> Result<(), String> {
        self.0.write(write)
    }
}

impl ActionSink for Joint {
    fn act(&mut self, action: Action) {
        self.1.act(action)
    }
}

#[test]
fn drive_both_executes_as_drive_does() {
    let mut failed = 0;
    for seed in 1..100 {
        let effects = mix(seed, 16);
        for fail_at in std::iter::once(None).chain((0..8).map(Some)) {
            let (apart, mut store, mut sink) = rig(fail_at);
            let mut ready: Ready = effects.iter().cloned().collect();
            let by_drive = ready.drive(&mut store, &mut sink);
            let (both, store, sink) = rig(fail_at);
            let mut ready: Ready = effects.iter().cloned().collect();
            let by_both = ready.drive_both(&mut Joint(store, sink));
            assert_eq!(by_both, by_drive, "seed {seed} fail_at {fail_at:?}");
            failed += usize::from(by_both.is_err());
            assert_eq!(
                *both.borrow(),
                *apart.borrow(),
                "seed {seed} fail_at {fail_at:?}"
            );
            assert!(ready.is_empty());
        }
    }
    assert!(failed > 100, "the failing path is exercised ({failed})");
}

#[test]
#[should_panic(expected = "out of zxid order")]
fn an_append_out_of_zxid_order_is_refused() {
    let (Output::Write(Write::Append { txns: a }), Output::Write(Write::Append { txns: b })) =
        (append(2), append(1))
    else {
        unreachable!()
    };
    Ready::new().push(Write::Append {
        txns: a.into_iter().chain(b).collect(),
    });
}

#[test]
#[should_panic(expected = "an empty append")]
fn an_empty_append_is_refused() {
    Ready::new().push(Write::Append { txns: vec![] });
}

/// Server 1 of three, following server 3: the handlers' pushes come out batched, and
/// discovery's acceptedEpoch is written before the ACKEPOCH that depends on it.
#[test]
fn handle_ready_puts_the_epochs_before_the_ackepoch() {
    let members: BTreeMap<ServerId, LearnerType> =
        (1..=3).map(|id| (id, LearnerType::Participant)).collect();
    let mut server = Server::new(Config::new(1, members), Recovered::default(), 0).expect("server");
    let vote = |election_epoch, state| Notification {
        vote: Vote {
            leader: 3,
            zxid: Zxid::ZERO,
            peer_epoch: 0,
        },
        state,
        election_epoch,
        config_version: 0,
        intact: true,
    };
    let peer = |from, msg| Event::Peer { from, msg };
    let script = [
        Event::Tick,
        peer(3, PeerMsg::Notification(vote(1, ServerState::Leading))),
        peer(2, PeerMsg::Notification(vote(1, ServerState::Following))),
        peer(3, PeerMsg::LeaderInfo { new_epoch: 1 }),
        Event::Tick,
    ];
    let mut ready = Ready::new();
    let mut flat = Vec::new();
    for (now, event) in script.into_iter().enumerate() {
        server.handle_ready(now as u64, event, &mut ready);
        for b in ready.batches() {
            flat.extend(b.writes().iter().cloned().map(Output::from));
            flat.extend(b.then().iter().cloned().map(Output::from));
        }
        ready.clear();
    }
    let at = |want: &dyn Fn(&Output) -> bool| flat.iter().position(want);
    let epochs = at(&|o| {
        matches!(
            o,
            Output::Write(Write::PersistEpochs(Epochs {
                accepted_epoch: 1,
                ..
            }))
        )
    });
    let ackepoch = at(&|o| {
        matches!(
            o,
            Output::Action(Action::Send {
                msg: PeerMsg::AckEpoch { .. },
                ..
            })
        )
    });
    assert!(
        matches!((epochs, ackepoch), (Some(e), Some(a)) if e < a),
        "{:?}",
        names(&flat)
    );
    assert_eq!(server.state(), ServerState::Following);
}

/// `actions_since` yields exactly what was pushed after the mark, across batches, whatever
/// was in the `Ready` before (what the leader counts as sent to its learners in one step).
#[test]
fn actions_since_a_mark_are_the_later_ones() {
    let before: [&[Output]; 3] = [&[], &[send(1)], &[append(1), send(2), reply(3)]];
    let after = [send(4), append(2), reply(5), send(6), epochs(2), send(7)];
    for b in before {
        let mut ready = Ready::new();
        for o in b {
            ready.push(o.clone());
        }
        let mark = ready.mark();
        for o in &after {
            ready.push(o.clone());
        }
        let got: Vec<String> = ready
            .actions_since(mark)
            .map(|a| name(&Output::Action(a.clone())))
            .collect();
        assert_eq!(
            got,
            s(&["send4", "reply1.5", "send6", "send7"]),
            "after {b:?}"
        );
    }
}
