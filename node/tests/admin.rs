//! The AdminServer against ZooKeeper 3.8's recordings (/work/shared/reference/admin, copied
//! into tests/reference/admin): every command's keys and JSON value types on a leader and a
//! follower of a real three-server ensemble, the unknown-command answer byte for byte, the
//! command list, aliases, parameters, POST, and the values that follow the data (sessions,
//! ephemerals, watches).

mod ops;

use ensemble_client::Client;
use ensemble_proto::proto::{Acl, CreateMode};
use ops::{Cluster, get_json, http};
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;

fn reference(name: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/reference/admin")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Keys whose names depend on the data or the peers (a summary set's key: a learner's id, a
/// top-level znode), so a recording of another ensemble cannot list them.
fn per_key(k: &str) -> bool {
    k.contains("_learner_handler_qp_") || k.ends_with("_per_namespace")
}

/// `ours` has every key of `theirs` with a value of the same JSON type, recursively (an
/// empty array or a null in the recording says nothing about its items); with `exact`, no
/// key beyond them.
fn same_shape(path: &str, theirs: &Value, ours: &Value, exact: bool, errors: &mut Vec<String>) {
    match (theirs, ours) {
        (Value::Object(t), Value::Object(o)) => {
            for (k, tv) in t {
                if per_key(k) {
                    continue;
                }
                match o.get(k) {
                    None => errors.push(format!("{path}.{k}: missing")),
                    Some(ov) => same_shape(&format!("{path}.{k}"), tv, ov, exact, errors),
                }
            }
            if exact {
                for k in o.keys().filter(|k| !t.contains_key(*k) && !per_key(k)) {
                    errors.push(format!("{path}.{k}: not in ZooKeeper's answer"));
                }
            }
        }
        (Value::Array(t), Value::Array(o)) => {
            if let (Some(t0), Some(o0)) = (t.first(), o.first()) {
                same_shape(&format!("{path}[0]"), t0, o0, exact, errors);
            }
        }
        (Value::Null, _) => {}
        (t, o) if kind(t) != kind(o) => errors.push(format!(
            "{path}: {} in ZooKeeper's answer, {} in ours ({o})",
            kind(t),
            kind(o)
        )),
        _ => {}
    }
}

const COMMANDS: &[&str] = &[
    "configuration",
    "connections",
    "dirs",
    "dump",
    "environment",
    "get_trace_mask",
    "hash",
    "initial_configuration",
    "is_read_only",
    "last_snapshot",
    "leader",
    "monitor",
    "observers",
    "ruok",
    "server_stats",
    "stats",
    "system_properties",
    "voting_view",
    "watch_summary",
    "watches",
    "watches_by_path",
    "zabstate",
];

#[test]
fn every_command_has_zookeepers_keys_and_types() {
    let c = Cluster::start("shapes", 3, |_| String::new());
    let leader = c.wait_serving(Duration::from_secs(30));
    let follower = if leader == 1 { 2 } else { 1 };
    let mut errors = Vec::new();
    for (role, id) in [("leader", leader), ("follower", follower)] {
        for cmd in COMMANDS {
            let theirs: Value =
                serde_json::from_str(&reference(&format!("{role}-{cmd}.json"))).expect("recording");
            let ours = get_json(c.node(id).admin, &format!("/commands/{cmd}"))
                .unwrap_or_else(|| panic!("{role} {cmd}: no JSON"));
            assert_eq!(ours["command"], Value::from(*cmd), "{ours}");
            assert!(ours["error"].is_null(), "{role} {cmd}: {ours}");
            match *cmd {
                // The JVM's own properties (java.*, sun.*) have no counterpart here.
                "system_properties" => {
                    for (k, v) in ours.as_object().unwrap() {
                        assert!(v.is_string() || k == "error", "{k}: {v} is not a string");
                    }
                }
                // ZooKeeper's keys with ours added (the process id, the config file).
                "environment" => {
                    same_shape(&format!("{role}.{cmd}"), &theirs, &ours, false, &mut errors)
                }
                "monitor" => {
                    // mntr: extra keys of Ensemble's own are allowed.
                    same_shape(&format!("{role}.{cmd}"), &theirs, &ours, false, &mut errors)
                }
                _ => same_shape(&format!("{role}.{cmd}"), &theirs, &ours, true, &mut errors),
            }
        }
    }
    assert!(errors.is_empty(), "{}", errors.join("\n"));

    // The values are this ensemble's.
    let l = c.node(leader);
    let conf = get_json(l.admin, "/commands/configuration").unwrap();
    assert_eq!(conf["client_port"], Value::from(l.client));
    assert_eq!(conf["server_id"], Value::from(leader));
    let lead = get_json(c.node(follower).admin, "/commands/lead").unwrap();
    assert_eq!(lead["command"], "leader");
    assert_eq!(lead["leader_id"], Value::from(leader));
    assert_eq!(lead["is_leader"], false);
    let zab = get_json(l.admin, "/commands/zabstate").unwrap();
    assert_eq!(zab["zabstate"], "broadcast");
    assert_eq!(zab["myid"], Value::from(leader));
    let view = get_json(l.admin, "/commands/voting_view").unwrap();
    assert_eq!(view["current_config"].as_object().unwrap().len(), 3);
    let mon = get_json(l.admin, "/commands/mntr").unwrap();
    assert_eq!(mon["command"], "monitor");
    assert_eq!(mon["server_state"], "leader");
    assert_eq!(mon["synced_followers"], Value::from(2));
    assert_eq!(mon["quorum_size"], Value::from(3));
    let fmon = get_json(c.node(follower).admin, "/commands/monitor").unwrap();
    assert_eq!(fmon["server_state"], "follower");
    assert!(
        fmon.get("synced_followers").is_none(),
        "leader-only keys on a follower"
    );
}

/// `curl /commands/monitor`, as a probe or a script asks it: every key of ZooKeeper 3.8's.
#[test]
fn curl_monitor_has_every_key_of_zookeepers() {
    let c = Cluster::start("curl", 1, |_| String::new());
    c.wait_serving(Duration::from_secs(30));
    let out = std::process::Command::new("curl")
        .args(["-sS", "--max-time", "10"])
        .arg(format!(
            "http://127.0.0.1:{}/commands/monitor",
            c.node(1).admin
        ))
        .output()
        .expect("curl (scripts/install-test-deps.sh installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ours: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let theirs: Value = serde_json::from_str(&reference("follower-monitor.json")).unwrap();
    let missing: Vec<&String> = theirs
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| !per_key(k) && ours.get(k.as_str()).is_none())
        .collect();
    assert!(missing.is_empty(), "missing: {missing:?}");
    assert_eq!(ours["server_state"], "standalone");
}

#[test]
fn unknown_commands_the_list_parameters_and_post() {
    let c = Cluster::start("misc", 1, |_| String::new());
    c.wait_serving(Duration::from_secs(30));
    let port = c.node(1).admin;

    // Byte for byte what ZooKeeper answers (its headers aside from the type: Jetty's own).
    let recorded = reference("leader-unknown-command.txt");
    let (_, body) = recorded
        .split_once("\r\n\r\n")
        .or(recorded.split_once("\n\n"))
        .unwrap();
    let (status, head, ours) = http(port, "GET", "/commands/nosuch", b"").unwrap();
    assert_eq!(status, 200);
    assert!(head.contains("Content-Type: application/json"), "{head}");
    assert_eq!(String::from_utf8_lossy(&ours), body);

    let (status, _, list) = http(port, "GET", "/commands", b"").unwrap();
    assert_eq!(status, 200);
    let list = String::from_utf8_lossy(&list);
    for cmd in COMMANDS.iter().chain(&[
        "connection_stat_reset",
        "observer_connection_stat_reset",
        "set_trace_mask",
        "stat_reset",
    ]) {
        assert!(
            list.contains(&format!("<a href=\"/commands/{cmd}\">{cmd}</a>")),
            "{cmd} not listed:\n{list}"
        );
    }
    assert_eq!(http(port, "GET", "/elsewhere", b"").unwrap().0, 404);

    let j = get_json(port, "/commands/stmk").unwrap();
    assert_eq!(j["error"], "setTraceMask requires long traceMask argument");
    let j = get_json(port, "/commands/set_trace_mask?traceMask=nope").unwrap();
    assert_eq!(
        j["error"],
        "setTraceMask requires long traceMask argument, got nope"
    );
    let j = get_json(port, "/commands/set_trace_mask?traceMask=4").unwrap();
    assert_eq!(
        (j["tracemask"].clone(), j["error"].clone()),
        (Value::from(4), Value::Null)
    );
    assert_eq!(get_json(port, "/commands/gtmk").unwrap()["tracemask"], 4);

    let (status, _, body) = http(port, "POST", "/commands/ruok", b"").unwrap();
    assert_eq!(status, 200);
    let j: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(j["command"], "ruok");
    assert_eq!(http(port, "DELETE", "/commands/ruok", b"").unwrap().0, 405);

    // Standalone: no quorum to show, as ZooKeeper's standalone server answers.
    let j = get_json(port, "/commands/leader").unwrap();
    assert_eq!(j["error"], "server is not initialized");
    let j = get_json(port, "/commands/zabstate").unwrap();
    assert_eq!(
        (j["voting"].clone(), j["zabstate"].clone()),
        (Value::Bool(false), Value::from(""))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_ephemerals_and_watches_show() {
    let c = Cluster::start("values", 1, |_| String::new());
    c.wait_serving(Duration::from_secs(30));
    let port = c.node(1).admin;
    let client = Client::connect(
        &format!("127.0.0.1:{}", c.node(1).client),
        Duration::from_secs(10),
    )
    .await
    .expect("connect");
    client
        .create("/eph", b"x", Acl::open_unsafe(), CreateMode::Ephemeral)
        .await
        .expect("create");
    client.exists("/eph", true).await.expect("exists");
    let sid = client.session_id();
    let ask =
        move |cmd: &'static str| tokio::task::spawn_blocking(move || get_json(port, cmd).unwrap());

    let dump = ask("/commands/dump").await.unwrap();
    assert_eq!(
        dump["session_id_to_ephemeral_paths"][sid.to_string()],
        serde_json::json!(["/eph"]),
        "{dump}"
    );
    let expiries = dump["expiry_time_to_session_ids"].as_object().unwrap();
    assert!(
        expiries
            .values()
            .any(|ids| ids.as_array().unwrap().contains(&Value::from(sid))),
        "{dump}"
    );
    let w = ask("/commands/watches").await.unwrap();
    assert_eq!(
        w["session_id_to_watched_paths"][sid.to_string()],
        serde_json::json!(["/eph"])
    );
    let w = ask("/commands/wchp").await.unwrap();
    assert_eq!(w["path_to_session_ids"]["/eph"], serde_json::json!([sid]));
    let s = ask("/commands/watch_summary").await.unwrap();
    assert_eq!(s["num_total_watches"], 1);
    let cons = ask("/commands/cons").await.unwrap();
    let conns = cons["connections"].as_array().unwrap();
    assert_eq!(conns.len(), 1, "{cons}");
    assert_eq!(conns[0]["session_id"], Value::from(sid));
    assert_eq!(conns[0]["last_operation"], "EXIS");
    // crst clears the connection's counts; mntr and monitor agree on what they share.
    ask("/commands/crst").await.unwrap();
    let cons = ask("/commands/cons").await.unwrap();
    assert_eq!(cons["connections"][0]["last_operation"], "NA");
    let mon = ask("/commands/monitor").await.unwrap();
    assert_eq!(mon["ephemerals_count"], 1);
    assert_eq!(mon["watch_count"], 1);
    let mntr = tokio::task::spawn_blocking({
        let addr = format!("127.0.0.1:{}", c.node(1).client);
        move || {
            use std::io::{Read, Write};
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            s.write_all(b"mntr").unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).unwrap();
            out
        }
    })
    .await
    .unwrap();
    for key in [
        "znode_count",
        "ephemerals_count",
        "watch_count",
        "cnt_updatelatency",
    ] {
        let line = mntr
            .lines()
            .find(|l| l.starts_with(&format!("zk_{key}\t")))
            .unwrap_or_else(|| panic!("zk_{key} not in mntr:\n{mntr}"));
        assert_eq!(
            line.split('\t').nth(1).unwrap(),
            mon[key].to_string(),
            "{key}"
        );
    }
    assert!(mon["cnt_updatelatency"].as_i64().unwrap() >= 1, "{mon}");
    drop(client);
}

#[test]
fn disabled_or_moved() {
    let c = Cluster::start("moved", 1, |_| {
        "admin.commandURL=/cmds\nadmin.idleTimeout=300\n".into()
    });
    c.wait_serving_at("/cmds");
    let port = c.node(1).admin;
    assert_eq!(http(port, "GET", "/commands/ruok", b"").unwrap().0, 404);
    // admin.idleTimeout: a connection that sends nothing is closed (EOF, not our own timeout).
    {
        use std::io::Read;
        let mut idle = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        idle.set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(idle.read(&mut buf).expect("closed by the server"), 0);
    }
    drop(c);
    let c = Cluster::start("off", 1, |_| "admin.enableServer=false\n".into());
    // Serving clients, with nothing on the admin port.
    let t0 = std::time::Instant::now();
    let addr = format!("127.0.0.1:{}", c.node(1).client);
    loop {
        let ok = std::net::TcpStream::connect(&addr).is_ok_and(|mut s| {
            use std::io::{Read, Write};
            let mut out = String::new();
            s.write_all(b"ruok").is_ok() && s.read_to_string(&mut out).is_ok() && out == "imok"
        });
        if ok {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(30), "not serving");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(http(c.node(1).admin, "GET", "/commands/ruok", b"").is_none());
}

trait WaitAt {
    fn wait_serving_at(&self, url: &str);
}

impl WaitAt for Cluster {
    fn wait_serving_at(&self, url: &str) {
        let t0 = std::time::Instant::now();
        loop {
            if let Some((200, _, body)) =
                http(self.node(1).admin, "GET", &format!("{url}/ruok"), b"")
                && serde_json::from_slice::<Value>(&body).is_ok_and(|j| j["error"].is_null())
            {
                return;
            }
            assert!(t0.elapsed() < Duration::from_secs(30), "{}", self.log(1));
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn authed(port: u16, method: &str, target: &str, auth: Option<&str>) -> (u16, String, Vec<u8>) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let auth = auth
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "{method} {target} HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\nContent-Length: 0\r\n\r\n"
    )
    .unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let end = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&out[..end]).to_string();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head, out[end + 4..].to_vec())
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
}

/// 3.9's snapshot and restore: refused without credentials or rights; the snapshot streamed
/// to an authorised caller is a snapshot file another server recovers from.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_and_restore_behind_authentication() {
    let super_digest = ensemble_core::acl::digest_id("super:secret");
    let c = Cluster::start("snap", 1, move |_| {
        format!("DigestAuthenticationProvider.superDigest={super_digest}\n")
    });
    c.wait_serving(Duration::from_secs(30));
    let port = c.node(1).admin;
    let client = Client::connect(
        &format!("127.0.0.1:{}", c.node(1).client),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    client
        .create(
            "/kept",
            b"in the snapshot",
            Acl::open_unsafe(),
            CreateMode::Persistent,
        )
        .await
        .unwrap();
    // Only admin may do everything on /.
    let admin =
        ensemble_proto::proto::Id::new("digest", &ensemble_core::acl::digest_id("admin:pw"));
    let root = vec![Acl {
        perms: ensemble_proto::proto::perms::ALL,
        id: admin,
    }];
    client.set_acl("/", root, None).await.unwrap();

    let r = tokio::task::spawn_blocking(move || {
        let (s, _, b) = authed(port, "GET", "/commands/snapshot", None);
        let j: Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(
            (s, j["error"].as_str()),
            (401, Some("Auth info is missing for the command"))
        );
        let (s, _, b) = authed(port, "GET", "/commands/snapshot", Some("sasl whoever"));
        let j: Value = serde_json::from_slice(&b).unwrap();
        assert_eq!((s, j["error"].as_str()), (401, Some("Not authenticated")));
        let (s, _, b) = authed(port, "GET", "/commands/snap", Some("digest bob:pw"));
        let j: Value = serde_json::from_slice(&b).unwrap();
        assert_eq!((s, j["error"].as_str()), (403, Some("Not authorized")));
        let (s, _, b) = authed(port, "POST", "/commands/restore", Some("digest bob:pw"));
        assert_eq!(s, 403, "{}", String::from_utf8_lossy(&b));
        // Authorised: restore is refused on a running server, offline is the way.
        let (s, _, b) = authed(port, "POST", "/commands/restore", Some("digest admin:pw"));
        let j: Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(s, 503);
        assert!(j["error"].as_str().unwrap().contains("offline"), "{j}");
        // streaming=false: the headers only.
        let (s, head, b) = authed(
            port,
            "GET",
            "/commands/snapshot?streaming=false",
            Some("digest super:secret"),
        );
        assert_eq!(s, 200, "{}", String::from_utf8_lossy(&b));
        assert!(header(&head, "last_zxid").is_some(), "{head}");
        let (s, head, body) = authed(port, "GET", "/commands/snapshot", Some("digest admin:pw"));
        assert_eq!(s, 200);
        assert_eq!(
            header(&head, "snapshot_size"),
            Some(body.len().to_string().as_str())
        );
        let zxid = header(&head, "last_zxid")
            .unwrap()
            .trim_start_matches("0x")
            .to_string();
        (zxid, body)
    })
    .await
    .unwrap();
    let (zxid, body) = r;
    drop(client);
    drop(c);

    // The operator's restore: the download as a fresh server's snapshot file.
    let mut c = Cluster::start("restored", 1, |_| String::new());
    c.wait_serving(Duration::from_secs(30));
    c.stop_all();
    let snap_dir = c.dir.join("data_1/version-2");
    let _ = std::fs::remove_dir_all(&snap_dir);
    std::fs::create_dir_all(&snap_dir).unwrap();
    std::fs::write(snap_dir.join(format!("snapshot.{zxid}")), &body).unwrap();
    c.start_all();
    c.wait_serving(Duration::from_secs(30));
    let client = Client::connect(
        &format!("127.0.0.1:{}", c.node(1).client),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    let (data, _) = client.get_data("/kept", false).await.expect("restored");
    assert_eq!(data, b"in the snapshot");
}

/// `observers` on a leader with a real observer: ZooKeeper's LearnerHandler keys, values that
/// follow what the observer did (its writes are REQUESTs, every commit an INFORM), and
/// `observer_connection_stat_reset` starting the counters again; a follower lists none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observers_lists_the_leaders_observers() {
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let c = Cluster::start_with_observers("observers", 3, &[3], |_| String::new());
    let leader = c.wait_serving(Duration::from_secs(30));
    assert_ne!(leader, 3, "an observer never leads");
    let follower = if leader == 1 { 2 } else { 1 };
    // Writes through the observer: each a REQUEST to the leader, each commit an INFORM back.
    let client = Client::connect(
        &format!("127.0.0.1:{}", c.node(3).client),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    let mut last = 0i64;
    for i in 0..5 {
        let path = format!("/via-observer-{i}");
        client
            .create(&path, b"x", Acl::open_unsafe(), CreateMode::Persistent)
            .await
            .unwrap();
        last = client.exists(&path, false).await.unwrap().unwrap().mzxid;
    }
    let (lport, fport) = (c.node(leader).admin, c.node(follower).admin);
    let (j, reset, on_follower) = tokio::task::spawn_blocking(move || {
        let j = get_json(lport, "/commands/observers").unwrap();
        let reset = get_json(lport, "/commands/orst").unwrap();
        assert!(reset["error"].is_null(), "{reset}");
        let after = get_json(lport, "/commands/obsr").unwrap();
        let on_follower = get_json(fport, "/commands/observers").unwrap();
        (j, after, on_follower)
    })
    .await
    .unwrap();
    assert_eq!(j["synced_observers"], Value::from(1), "{j}");
    let obs = j["observers"].as_array().expect("a list");
    assert_eq!(obs.len(), 1, "{j}");
    let o = obs[0].as_object().unwrap();
    // LearnerHandler.getLearnerHandlerInfo's keys, no more.
    let mut keys: Vec<&str> = o.keys().map(String::as_str).collect();
    keys.sort_unstable();
    let mut theirs = [
        "remote_socket_address",
        "sid",
        "established",
        "queued_packets",
        "queued_packets_size",
        "packets_received",
        "packets_sent",
        "requests",
        "last_zxid",
    ];
    theirs.sort_unstable();
    assert_eq!(keys, theirs, "{j}");
    assert_eq!(o["sid"], Value::from(3));
    let addr = o["remote_socket_address"].as_str().unwrap();
    assert!(addr.starts_with("/127.0.0.1:"), "{addr}");
    let established = o["established"].as_i64().unwrap();
    assert!(established >= before - 1000, "{established} < {before}");
    for k in ["queued_packets", "queued_packets_size"] {
        assert!(o[k].as_i64().is_some_and(|n| n >= 0), "{k}: {j}");
    }
    // OBSERVERINFO, ACKEPOCH, the NEWLEADER ACK and the five REQUESTs at least.
    assert!(o["requests"].as_i64().unwrap() >= 5, "{j}");
    assert!(o["packets_received"].as_i64().unwrap() >= 8, "{j}");
    // LEADERINFO, the sync, NEWLEADER, UPTODATE and an INFORM per write at least.
    assert!(o["packets_sent"].as_i64().unwrap() >= 9, "{j}");
    // The last INFORM carried the last write (nothing was written after it).
    assert_eq!(o["last_zxid"].as_i64(), Some(last), "{j}");

    // Reset: the counters start again (pings may have come since; no request or zxid has).
    let o = &reset["observers"][0];
    assert_eq!(o["sid"], Value::from(3), "{reset}");
    assert_eq!(o["requests"], Value::from(0), "{reset}");
    assert_eq!(o["last_zxid"], Value::from(-1), "{reset}");
    assert_eq!(o["established"].as_i64(), Some(established), "{reset}");

    // A follower serves no observers.
    assert_eq!(
        on_follower["synced_observers"],
        Value::from(0),
        "{on_follower}"
    );
    assert_eq!(
        on_follower["observers"],
        Value::Array(vec![]),
        "{on_follower}"
    );
}

/// The restore procedure for an ensemble: a snapshot downloaded with the `snapshot` command
/// from the running leader, then `ensemble restore` of every member's zoo.cfg once they are
/// stopped. Refused with nothing changed when a member is left out; afterwards every server
/// serves the snapshot's tree, none the writes made after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_replaces_a_whole_stopped_ensembles_tree() {
    let super_digest = ensemble_core::acl::digest_id("super:secret");
    let mut c = Cluster::start("ens-restore", 3, move |_| {
        format!("DigestAuthenticationProvider.superDigest={super_digest}\n")
    });
    let leader = c.wait_serving(Duration::from_secs(30));
    let client = Client::connect(
        &format!("127.0.0.1:{}", c.node(leader).client),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    for i in 0..20 {
        client
            .create(
                &format!("/kept-{i}"),
                format!("v{i}").as_bytes(),
                Acl::open_unsafe(),
                CreateMode::Persistent,
            )
            .await
            .unwrap();
    }
    let port = c.node(leader).admin;
    let (head, body) = tokio::task::spawn_blocking(move || {
        let (s, head, body) = authed(
            port,
            "GET",
            "/commands/snapshot",
            Some("digest super:secret"),
        );
        assert_eq!(s, 200, "{}", String::from_utf8_lossy(&body));
        (head, body)
    })
    .await
    .unwrap();
    assert!(header(&head, "last_zxid").is_some(), "{head}");
    // Written after the backup: gone once it is restored.
    client
        .create("/after", b"", Acl::open_unsafe(), CreateMode::Persistent)
        .await
        .unwrap();
    client.set_data("/kept-3", b"changed", None).await.unwrap();
    client.close().await.unwrap();
    c.stop_all();
    let backup = c.dir.join("backup.snapshot");
    std::fs::write(&backup, &body).unwrap();
    let cfg = |i: u16| c.dir.join(format!("zoo{i}.cfg"));
    let restore = |cfgs: &[u16]| {
        let mut cmd = std::process::Command::new(ops::BIN);
        cmd.arg("restore");
        for i in cfgs {
            cmd.arg(cfg(*i));
        }
        cmd.arg(&backup).output().unwrap()
    };

    // A member left out: refused, nothing moved.
    let o = restore(&[1, 2]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("missing: server.3"), "{err}");
    for i in 1..=3 {
        let moved = std::fs::read_dir(c.dir.join(format!("data_{i}")))
            .unwrap()
            .filter_map(Result::ok)
            .any(|e| e.file_name().to_string_lossy().contains("before-restore"));
        assert!(
            !moved,
            "server {i}'s files were touched by a refused restore"
        );
    }

    let o = restore(&[1, 2, 3]);
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert!(o.status.success(), "{out}{err}");
    for i in 1..=3 {
        assert!(out.contains(&format!("server {i}: restored zxid")), "{out}");
    }

    c.start_all();
    c.wait_serving(Duration::from_secs(30));
    // Every server, read locally through its own client port, holds the backup's tree.
    for i in 1..=3u16 {
        let client = Client::connect(
            &format!("127.0.0.1:{}", c.node(i).client),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
        let mut children = client.get_children("/", false).await.unwrap();
        children.sort();
        let mut want: Vec<String> = (0..20).map(|k| format!("kept-{k}")).collect();
        want.push("zookeeper".into());
        want.sort();
        assert_eq!(children, want, "server {i}");
        let (data, _) = client.get_data("/kept-3", false).await.unwrap();
        assert_eq!(data, b"v3", "server {i}");
        client.close().await.unwrap();
    }
    // And they agree on it: the same digest once at the same zxid (the sessions of the reads
    // above are txns too, applied by each server in its own time).
    let t0 = std::time::Instant::now();
    loop {
        let hashes: Vec<Value> = (1..=3u16)
            .map(|i| get_json(c.node(i).admin, "/commands/hash").unwrap()["digests"][0].clone())
            .collect();
        if hashes.windows(2).all(|w| w[0]["zxid"] == w[1]["zxid"]) {
            assert!(hashes.windows(2).all(|w| w[0] == w[1]), "{hashes:?}");
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "{hashes:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
