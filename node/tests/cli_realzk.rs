//! `ensemble cli` side by side with the real `zkCli.sh` 3.8: the same command script, run by
//! each against the same real ZooKeeper server (under different roots), must print the same
//! lines on stdout and stderr and exit with the same status, after masking what differs from
//! run to run (zxids, times, the root's name).

mod common;

use std::io::{Cursor, Write};
use std::process::{Command, Stdio};

use common::{ZKCLI, real_zk, skip, unique};
use ensemble_client::cli::{Input, run_with};

struct Run {
    code: i32,
    out: Vec<String>,
    err: Vec<String>,
}

fn lines(bytes: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(bytes)
        .lines()
        .filter(|l| !l.starts_with("SLF4J:"))
        .map(str::to_string)
        .collect()
}

fn real(args: &[String], script: &str) -> Run {
    let mut child = Command::new(ZKCLI)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("zkCli.sh runs");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(script.as_bytes()).expect("script");
    drop(stdin);
    let o = child.wait_with_output().expect("zkCli.sh ends");
    Run {
        code: o.status.code().unwrap_or(-1),
        out: lines(&o.stdout),
        err: lines(&o.stderr),
    }
}

fn ours(args: &[String], script: &str) -> Run {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let input = Input::Lines(Box::new(Cursor::new(script.as_bytes().to_vec())));
    let code = run_with(args.to_vec(), input, &mut out, &mut err);
    Run {
        code,
        out: lines(&out),
        err: lines(&err),
    }
}

/// Masks what legitimately differs between two runs.
fn mask(lines: &[String], root: &str) -> Vec<String> {
    lines
        .iter()
        .map(|l| {
            let l = l.replace(root, "<R>");
            for key in ["ctime = ", "mtime = "] {
                if l.starts_with(key) {
                    return format!("{key}<date>");
                }
            }
            for key in [
                "cZxid = 0x",
                "mZxid = 0x",
                "pZxid = 0x",
                "ephemeralOwner = 0x",
            ] {
                if l.starts_with(key) && l != format!("{key}0") {
                    return format!("{key}<hex>");
                }
            }
            l
        })
        .collect()
}

/// Watch event blocks (`""`, `WATCHER::`, `""`, `WatchedEvent ...`) come from zkCli's event
/// thread whenever it gets to them, and its two prints may straddle a line of the command
/// output (`WATCHER::`, `Not connected`, `WatchedEvent ...`); compare them apart from it.
fn split_events(lines: &[String]) -> (Vec<String>, Vec<String>) {
    let mut rest: Vec<String> = Vec::new();
    let mut events = Vec::new();
    for line in lines {
        if line == "WATCHER::" || line.starts_with("WatchedEvent ") {
            // each half of the block is printed after an empty line of its own
            if rest.last().is_some_and(String::is_empty) {
                rest.pop();
            }
            if line != "WATCHER::" {
                events.push(line.clone());
            }
        } else {
            rest.push(line.clone());
        }
    }
    (rest, events)
}

fn assert_same(what: &str, real: &[String], ours: &[String]) {
    if real != ours {
        let mut msg = format!("{what} differs\n--- zkCli.sh\n");
        for l in real {
            msg.push_str(&format!("  {l}\n"));
        }
        msg.push_str("--- ensemble cli\n");
        for l in ours {
            msg.push_str(&format!("  {l}\n"));
        }
        panic!("{msg}");
    }
}

fn compare(name: &str, addr: &str, args_after_server: &[&str], script: &str) {
    let one_shot = !args_after_server.is_empty();
    let roots = [
        unique(&format!("{name}-real")),
        unique(&format!("{name}-ours")),
    ];
    let mut runs = Vec::new();
    for (i, root) in roots.iter().enumerate() {
        let mut args = vec![
            "-server".to_string(),
            addr.to_string(),
            "-timeout".into(),
            "30000".into(),
        ];
        args.extend(args_after_server.iter().map(|a| a.replace("<R>", root)));
        let script = script.replace("<R>", root);
        let run = if i == 0 {
            real(&args, &script)
        } else {
            ours(&args, &script)
        };
        runs.push((mask(&run.out, root), mask(&run.err, root), run.code));
    }
    if std::env::var_os("ENSEMBLE_CLI_DUMP").is_some() {
        for (who, r) in ["zkCli.sh", "ensemble cli"].iter().zip(&runs) {
            eprintln!(
                "=== {name} {who} (exit {})\n{}\n--- stderr\n{}",
                r.2,
                r.0.join("\n"),
                r.1.join("\n")
            );
        }
    }
    let (real_out, mut real_events) = split_events(&runs[0].0);
    let (our_out, mut our_events) = split_events(&runs[1].0);
    // zkCli may exit before or after its event thread prints the final Closed event
    let closed = "WatchedEvent state:Closed type:None path:null";
    for events in [&mut real_events, &mut our_events] {
        if events.last().map(String::as_str) == Some(closed) {
            events.pop();
        }
    }
    if one_shot {
        // zkCli exits as soon as its one command is done: whether the connection event got
        // printed before that is a race in zkCli itself
        let connected = "WatchedEvent state:SyncConnected type:None path:null";
        real_events.retain(|e| e != connected);
        our_events.retain(|e| e != connected);
    }
    assert_same(&format!("{name}: stdout"), &real_out, &our_out);
    assert_same(&format!("{name}: watch events"), &real_events, &our_events);
    assert_same(&format!("{name}: stderr"), &runs[0].1, &runs[1].1);
    assert_eq!(runs[0].2, runs[1].2, "{name}: exit status");
}

