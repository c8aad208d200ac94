//! Writes the seed inputs of every target under `fuzz/corpus/<target>/seed-*`:
//! real client frames recorded from ZooKeeper 3.8 clients (kazoo, zkCli.sh), the seed
//! tutorial's zoo.cfg files, and peer frames, txn logs and snapshots produced by the core and
//! written by the node's own storage code.
//!
//! `cargo run --manifest-path fuzz/Cargo.toml --bin seed_corpus -- WIRE_SAMPLES.jsonl`
//! (run from the repository root; the jsonl is `proto/tests/golden/zk-3.8-wire-samples.jsonl`).

use ensemble_node::runtime::wire::{self, Channel};
use ensemble_node::storage::{Storage, StorageOptions, snapshot};
use ensemble_proto::jute;
use ensemble_proto::proto::{OpCode, Request, WatcherType};
use ensemble_testkit::fuzzing::{REPLY_OPCODES, sample_run};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = PathBuf::from("fuzz/corpus").join(target);
    std::fs::create_dir_all(&dir).expect("corpus dir");
    let name: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    std::fs::write(dir.join(format!("seed-{name}")), bytes).expect("write seed");
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).expect("hex"))
        .collect()
}

/// The few fields of a wire-sample line we need, without a JSON dependency.
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let k = format!("\"{key}\": \"");
    let at = line.find(&k)? + k.len();
    let end = line[at..].find('"')?;
    Some(&line[at..at + end])
}

fn opcode_of(op: &str) -> Option<OpCode> {
    Some(match op {
        "create" => OpCode::Create,
        "create2" => OpCode::Create2,
        "createContainer" => OpCode::CreateContainer,
        "createTTL" => OpCode::CreateTtl,
        "delete" => OpCode::Delete,
        "exists" => OpCode::Exists,
        "getData" => OpCode::GetData,
        "setData" => OpCode::SetData,
        "getACL" => OpCode::GetAcl,
        "setACL" => OpCode::SetAcl,
        "getChildren" => OpCode::GetChildren,
        "getChildren2" => OpCode::GetChildren2,
        "sync" => OpCode::Sync,
        "multi" => OpCode::Multi,
        "multiRead" => OpCode::MultiRead,
        "auth" => OpCode::Auth,
        "closeSession" => OpCode::CloseSession,
        "checkWatches" => OpCode::CheckWatches,
        "addWatch" => OpCode::AddWatch,
        "getEphemerals" => OpCode::GetEphemerals,
        "getAllChildrenNumber" => OpCode::GetAllChildrenNumber,
        "whoAmI" => OpCode::WhoAmI,
        _ => return None,
    })
}

fn client_frames(samples: &Path) {
    let text = std::fs::read_to_string(samples).expect("wire samples");
    let mut n: BTreeMap<String, usize> = BTreeMap::new();
    for line in text.lines() {
        let (Some(dir), Some(op), Some(h)) =
            (field(line, "dir"), field(line, "op"), field(line, "hex"))
        else {
            continue;
        };
        let client = field(line, "client").unwrap_or("x");
        let bytes = hex(h);
        let k = format!("{client}-{op}");
        let i = n.entry(k.clone()).or_default();
        *i += 1;
        let name = format!("{k}-{i}");
        if dir == "c2s" {
            write("jute_request", &name, &bytes);
        } else {
            let sel = match op {
                "connect-response" => 0xfe,
                "watch-event" => 0xff,
                _ => {
                    let Some(code) = opcode_of(op.trim_end_matches("-response")) else {
                        continue;
                    };
                    REPLY_OPCODES
                        .iter()
                        .position(|c| *c == code)
                        .expect("listed") as u8
                }
            };
            let mut v = vec![sel];
            v.extend_from_slice(&bytes);
            write("jute_reply", &name, &v);
        }
    }
    // Requests no recorded client sent: encoded by our own codec.
    let extra = [
        Request::Ping,
        Request::SetWatches {
            relative_zxid: 5,
            data: vec!["/a".into()],
            exist: vec!["/b".into()],
            child: vec!["/".into()],
            persistent: vec![],
            persistent_recursive: vec![],
            v2: false,
        },
        Request::SetWatches {
            relative_zxid: 5,
            data: vec!["/a".into()],
            exist: vec![],
            child: vec![],
            persistent: vec!["/p".into()],
            persistent_recursive: vec!["/r".into()],
            v2: true,
        },
        Request::RemoveWatches {
            path: "/a".into(),
            kind: WatcherType::Any,
        },
        Request::Check {
            path: "/a".into(),
            version: 3,
        },
    ];
    for (i, r) in extra.iter().enumerate() {
        let mut out = Vec::new();
        jute::encode_request(i as i32 + 100, r, &mut out);
        write(
            "jute_request",
            &format!("own-{:?}-{i}", r.opcode()),
            &out[4..],
        );
    }
    // Frames `decode_request` refuses and the node triages (`jute::triage_request`).
    let int = |v: &mut Vec<u8>, x: i32| v.extend_from_slice(&x.to_be_bytes());
    let string = |v: &mut Vec<u8>, s: &str| {
        v.extend_from_slice(&(s.len() as i32).to_be_bytes());
        v.extend_from_slice(s.as_bytes());
    };
    let create_body = |v: &mut Vec<u8>, flags: i32| {
        string(v, "/x");
        int(v, 1);
        v.push(7);
        int(v, 1); // one ACL: perms, "world", "anyone"
        int(v, 31);
        string(v, "world");
        string(v, "anyone");
        int(v, flags);
    };
    let mut bad: Vec<(&str, Vec<u8>)> = Vec::new();
    let mut v = Vec::new();
    jute::encode_request(
        9,
        &Request::Exists {
            path: "/a".into(),
            watch: false,
        },
        &mut v,
    );
    v.extend_from_slice(&[1, 2, 3]);
    bad.push(("trailing", v[4..].to_vec()));
    let mut v = Vec::new();
    int(&mut v, 9);
    int(&mut v, 999);
    bad.push(("unknown-opcode", v));
    let mut v = Vec::new();
    int(&mut v, 9);
    int(&mut v, OpCode::Reconfig as i32);
    for s in ["server.4=localhost:2890:3890", "", ""] {
        string(&mut v, s);
    }
    v.extend_from_slice(&(-1i64).to_be_bytes());
    bad.push(("reconfig", v));
    let mut v = Vec::new();
    int(&mut v, 9);
    int(&mut v, OpCode::DeleteContainer as i32);
    string(&mut v, "/c");
    bad.push(("deleteContainer", v));
    let mut v = Vec::new();
    int(&mut v, 9);
    int(&mut v, OpCode::Create as i32);
    create_body(&mut v, 99);
    bad.push(("create-bad-flags", v));
    let mut v = Vec::new();
    int(&mut v, 9);
    int(&mut v, OpCode::Multi as i32);
    for (op, flags) in [(OpCode::Create, 0), (OpCode::Create, 99)] {
        int(&mut v, op as i32);
        v.push(0);
        int(&mut v, -1);
        create_body(&mut v, flags);
    }
    int(&mut v, OpCode::Delete as i32);
    v.push(0);
    int(&mut v, -1);
    string(&mut v, "/x");
    int(&mut v, -1);
    int(&mut v, -1);
    v.push(1);
    int(&mut v, -1);
    bad.push(("multi-bad-flags", v));
    for (name, v) in bad {
        write("jute_request", &format!("triage-{name}"), &v);
    }
}

