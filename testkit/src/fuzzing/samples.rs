//! Seeds for the corpus: a scripted fault-free run's messages, txns and snapshots, and a
//! well-formed `ensemble` program.

use super::Source;
use super::world::World;
use ensemble_core::peer::PeerMsg;
use ensemble_core::server::Event;
use ensemble_core::txn::{ServerId, Txn};
use ensemble_proto::proto::{Acl, CreateMode, CreateOp, Id, MultiOp, Request};

// ---- seeds ----

/// What a short fault-free run with a scripted workload produced: real peer messages, the txns
/// servers appended, and snapshot bytes. `fuzz/src/bin/seed_corpus.rs` turns them into seeds.
#[derive(Default)]
pub struct Samples {
    pub peer_msgs: Vec<PeerMsg>,
    pub txns: Vec<Vec<Txn>>,
    pub snapshots: Vec<Vec<u8>>,
}

/// Run a 3-voter ensemble (with an observer) through elections, every kind of write, a crash
/// and a restart (so DIFF, TRUNC and SNAP happen), recording what went over the wire and to disk.
pub fn sample_run() -> Samples {
    let mut w = World::new(true);
    let mut samples = Samples::default();
    let record = |w: &mut World, samples: &mut Samples| {
        for _ in 0..64 {
            let busy = w.busy_links();
            if busy.is_empty() {
                break;
            }
            for l in busy {
                if let Some(q) = w.ens.links.queue(l) {
                    samples.peer_msgs.extend(q.iter().cloned());
                }
                w.deliver(l);
            }
        }
        for d in w.ens.disks.values() {
            if !d.unsynced().is_empty() {
                samples
                    .txns
                    .push(d.unsynced().iter().map(|e| Txn::clone(&e.txn)).collect());
            }
            if let Some((_, s)) = &d.snapshot {
                samples.snapshots.push(s.to_vec());
            }
        }
        for id in w.ids() {
            w.fsync(id, usize::MAX);
        }
        w.tick(20);
    };
    for _ in 0..10 {
        record(&mut w, &mut samples);
    }
    let req = |w: &mut World, server: ServerId, r: Request| {
        if let Some((&conn, _)) = w.ens.clients.conns.iter().find(|(_, s)| **s == server) {
            w.step(
                server,
                Event::Client {
                    conn,
                    xid: 7,
                    request: r,
                },
            );
        }
    };
    for server in [1, 2, 4] {
        // session 0, timeout 1000, on `server`
        w.connect(&mut Source::new(&[server as u8 - 1, 0, 1, 2, 2, 0]));
    }
    for _ in 0..5 {
        record(&mut w, &mut samples);
    }
    let acl = Acl::open_unsafe();
    let create = |path: &str, mode: CreateMode, op: CreateOp| Request::Create {
        op,
        path: path.into(),
        data: b"hello".to_vec(),
        acl: acl.clone(),
        mode,
        ttl: if mode.is_ttl() { 5000 } else { 0 },
    };
    let script = vec![
        create("/a", CreateMode::Persistent, CreateOp::Create),
        create("/a/b", CreateMode::Persistent, CreateOp::Create2),
        create("/e", CreateMode::Ephemeral, CreateOp::Create),
        create("/s", CreateMode::Persistent, CreateOp::Create),
        create("/s/n-", CreateMode::PersistentSequential, CreateOp::Create),
        create("/s/n-", CreateMode::EphemeralSequential, CreateOp::Create2),
        create("/c", CreateMode::Container, CreateOp::Container),
        create("/c/k", CreateMode::Persistent, CreateOp::Create),
        create("/t", CreateMode::PersistentWithTtl, CreateOp::Ttl),
        Request::SetData {
            path: "/a".into(),
            data: b"world".to_vec(),
            version: -1,
        },
        Request::SetAcl {
            path: "/a/b".into(),
            acl: vec![Acl {
                perms: ensemble_proto::proto::perms::READ,
                id: Id::anyone(),
            }],
            version: 0,
        },
        Request::Multi(vec![
            MultiOp::Create {
                op: CreateOp::Create,
                path: "/m".into(),
                data: vec![1],
                acl: Acl::open_unsafe(),
                mode: CreateMode::Persistent,
                ttl: 0,
            },
            MultiOp::SetData {
                path: "/m".into(),
                data: vec![2],
                version: 0,
            },
            MultiOp::Check {
                path: "/a".into(),
                version: 1,
            },
        ]),
        Request::Multi(vec![MultiOp::Delete {
            path: "/nope".into(),
            version: -1,
        }]),
        Request::Delete {
            path: "/c/k".into(),
            version: -1,
        },
        Request::Sync { path: "/".into() },
    ];
    for (i, r) in script.iter().enumerate() {
        req(&mut w, [1, 2, 4][i % 3], r.clone());
        record(&mut w, &mut samples);
    }
    // a follower misses writes (DIFF); then the leader goes (TRUNC/SNAP on the way back)
    w.crash(3);
    for i in 0..12 {
        req(
            &mut w,
            1,
            Request::SetData {
                path: "/a".into(),
                data: vec![i],
                version: -1,
            },
        );
        record(&mut w, &mut samples);
    }
    w.start(3);
    for _ in 0..20 {
        record(&mut w, &mut samples);
    }
    let leader = w
        .ens
        .servers
        .iter()
        .find(|(_, s)| s.as_ref().is_some_and(|s| s.established_epoch().is_some()))
        .map(|(id, _)| *id);
    if let Some(l) = leader {
        w.crash(l);
        for _ in 0..40 {
            record(&mut w, &mut samples);
        }
        w.start(l);
        for _ in 0..40 {
            record(&mut w, &mut samples);
        }
    }
    samples.peer_msgs.dedup();
    samples.snapshots.sort();
    samples.snapshots.dedup();
    samples
}

/// A well-formed [`ensemble`] program: elect, connect a client to each server, create and set a
/// few nodes, with fault-free stretches between. Written against the decoder above (one byte
/// per choice), so it keeps meaning the same as long as `ensemble_inner` does. Tests use it
/// to check the harness gets somewhere; the seed generator starts from it.
pub fn calm_program(observer: bool) -> Vec<u8> {
    let calm = [19u8, 7];
    let mut p = vec![u8::from(observer)];
    for _ in 0..4 {
        p.extend_from_slice(&calm);
    }
    for server in 0..3u8 {
        // connect: server, new session, protocol 0, lastZxidSeen 0, timeout 1000, readOnly
        // unset, from 127.0.0.1
        p.extend_from_slice(&[13, server, 1, 1, 2, 1, 0, 0]);
        p.extend_from_slice(&calm);
    }
    for (i, path) in [1u8, 2, 3, 4].into_iter().enumerate() {
        // create PATHS[path] "xyz" open-ACL persistent, on connection i % 3
        p.extend_from_slice(&[14, i as u8 % 3, 1, 2, path, 0, 0, 0]);
        p.extend_from_slice(&[3, b'x', b'y', b'z', 2, 2, 9, 0, 1]);
        p.extend_from_slice(&calm);
        // setData PATHS[path] "q" version -1
        p.extend_from_slice(&[15, i as u8 % 3, 1, 2, path, 0, 7, 1, b'q', 0]);
        p.extend_from_slice(&calm);
    }
    p
}