macro_rules! zk_or_skip {
    ($name:literal) => {
        match real_zk() {
            Some(zk) if std::path::Path::new(ZKCLI).exists() => zk,
            _ => {
                skip($name);
                return;
            }
        }
    };
}

const SESSION: &str = "\
create <R> root
create <R>/a hello
create -s <R>/a/s- x
create -s <R>/a/s- y
create -e <R>/e
create -c <R>/box
create -t 60000 <R>/ttl t
create -c -e <R>/x
create -t abc <R>/x
create -t 0 <R>/x
create <R>/a
create <R>/nope/x
create <R>/e/x
create bad
create <R>/bad/
create <R>/w d bad:x
get <R>/a
get -s <R>/a
get <R>/none
get -s <R>/e
stat <R>/a
stat <R>/none
ls <R>
ls -s <R>
ls -R <R>
ls <R>/none
ls
set <R>/a world
set -s <R>/a again
set -v 99 <R>/a x
set <R>/a
set <R>/a -1
get -x <R>/a
get -w <R>/a
set <R>/a fire
ls -w <R>
create <R>/b
stat -w <R>/zz
create <R>/zz
getAcl <R>
create <R>/r x world:anyone:r
getAcl -s <R>/r
set <R>/r y
setAcl <R>/r world:anyone:cdrwa
getAcl <R>/r
setAcl -s -v 1 <R>/r world:anyone:cdrwa
setAcl -v 7 <R>/r world:anyone:cdrwa
sync <R>
getEphemerals <R>
getEphemerals
getAllChildrenNumber <R>
getAllChildrenNumber
whoami
delete <R>
delete <R>/nope
delete -v 5 <R>/b
delete <R>/b 3
addWatch -m bogus <R>/b
addWatch -m persistent <R>/zz
removewatches <R>/b
get <R>/a 1
stat <R>/a 1
ls <R> 1
printwatches
printwatches off
set <R>/a quiet
sync <R>
getAllChildrenNumber <R>
printwatches on
history
redo 16
redo 999
deleteall <R>/a
ls <R>
bogus
create
deleteall
config -c
close
ls <R>
";

#[test]
fn interactive_session_matches_zkcli() {
    let zk = zk_or_skip!("interactive_session_matches_zkcli");
    compare("session", &zk.addr, &[], SESSION);
}

#[test]
fn reconnect_and_auth_match_zkcli() {
    let zk = zk_or_skip!("reconnect_and_auth_match_zkcli");
    let script = format!(
        "create <R> x\naddauth digest u:p\nwhoami\ncreate <R>/mine d auth::cdrwa\ngetAcl <R>/mine\n\
         connect {addr}\nget <R>/mine\nls <R>\naddauth digest u:p\nget <R>/mine\n\
         setAcl -R <R> world:anyone:r\nset <R>/mine z\ngetAcl <R>/mine\n",
        addr = zk.addr
    );
    compare("auth", &zk.addr, &[], &script);
}

#[test]
fn one_shot_commands_match_zkcli() {
    let zk = zk_or_skip!("one_shot_commands_match_zkcli");
    for (i, cmd) in [
        &["create", "<R>", "hello"][..],
        &["get", "<R>"],
        &["ls", "-R", "/zookeeper"],
        &["create", "/"],
        &["bogus", "x"],
        &["ls"],
        &["version", "x"],
        &["sync", "/"],
    ]
    .iter()
    .enumerate()
    {
        compare(&format!("oneshot{i}"), &zk.addr, cmd, "");
    }
}

#[test]
fn unreachable_server_matches_zkcli() {
    if !std::path::Path::new(ZKCLI).exists() {
        skip("unreachable_server_matches_zkcli");
        return;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("a")
        .port();
    compare("down", &format!("127.0.0.1:{port}"), &["get", "/x"], "");
}
