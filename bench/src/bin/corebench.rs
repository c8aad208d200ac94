//! A deterministic, single-threaded driver of three core `Server`s for counting the work per
//! write: instructions (run it under `valgrind --tool=callgrind` and read the inclusive cost
//! of `step_leader` / `step_follower`) and heap allocations (counted here). Every peer message
//! goes through the real peer codec, every logged txn through the real log record encoding,
//! every client request and reply through jute, so the counts cover the core and the codecs;
//! sockets, channels, threads and fsync are not in it (the node-level profile in
//! BENCHMARKS.md covers those). Each step's `Ready` is carried out by the test kit's one
//! interpreter (`ensemble_testkit::execute`) against an in-memory disk; the encodings happen in
//! its hooks.
//!
//!     cargo build --release -p ensemble-bench
//!     target/release/ensemble-corebench --workload write --ops 20000
//!     valgrind --tool=callgrind --callgrind-out-file=/tmp/cb.out \
//!         target/release/ensemble-corebench --workload write --ops 20000
//!     callgrind_annotate --inclusive=yes /tmp/cb.out | grep -E 'step_(leader|follower)'
//!
//! `--preload N` starts the three servers from a snapshot holding N more znodes of 100 bytes
//! (`/pre/bNNNN/nNNN`, 1000 per parent), and `--snap-count S` sets snapCount, so snapshots
//! fall inside the measured load; the wall time of every `handle_ready()` call is then reported
//! (the longest one, and how many took over 1 ms and 10 ms): the core thread's stalls.

use ensemble_core::config::LearnerType;
use ensemble_core::{
    Config, ConnId, Event, PeerMsg, Ready, Recovered, Server, ServerId, ServerState, Txn, Write,
    Zxid,
};
use ensemble_node::runtime::wire::{self, Channel};
use ensemble_node::storage::log::{HEADER_LEN, encode_record};
use ensemble_proto::jute;
use ensemble_proto::proto::{Acl, ConnectRequest, CreateMode, CreateOp, Request};
use ensemble_testkit::{Disk, Host, ToClient};
use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

struct Counting;
static ALLOCS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static A: Counting = Counting;

/// What arrives at a node, still encoded as it would be on a socket.
enum Input {
    Event(Event),
    Peer { from: u64, frame: Vec<u8> },
    Request { conn: ConnId, frame: Vec<u8> },
}

struct Node {
    server: Server,
    inbox: VecDeque<Input>,
    io: NodeIo,
    /// The server's output, reused across steps.
    ready: Ready,
}

/// Where one node's effects go: the kit's interpreter carries them out against this.
struct NodeIo {
    /// Appends are reported durable once a round (one group commit per node per round).
    disk: Disk,
    /// The "file": cleared every round (its bytes are what the log writer would write).
    log: Vec<u8>,
    /// Bytes that would go to clients.
    client_out: Vec<u8>,
    /// Encoded frames to each peer (index = sid - 1), one stream per peer as on a socket.
    outbox: [Vec<u8>; 3],
    replies: Vec<ConnId>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Workload {
    Write,
    Create,
}

struct Client {
    node: usize,
    conn: ConnId,
    inflight: usize,
    xid: i32,
    connected: bool,
}

fn main() {
    let mut workload = Workload::Write;
    let mut ops: u64 = 20_000;
    let mut inflight = 50usize;
    let mut sessions = 12usize;
    // New requests per client per round: bounds the group-commit batch (about sessions ×
    // this per fsync; the node under the benchmark's load logs 10-20 txns per fsync).
    let mut per_round = 1usize;
    let mut preload = 0usize;
    let mut snap_count = 100_000u64;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let v = args.next().unwrap_or_default();
        match a.as_str() {
            "--workload" => {
                workload = match v.as_str() {
                    "write" => Workload::Write,
                    "create" => Workload::Create,
                    _ => panic!("--workload write|create"),
                }
            }
            "--ops" => ops = v.parse().expect("--ops N"),
            "--inflight" => inflight = v.parse().expect("--inflight N"),
            "--sessions" => sessions = v.parse().expect("--sessions N"),
            "--per-round" => per_round = v.parse().expect("--per-round N"),
            "--preload" => preload = v.parse().expect("--preload N"),
            "--snap-count" => snap_count = v.parse().expect("--snap-count N"),
            _ => panic!("unknown flag {a}"),
        }
    }
    let members: BTreeMap<u64, LearnerType> =
        (1..=3).map(|i| (i, LearnerType::Participant)).collect();
    let mut now = 1_000_000u64;
    let recovered = preloaded(preload);
    let mut nodes: Vec<Node> = (1..=3)
        .map(|id| Node {
            server: Server::new(
                Config {
                    snap_count,
                    ..Config::new(id, members.clone())
                },
                recovered.clone(),
                now,
            )
            .expect("fresh server"),
            inbox: VecDeque::new(),
            io: NodeIo {
                disk: Disk::default(),
                log: Vec::new(),
                client_out: Vec::new(),
                outbox: Default::default(),
                replies: Vec::new(),
            },
            ready: Ready::new(),
        })
        .collect();