fn configs() {
    let servers = "server.1=localhost:2887:3887\nserver.2=localhost:2888:3888\nserver.3=localhost:2889:3889\n";
    for i in 1..=3u8 {
        let cfg = format!(
            "tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir=@DATA@\nclientPort=218{i}\ndataLogDir=@DATA@/logs_{i}\n{servers}"
        );
        let mut v = vec![i];
        v.extend_from_slice(cfg.as_bytes());
        write("zoo_cfg", &format!("zoo{i}.cfg"), &v);
    }
    let obs = format!(
        "tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir=@DATA@\nclientPort=2184\ndataLogDir=@DATA@\npeerType=observer\n{servers}server.4=localhost:2890:3890:observer\n"
    );
    let mut v = vec![4];
    v.extend_from_slice(obs.as_bytes());
    write("zoo_cfg", "zoo4-observer.cfg", &v);
    let standalone = "# standalone\ntickTime=2000\ndataDir=@DATA@\nclientPort=2181\nmaxClientCnxns=60\nautopurge.snapRetainCount=3\nautopurge.purgeInterval=1\n4lw.commands.whitelist=stat, ruok, conf, isro\nminSessionTimeout=4000\nmaxSessionTimeout=40000\n";
    let mut v = vec![0];
    v.extend_from_slice(standalone.as_bytes());
    write("zoo_cfg", "standalone.cfg", &v);
    let modern = format!(
        "tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir=@DATA@\nclientPortAddress=127.0.0.1\nsnapCount=100000\njute.maxbuffer=1048575\npreAllocSize=65536\nforceSync=yes\nzookeeper.extendedTypesEnabled=true\nserver.1=127.0.0.1:2887:3887;2181\nserver.2=127.0.0.1:2888:3888:participant;127.0.0.1:2182\n{}",
        "server.3=[::1]:2889:3889;2183\n"
    );
    let mut v = vec![2];
    v.extend_from_slice(modern.as_bytes());
    write("zoo_cfg", "modern.cfg", &v);
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ensemble-seed-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("scratch");
    d
}

