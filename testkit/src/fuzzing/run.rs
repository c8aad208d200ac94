//! The `ensemble` target: a small ensemble under an arbitrary program of events.

use super::Source;
use super::world::World;
use ensemble_core::server::Event;
use ensemble_core::zxid::Zxid;

/// Most steps one input may take; keeps each execution short.
pub const MAX_STEPS: usize = 600;

/// Fault-free rounds (20 ms of virtual time each, every message delivered and fsynced) after
/// which a healed ensemble must have a leader and every server synced to it: an election and a
/// sync take a few rounds, initLimit 25.
const MAX_HEAL_ROUNDS: usize = 500;

/// A 3-voter ensemble (plus an observer, when the first byte says so) fed an arbitrary sequence
/// of events: ticks, deliveries, reorderings across channels, link breaks, crashes and restarts
/// from an in-memory disk, partial fsyncs, client handshakes and arbitrary requests (garbage
/// paths and ACLs included), disconnects. After every step: no panic, at most one established
/// leader per epoch, equal applied zxid ⇒ equal tree digest (on any server, at any time).
pub fn ensemble(data: &[u8]) {
    ensemble_run(data);
}

/// What one [`ensemble`] run reached (so tests can check the harness gets somewhere).
#[derive(Clone, Debug, Default)]
pub struct EnsembleStats {
    pub steps: usize,
    /// Epochs that had an established leader.
    pub epochs: usize,
    /// The highest applied zxid on any server.
    pub max_applied: Zxid,
    /// Successful client replies (handshakes included).
    pub ok_replies: usize,
}

/// [`ensemble`], returning what the run reached.
pub fn ensemble_run(data: &[u8]) -> EnsembleStats {
    ensemble_inner(data, false)
}

/// Runs [`ensemble`] printing every step, event and effect to stderr, for debugging a crash
/// input (`ENSEMBLE_FUZZ_TRACE=file cargo test -p ensemble-core --test fuzz_corpus trace`).
pub fn ensemble_trace(data: &[u8]) -> EnsembleStats {
    ensemble_inner(data, true)
}

fn ensemble_inner(data: &[u8], trace: bool) -> EnsembleStats {
    let mut src = Source::new(data);
    let observer = src.byte() & 1 == 1;
    let mut w = World::new(observer);
    w.ens.trace = trace;
    let mut steps = 0;
    while !src.is_empty() && steps < MAX_STEPS {
        steps += 1;
        let op = src.byte() % 20;
        if w.ens.trace {
            eprintln!("== step {steps}: op {op}");
        }
        match op {
            // time passes
            0 | 1 => {
                let ms = match src.byte() % 8 {
                    0 => 1 + u64::from(src.u16() % 5000),
                    _ => 1 + u64::from(src.byte() % 60),
                };
                w.tick(ms);
            }
            // deliver the head of one link
            2..=5 => {
                let busy = w.busy_links();
                if !busy.is_empty() {
                    let l = *src.pick(&busy);
                    w.deliver(l);
                }
            }
            // deliver everything in flight, a few rounds
            6 => {
                for _ in 0..4 {
                    for l in w.busy_links() {
                        w.deliver(l);
                    }
                }
            }
            // lose an election message
            7 => {
                let busy: Vec<_> = w.busy_links().into_iter().filter(|l| l.election).collect();
                if !busy.is_empty() {
                    let l = *src.pick(&busy);
                    w.ens.links.pop(l);
                }
            }
            // the network breaks a quorum connection: both ends notice
            8 => {
                let a = w.pick_server(&mut src);
                let b = w.pick_server(&mut src);
                if a != b {
                    w.ens.break_link(a, b, false);
                    w.step(a, Event::PeerDisconnected { peer: b });
                }
            }
            9 => {
                let id = w.pick_server(&mut src);
                w.crash(id);
            }
            10 => {
                let id = w.pick_server(&mut src);
                if !w.up(id) {
                    w.start(id);
                }
            }
            // fsync some or all of a server's appended txns
            11 | 12 => {
                let id = w.pick_server(&mut src);
                let n = if src.bool() {
                    usize::MAX
                } else {
                    1 + src.below(4)
                };
                w.fsync(id, n);
            }
            13 => w.connect(&mut src),
            14..=16 => {
                if let Some((conn, server)) = w.pick_conn(&mut src) {
                    let xid = if src.byte().is_multiple_of(16) {
                        src.i32()
                    } else {
                        steps as i32
                    };
                    let request = w.gen_request(&mut src);
                    w.step(server, Event::Client { conn, xid, request });
                }
            }
            17 => {
                if let Some((conn, server)) = w.pick_conn(&mut src) {
                    w.ens.clients.conns.remove(&conn);
                    w.step(server, Event::ClientDisconnected { conn });
                }
            }
            // a request on a connection the server never saw (or already closed)
            18 => {
                let server = w.pick_server(&mut src);
                let conn = w.ens.clients.next_conn + u64::from(src.byte());
                let request = w.gen_request(&mut src);
                w.step(
                    server,
                    Event::Client {
                        conn,
                        xid: 1,
                        request,
                    },
                );
            }
            // a fault-free stretch, so elections finish and requests commit
            _ => {
                let rounds = 1 + src.below(8);
                w.calm(rounds);
            }
        }
        w.check();
    }
    // Heal: every server up, everything delivered; the invariants must still hold.
    for id in w.ids() {
        if !w.up(id) {
            w.start(id);
        }
    }
    w.calm(30);
    w.check();
    // Liveness once faults heal, and durability: every zxid a client was shown was committed,
    // so every server gets to it.
    let mut rounds = 30;
    while !w.settled(w.ens.clients.max_zxid_seen) {
        assert!(
            rounds < MAX_HEAL_ROUNDS,
            "no leader with every server synced to zxid {:#x} {rounds} fault-free rounds after \
             healing",
            w.ens.clients.max_zxid_seen
        );
        w.calm(10);
        w.check();
        rounds += 10;
    }
    EnsembleStats {
        steps,
        epochs: w.leaders.len(),
        max_applied: w.digests.keys().next_back().copied().unwrap_or_default(),
        ok_replies: w.ens.clients.ok_replies,
    }
}