    // Elect and establish.
    let mut rounds = 0;
    while !nodes.iter().all(|n| n.server.is_serving()) {
        now += 5;
        for n in nodes.iter_mut() {
            n.inbox.push_back(Input::Event(Event::Tick));
        }
        round(&mut nodes, now, false);
        rounds += 1;
        assert!(rounds < 100_000, "no leader");
    }
    let leader = nodes
        .iter()
        .position(|n| n.server.state() == ServerState::Leading)
        .expect("a leader");

    // Sessions, round-robin over the nodes, as the benchmark's client spreads them.
    let mut clients: Vec<Client> = (0..sessions)
        .map(|i| Client {
            node: i % 3,
            conn: i as ConnId + 1,
            inflight: 0,
            xid: 1,
            connected: false,
        })
        .collect();
    for c in &clients {
        nodes[c.node]
            .inbox
            .push_back(Input::Event(Event::ClientConnected {
                conn: c.conn,
                addr: "127.0.0.1".into(),
                request: ConnectRequest {
                    protocol_version: 0,
                    last_zxid_seen: 0,
                    timeout_ms: 30_000,
                    session_id: 0,
                    passwd: vec![0; 16],
                    read_only: Some(false),
                },
            }));
    }
    let mut guard = 0;
    while !clients.iter().all(|c| c.connected) {
        now += 1;
        round(&mut nodes, now, false);
        for n in nodes.iter_mut() {
            n.io.replies.clear();
        }
        for c in clients.iter_mut() {
            c.connected = nodes[c.node].server.connection_session(c.conn).is_some();
        }
        guard += 1;
        assert!(guard < 10_000, "sessions never came up");
    }

    // The keys and the sequential parent, from the first client.
    let keys = 1000usize;
    let value = vec![b'v'; 100];
    let mut setup = vec![create_req("/bench", &[], CreateMode::Persistent)];
    setup.push(create_req("/bench/seq", &[], CreateMode::Persistent));
    for i in 0..keys {
        setup.push(create_req(
            &format!("/bench/k{i:06}"),
            &value,
            CreateMode::Persistent,
        ));
    }
    let n_setup = setup.len();
    for (i, r) in setup.into_iter().enumerate() {
        let c = &clients[0];
        nodes[c.node].inbox.push_back(Input::Request {
            conn: c.conn,
            frame: encode_req(i as i32 + 1, &r),
        });
    }
    clients[0].xid = n_setup as i32 + 1;
    let mut answered = 0;
    while answered < n_setup {
        now += 1;
        round(&mut nodes, now, false);
        for n in nodes.iter_mut() {
            answered += n.io.replies.len();
            n.io.replies.clear();
        }
    }

    let zxid0 = nodes[leader].server.tree().last_zxid();
    STALLS.with(|s| *s.borrow_mut() = Stalls::default());
    let start_allocs = ALLOCS.load(Ordering::Relaxed);
    let spec = Spec {
        workload,
        ops,
        inflight,
        per_round,
        keys,
        value,
    };
    let (done, role_rounds, role_allocs) = measured(&mut nodes, &mut clients, &spec, &mut now);
    let total_allocs = ALLOCS.load(Ordering::Relaxed) - start_allocs;
    let committed = nodes[leader].server.tree().last_zxid().counter() - zxid0.counter();
    println!(
        "{} {} ops answered, {} txns committed, {} rounds ({:.1} txns per round)",
        match workload {
            Workload::Write => "setData",
            Workload::Create => "create sequential",
        },
        done,
        committed,
        role_rounds,
        committed as f64 / role_rounds as f64
    );
    println!(
        "allocations per op: leader {:.1}, each follower {:.1}, all {:.1}",
        role_allocs[0] as f64 / done as f64,
        role_allocs[1] as f64 / 2.0 / done as f64,
        total_allocs as f64 / done as f64
    );
    STALLS.with(|s| {
        let s = s.borrow();
        println!(
            "handle_ready() calls {}: longest {:.2} ms, {} over 1 ms, {} over 10 ms; {} snapshots taken",
            s.calls,
            s.longest.as_secs_f64() * 1e3,
            s.over_1ms,
            s.over_10ms,
            s.snapshots
        );
    });
}