fn main() {
    let samples = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "proto/tests/golden/zk-3.8-wire-samples.jsonl".into());
    client_frames(Path::new(&samples));
    configs();

    let s = sample_run();
    eprintln!(
        "sample run: {} peer messages, {} appends, {} snapshots",
        s.peer_msgs.len(),
        s.txns.len(),
        s.snapshots.len()
    );
    // Peer frames: one per kind of message, on its channel, half with the hello first.
    let mut seen = BTreeMap::new();
    for m in &s.peer_msgs {
        let name = m.name();
        let c = seen.entry(name).or_insert(0usize);
        *c += 1;
        if *c > 3 {
            continue;
        }
        let ch = Channel::of(m);
        let mut v = vec![(ch as u8) | if *c % 2 == 0 { 2 } else { 0 }];
        if *c % 2 == 0 {
            v.extend_from_slice(&wire::hello(wire::HELLO_MAGIC, ch, 2));
            v.extend_from_slice(&wire::hello_addr("127.0.0.1:2888:3888"));
        }
        wire::encode_frame(m, &mut v).expect("encode");
        write("peer_frame", &format!("{name}-{c}"), &v);
    }

    // Txn logs written by the node's storage code.
    let dir = scratch("log");
    let opts = StorageOptions {
        snap_dir: dir.join("data/version-2"),
        log_dir: dir.join("log/version-2"),
        prealloc: 4096,
        force_sync: false,
        snap_retain: 3,
        compression: Default::default(),
        tree: None,
    };
    let mut last = None;
    let mut batches = 0;
    {
        let opened = Storage::open(opts.clone(), |_| {}).expect("open storage");
        for batch in &s.txns {
            let batch: Vec<_> = batch
                .iter()
                .filter(|t| last.is_none_or(|l| t.zxid > l))
                .map(|t| std::sync::Arc::new(t.clone()))
                .collect();
            if let Some(t) = batch.last() {
                last = Some(t.zxid);
                opened.storage.append(batch).expect("append");
                batches += 1;
            }
        }
        opened.storage.sync().expect("sync");
        opened.storage.close().expect("close");
    }
    eprintln!("wrote {batches} batches, through {last:?}");
    for (k, ent) in std::fs::read_dir(&opts.log_dir)
        .expect("log dir")
        .enumerate()
    {
        let p = ent.expect("entry").path();
        let bytes = std::fs::read(&p).expect("read log");
        // As the file is (checksums right, header present), and as the body alone with the
        // harness adding header and checksums.
        let mut v = vec![0u8];
        v.extend_from_slice(&bytes);
        write("txn_log", &format!("node-log-{k}"), &v);
        let mut v = vec![3u8];
        v.extend_from_slice(&bytes[16..]);
        write("txn_log", &format!("node-log-body-{k}"), &v);
        // torn in the middle of the last record
        let end = bytes.iter().rposition(|b| *b != 0).unwrap_or(0);
        let mut v = vec![0u8];
        v.extend_from_slice(&bytes[..end.saturating_sub(3)]);
        write("txn_log", &format!("node-log-torn-{k}"), &v);
    }

    // Snapshots: raw tree bytes and files written by the node's storage code.
    let sdir = scratch("snap");
    for (i, snap) in s.snapshots.iter().enumerate().take(6) {
        write("tree_snapshot", &format!("core-{i}"), snap);
        let mut v = vec![1u8 | 8];
        v.extend_from_slice(snap);
        write("snapshot_file", &format!("body-{i}"), &v);
        let zxid = ensemble_core::Zxid(0x2_0000_0005);
        let p = snapshot::write_snapshot(&sdir, zxid, snap).expect("write snapshot");
        let mut v = vec![0u8];
        v.extend_from_slice(&std::fs::read(&p).expect("read"));
        write("snapshot_file", &format!("node-file-{i}"), &v);
    }
    let mut v = vec![2u8 | 4];
    v.extend_from_slice(b"3\n2\n");
    write("snapshot_file", "epochs", &v);

    // The core: programs found by a short biased random search, keeping the ones that get
    // furthest (leaders elected, clients served, txns committed), with and without an observer.
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut best: Vec<(usize, Vec<u8>)> = Vec::new();
    for round in 0..800 {
        // a healthy start, then a random tail of faults and requests
        let mut prog = ensemble_testkit::fuzzing::calm_program(round % 2 == 1);
        let len = 20 + next() % 120;
        for _ in 0..len {
            let op =
                [19u8, 19, 13, 14, 14, 15, 16, 11, 12, 0, 2, 6, 9, 10, 8, 17][next() as usize % 16];
            prog.push(op);
            for _ in 0..next() % 10 {
                prog.push((next() % 256) as u8);
            }
        }
        let Ok(st) = std::panic::catch_unwind(|| ensemble_testkit::fuzzing::ensemble_run(&prog))
        else {
            // a finding, not a seed: keep it aside for a look
            let d = PathBuf::from("fuzz/artifacts/ensemble");
            std::fs::create_dir_all(&d).expect("artifacts");
            std::fs::write(d.join(format!("seed-search-crash-{round}")), &prog).expect("write");
            continue;
        };
        let score = st.max_applied.counter() as usize * 4 + st.ok_replies + st.epochs * 10;
        best.push((score, prog));
        best.sort_by_key(|b| std::cmp::Reverse(b.0));
        best.truncate(8);
    }
    for observer in [false, true] {
        let name = if observer { "calm-observer" } else { "calm" };
        write(
            "ensemble",
            name,
            &ensemble_testkit::fuzzing::calm_program(observer),
        );
    }
    for (i, (score, prog)) in best.iter().enumerate() {
        eprintln!("ensemble seed {i}: score {score}, {} bytes", prog.len());
        write("ensemble", &format!("search-{i}"), prog);
    }
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&sdir);
}
