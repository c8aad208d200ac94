//! The offline tools on files a real server wrote: `dump-log`, `dump-snapshot` (text and
//! JSON), `verify` (clean, and naming the file and offset of planted damage), `snapshot`
//! (a backup beside the running server) and `restore` (refused while it runs; afterwards the
//! server starts from the backup). The server writes zstd-compressed snapshots.

use ensemble_client::Client;
use ensemble_proto::proto::{Acl, CreateMode};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_ensemble");

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("an ephemeral port")
}

fn ens(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().expect("run ensemble")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn files(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.starts_with(prefix) && !n.ends_with(".tmp")
        })
        .collect();
    v.sort();
    v
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

fn flip(path: &Path, at: u64) {
    let mut b = std::fs::read(path).unwrap();
    b[at as usize] ^= 0x20;
    std::fs::write(path, b).unwrap();
}

async fn connect(port: u16) -> Client {
    Client::connect(&format!("127.0.0.1:{port}"), Duration::from_secs(10))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dump_verify_backup_and_restore_on_a_real_servers_files() {
    let dir = std::env::temp_dir().join(format!("ens-tools-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let port = free_port();
    let cfg = dir.join("zoo.cfg");
    std::fs::write(
        &cfg,
        format!(
            "tickTime=500\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\n\
             snapCount=10\npreAllocSize=1024\nsnapshot.compression.method=zstd\n",
            data.display()
        ),
    )
    .unwrap();
    let cfg_s = cfg.to_str().unwrap();
    let o = ens(&["start", cfg_s]);
    assert!(o.status.success(), "start: {:?}", text(&o));

    let c = connect(port).await;
    let open = Acl::open_unsafe;
    c.create("/app", b"", open(), CreateMode::Persistent)
        .await
        .unwrap();
    for i in 0..40 {
        let p = format!("/app/k{i}");
        c.create(
            &p,
            format!("v{i}").as_bytes(),
            open(),
            CreateMode::Persistent,
        )
        .await
        .unwrap();
    }
    c.set_data("/app/k1", b"changed", None).await.unwrap();
    c.create("/eph", b"e", open(), CreateMode::Ephemeral)
        .await
        .unwrap();

    // A backup beside the running server, then a restore that must wait for it to stop.
    let backup = dir.join("backup.zst");
    let o = ens(&["snapshot", cfg_s, "--out", backup.to_str().unwrap()]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "snapshot: {out} {err}");
    assert!(out.contains("znodes) written to"), "{out}");
    let o = ens(&["restore", cfg_s, backup.to_str().unwrap()]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "restore while running: {err}");
    assert!(err.contains("stop the server first"), "{err}");

    c.delete("/app/k0", None).await.unwrap();
    // Closed, not dropped: the closeSession txn is in the log before the server stops.
    c.close().await.unwrap();
    let o = ens(&["stop", cfg_s]);
    assert!(o.status.success(), "stop: {:?}", text(&o));

    let v2 = data.join("version-2");
    let snaps = files(&v2, "snapshot.");
    assert!(
        !snaps.is_empty(),
        "snapCount=10 after 43 txns took snapshots"
    );
    assert!(
        snaps.iter().all(|p| p.to_string_lossy().ends_with(".zst")),
        "{snaps:?}"
    );
    let logs = files(&v2, "log.");

    // dump-log: every txn of every file, one line each, in zxid order; JSON the same.
    let mut lines = Vec::new();
    let mut json = Vec::new();
    for log in &logs {
        let o = ens(&["dump-log", log.to_str().unwrap()]);
        let (out, err) = text(&o);
        assert!(o.status.success(), "dump-log: {err}");
        assert!(out.lines().last().unwrap().starts_with("EOF reached after"));
        lines.extend(
            out.lines()
                .filter(|l| l.contains(" zxid 0x"))
                .map(str::to_string),
        );
        let o = ens(&["dump-log", "--json", log.to_str().unwrap()]);
        for l in String::from_utf8_lossy(&o.stdout).lines() {
            json.push(serde_json::from_str::<serde_json::Value>(l).expect("a JSON line"));
        }
    }
    assert_eq!(lines.len(), json.len());
    assert!(
        lines.iter().any(|l| l.contains(" createSession ")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains(" create '/app/k7',2 bytes,[world:anyone:cdrwa],persistent")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains(" setData '/app/k1',7 bytes,-1"))
    );
    assert!(lines.iter().any(|l| l.contains(" delete '/app/k0',-1")));
    assert!(lines.iter().any(|l| l.contains(" closeSession")));
    let types: Vec<&str> = json.iter().map(|v| v["type"].as_str().unwrap()).collect();
    assert_eq!(types.iter().filter(|t| **t == "create").count(), 42);
    let zxids: Vec<u64> = json
        .iter()
        .map(|v| u64::from_str_radix(&v["zxid"].as_str().unwrap()[2..], 16).unwrap())
        .collect();
    assert!(zxids.windows(2).all(|w| w[0] < w[1]), "{zxids:?}");

    // dump-snapshot of the newest snapshot: a line per znode with its stat.
    let newest = snaps.last().unwrap();
    let o = ens(&["dump-snapshot", newest.to_str().unwrap()]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "dump-snapshot: {err}");
    assert!(out.starts_with("ZNode Details (count="), "{out}");
    assert!(out.contains("\n/app cZxid=0x"), "{out}");
    assert!(out.contains("Last zxid: 0x"));
    let o = ens(&["dump-snapshot", "--json", "-d", newest.to_str().unwrap()]);
    let objs: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let k2 = objs
        .iter()
        .find(|v| v["path"] == "/app/k2")
        .expect("/app/k2");
    assert_eq!(k2["data"], "7632"); // "v2"
    assert_eq!(k2["dataLength"], 2);
    assert_eq!(k2["acl"][0]["perms"], "cdrwa");

    // The backup holds everything written before it, logged after the newest snapshot too.
    let o = ens(&["dump-snapshot", "--json", backup.to_str().unwrap()]);
    let backup_paths: Vec<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["path"].as_str().map(str::to_string)
        })
        .collect();
    for i in 0..40 {
        assert!(backup_paths.contains(&format!("/app/k{i}")), "k{i}");
    }
    assert!(backup_paths.contains(&"/eph".to_string()));

    // verify: clean, by config and by directory.
    let o = ens(&["verify", cfg_s]);
    let (out, _) = text(&o);
    assert!(o.status.success() && out.starts_with("OK: "), "{out}");

    // A byte flipped inside a txn record with records after it: CORRUPT, naming the file
    // and the record's offset.
    let bad = dir.join("bad-log");
    copy_dir(&v2, &bad);
    let target = json
        .iter()
        .find(|v| v["type"] == "create" && v["path"] == "/app/k3")
        .unwrap();
    let offset = target["offset"].as_u64().unwrap();
    let log_of = |z: u64| {
        logs.iter()
            .rfind(|p| {
                let n = p.file_name().unwrap().to_string_lossy();
                u64::from_str_radix(&n["log.".len()..], 16).unwrap() <= z
            })
            .unwrap()
            .clone()
    };
    let z3 = u64::from_str_radix(&target["zxid"].as_str().unwrap()[2..], 16).unwrap();
    let bad_log = bad.join(log_of(z3).file_name().unwrap());
    flip(&bad_log, offset + 12);
    let o = ens(&["verify", bad.to_str().unwrap()]);
    let (out, _) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    let want = format!("CORRUPT: {}: at offset {offset}: ", bad_log.display());
    assert!(out.contains(&want), "{out}\nwanted {want}");
    let o = ens(&["dump-log", bad_log.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).1.contains(&format!("corrupt at offset {offset}")));

    // A log file gone from the middle: the txns it held are missing, named where the log
    // goes on.
    assert!(logs.len() >= 3, "snapshots rolled the log: {logs:?}");
    let bad = dir.join("gap");
    copy_dir(&v2, &bad);
    std::fs::remove_file(bad.join(logs[1].file_name().unwrap())).unwrap();
    let o = ens(&["verify", bad.to_str().unwrap()]);
    let (out, _) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    let after_gap = bad.join(logs[2].file_name().unwrap());
    assert!(
        out.contains(&format!(
            "CORRUPT: {}: at offset 16: txn ",
            after_gap.display()
        )) && out.contains("are missing"),
        "{out}"
    );

    // A damaged snapshot: CORRUPT naming it.
    let bad = dir.join("bad-snap");
    copy_dir(&v2, &bad);
    let bad_snap = bad.join(newest.file_name().unwrap());
    let len = std::fs::metadata(&bad_snap).unwrap().len();
    flip(&bad_snap, len / 2);
    let o = ens(&["verify", bad.to_str().unwrap()]);
    let (out, _) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains(&format!("CORRUPT: {}: ", bad_snap.display())),
        "{out}"
    );

    // Restore the backup into the stopped server: /app/k0 is back, the old files moved aside.
    let o = ens(&["restore", cfg_s, backup.to_str().unwrap()]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "restore: {out} {err}");
    assert!(out.contains("the previous files are in"), "{out}");
    assert_eq!(files(&v2, "snapshot.").len(), 1);
    assert!(files(&v2, "log.").is_empty());
    // Into a new server's empty data dir, the backup leaves a server that vouches for it
    // (currentEpoch at least the backup's epoch: node/README.md, "Disk loss").
    let fresh = dir.join("fresh");
    std::fs::create_dir_all(&fresh).unwrap();
    let fresh_cfg = dir.join("fresh.cfg");
    std::fs::write(
        &fresh_cfg,
        format!(
            "tickTime=500\ndataDir={}\nclientPort={}\nclientPortAddress=127.0.0.1\n",
            fresh.display(),
            free_port()
        ),
    )
    .unwrap();
    let o = ens(&[
        "restore",
        fresh_cfg.to_str().unwrap(),
        backup.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "restore into a new dir: {:?}", text(&o));
    let current = std::fs::read_to_string(fresh.join("version-2/currentEpoch")).unwrap();
    let current: u32 = current.lines().next().unwrap().trim().parse().unwrap();
    assert!(
        current >= 1,
        "a restored data dir vouches for its tree: {current}"
    );
    let o = ens(&["start", cfg_s]);
    assert!(o.status.success(), "start after restore: {:?}", text(&o));
    let c = connect(port).await;
    let (d, _) = c.get_data("/app/k0", false).await.unwrap();
    assert_eq!(d, b"v0");
    let (d, _) = c.get_data("/app/k1", false).await.unwrap();
    assert_eq!(d, b"changed");
    // It takes writes after the restored zxid.
    c.create("/after", b"", open(), CreateMode::Persistent)
        .await
        .unwrap();
    drop(c);
    let o = ens(&["stop", cfg_s]);
    assert!(o.status.success(), "stop: {:?}", text(&o));
    let o = ens(&["verify", data.to_str().unwrap()]);
    assert!(o.status.success(), "{:?}", text(&o));
    std::fs::remove_dir_all(&dir).unwrap();
}