#[derive(Default)]
struct Stalls {
    calls: u64,
    longest: Duration,
    over_1ms: u64,
    over_10ms: u64,
    snapshots: u64,
}

thread_local! {
    static STALLS: std::cell::RefCell<Stalls> = std::cell::RefCell::new(Stalls::default());
}

/// A snapshot holding `n` more znodes of 100 bytes (none: a fresh start).
fn preloaded(n: usize) -> Recovered {
    use ensemble_core::tree::{DataTree, TreeOptions};
    use ensemble_core::txn::{Origin, Txn, TxnOp};
    if n == 0 {
        return Recovered::default();
    }
    let mut t = DataTree::new(TreeOptions {
        extended_types: true,
        plant: None,
        auth_providers: Default::default(),
    });
    let mut zxid = Zxid::new(1, 0);
    let mut apply = |t: &mut DataTree, path: String, data: &[u8]| {
        zxid = zxid.next();
        let txn = Txn {
            zxid,
            time: 1,
            session: 0,
            cxid: 0,
            origin: Origin::NONE,
            op: TxnOp::Write {
                request: create_req(&path, data, CreateMode::Persistent),
                auth: vec![],
            },
        };
        assert!(t.apply(&txn).reply.is_ok(), "preload {path}");
    };
    apply(&mut t, "/pre".into(), &[]);
    let value = vec![b'p'; 100];
    for i in 0..n {
        if i % 1000 == 0 {
            apply(&mut t, format!("/pre/b{:04}", i / 1000), &[]);
        }
        apply(
            &mut t,
            format!("/pre/b{:04}/n{:03}", i / 1000, i % 1000),
            &value,
        );
    }
    let snap = t.to_snapshot();
    Recovered {
        snapshot: Some((
            t.last_zxid(),
            ensemble_core::RecoveredSnapshot::Bytes(Arc::new(snap)),
        )),
        ..Recovered::default()
    }
}

struct Spec {
    workload: Workload,
    ops: u64,
    inflight: usize,
    per_round: usize,
    keys: usize,
    value: Vec<u8>,
}

/// The measured load: every client keeps `inflight` requests outstanding. (A function of its
/// own so that callgrind can collect it alone: `--toggle-collect=*measured*`.)
#[inline(never)]
fn measured(
    nodes: &mut [Node],
    clients: &mut [Client],
    spec: &Spec,
    now: &mut u64,
) -> (u64, u64, [u64; 2]) {
    // The measured load: every client keeps `spec.inflight` requests outstanding.
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut sent = 0u64;
    let mut done = 0u64;
    let mut role_allocs = [0u64; 2];
    let mut role_rounds = 0u64;
    while done < spec.ops {
        for c in clients.iter_mut() {
            let mut k = 0;
            while c.inflight < spec.inflight && sent < spec.ops && k < spec.per_round {
                k += 1;
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let req = match spec.workload {
                    Workload::Write => Request::SetData {
                        path: format!("/bench/k{:06}", rng as usize % spec.keys),
                        data: spec.value.clone(),
                        version: -1,
                    },
                    Workload::Create => create_req(
                        "/bench/seq/n",
                        &spec.value,
                        CreateMode::PersistentSequential,
                    ),
                };
                nodes[c.node].inbox.push_back(Input::Request {
                    conn: c.conn,
                    frame: encode_req(c.xid, &req),
                });
                c.xid += 1;
                c.inflight += 1;
                sent += 1;
            }
        }
        *now += 1;
        if role_rounds.is_multiple_of(20) {
            for n in nodes.iter_mut() {
                n.inbox.push_back(Input::Event(Event::Tick));
            }
        }
        role_rounds += 1;
        let a = round(nodes, *now, true);
        role_allocs[0] += a[0];
        role_allocs[1] += a[1];
        for (i, n) in nodes.iter_mut().enumerate() {
            for conn in n.io.replies.drain(..) {
                if let Some(c) = clients.iter_mut().find(|c| c.conn == conn && c.node == i) {
                    c.inflight -= 1;
                    done += 1;
                }
            }
        }
    }
    (done, role_rounds, role_allocs)
}

fn create_req(path: &str, data: &[u8], mode: CreateMode) -> Request {
    Request::Create {
        op: CreateOp::Create,
        path: path.to_string(),
        data: data.to_vec(),
        acl: Acl::open_unsafe(),
        mode,
        ttl: 0,
    }
}

fn encode_req(xid: i32, r: &Request) -> Vec<u8> {
    let mut b = Vec::new();
    jute::encode_request(xid, r, &mut b);
    b
}

/// Every node takes everything in its inbox; then what was sent is delivered and what was
/// appended is reported durable (one group commit per node per round). Returns allocations
/// made by the leader and by the followers.
fn round(nodes: &mut [Node], now: u64, count: bool) -> [u64; 2] {
    let mut allocs = [0u64; 2];
    for i in 0..nodes.len() {
        let before = ALLOCS.load(Ordering::Relaxed);
        if nodes[i].server.state() == ServerState::Leading {
            step_leader(&mut nodes[i], now);
            allocs[0] += ALLOCS.load(Ordering::Relaxed) - before;
        } else {
            step_follower(&mut nodes[i], now);
            allocs[1] += ALLOCS.load(Ordering::Relaxed) - before;
        }
        let from = nodes[i].server.id();
        for to in 0..nodes.len() {
            let stream = std::mem::take(&mut nodes[i].io.outbox[to]);
            let mut at = 0;
            while at < stream.len() {
                let len = u32::from_be_bytes(stream[at..at + 4].try_into().expect("4 bytes"));
                let end = at + 4 + len as usize;
                nodes[to].inbox.push_back(Input::Peer {
                    from,
                    frame: stream[at..end].to_vec(),
                });
                at = end;
            }
            nodes[i].io.outbox[to] = stream;
            nodes[i].io.outbox[to].clear();
        }
    }
    for n in nodes.iter_mut() {
        if let Some(z) = n.io.disk.fsync_all() {
            n.inbox
                .push_back(Input::Event(Event::Persisted { through: z }));
        }
        // no server restarts here, so the log's history is not kept (the "file" is cleared too)
        n.io.disk.forget_durable();
    }
    let _ = count;
    allocs
}

// Distinct bodies, so the linker cannot fold the two into one symbol.
#[inline(never)]
fn step_leader(n: &mut Node, now: u64) {
    step(n, std::hint::black_box(now))
}

#[inline(never)]
fn step_follower(n: &mut Node, now: u64) {
    step(n, std::hint::black_box(now));
    std::hint::black_box(1u8);
}

fn step(n: &mut Node, now: u64) {
    while let Some(input) = n.inbox.pop_front() {
        let ev = match input {
            Input::Event(e) => e,
            Input::Peer { from, frame } => Event::Peer {
                from,
                msg: wire::decode_body(&frame[4..], Channel::Quorum)
                    .or_else(|_| wire::decode_body(&frame[4..], Channel::Election))
                    .expect("our own frame"),
            },
            Input::Request { conn, frame } => {
                let (xid, request) = jute::decode_request(&frame[4..]).expect("our own frame");
                Event::Client { conn, xid, request }
            }
        };
        let started = Instant::now();
        n.server.handle_ready(now, ev, &mut n.ready);
        let took = started.elapsed();
        STALLS.with(|s| {
            let mut s = s.borrow_mut();
            s.calls += 1;
            s.longest = s.longest.max(took);
            s.over_1ms += u64::from(took > Duration::from_millis(1));
            s.over_10ms += u64::from(took > Duration::from_millis(10));
            s.snapshots += n
                .ready
                .batches()
                .iter()
                .flat_map(|b| b.writes())
                .filter(|w| matches!(w, Write::Snapshot { .. }))
                .count() as u64;
        });
        ensemble_testkit::execute(&mut n.io, n.server.id(), &mut n.ready);
    }
    n.io.log.clear();
    n.io.client_out.clear();
}

impl Host for NodeIo {
    fn disk(&mut self, _id: ServerId) -> &mut Disk {
        &mut self.disk
    }

    fn send(&mut self, _from: ServerId, to: ServerId, msg: PeerMsg) {
        wire::encode_frame(&msg, &mut self.outbox[to as usize - 1]).expect("encodable");
    }

    fn disconnect_peer(&mut self, _id: ServerId, _peer: ServerId) {}

    fn to_client(&mut self, _id: ServerId, out: ToClient) {
        match out {
            ToClient::Reply {
                conn,
                xid,
                zxid,
                opcode,
                reply,
            } => {
                jute::encode_reply(xid, zxid.as_i64(), opcode, &reply, &mut self.client_out);
                self.replies.push(conn);
            }
            ToClient::Connected { response, .. } => {
                jute::encode_connect_response(&response, &mut self.client_out);
            }
            ToClient::Watch { event, .. } => jute::encode_watch_event(&event, &mut self.client_out),
            ToClient::Close { .. } => {}
        }
    }

    fn appended(&mut self, _id: ServerId, txns: &[Arc<Txn>], _upto: u64) {
        for t in txns {
            // the bytes as one log file's records after its header
            encode_record(t, &mut self.log, HEADER_LEN as u64).expect("encodable");
        }
    }
}
