//! Golden interaction scripts in the style of etcd raft's datadriven tests: a driver steps a
//! handful of `Server`s by hand, and each script in `testkit/testdata/` holds commands and
//! their expected (golden) output. One module per command, as etcd's
//! `interaction_env_handler_*.go`. `REWRITE=1 cargo test -p ensemble-testkit --test
//! interaction` rewrites the expected output after a deliberate change; review the diff.
//!
//! A block is a command line, `----`, the expected output, and a blank line. Commands:
//!   cluster voters=N [observers=M] [tick=MS] [super=USER:PW]  a fresh ensemble, ids 1..
//!                          (super: the superDigest of USER:PW)
//!   stabilize [verbose]     deliver messages, fsync logs and tick until nothing is left to do
//!   tick ms=N              advance the clock by N ms in ticks, delivering as it goes
//!   advance ms=N [verbose] only time passes: nothing delivered or fsynced
//!   crash id=N             lose volatile state (unsynced log appends included)
//!   restart id=N           recover from the durable log, snapshot and epochs
//!   epochs id=N accepted=E from=S current=C   set a crashed server's persisted epochs
//!   partition A|B...       cut every link between groups, e.g. `partition 1 2|3`
//!   heal                   restore every link
//!   hold id=N / release id=N   stop / resume fsyncing N's log (writes stay volatile)
//!   connect client=C server=N [session=of:C]   a client handshake (re-attach with session=of:C)
//!   op client=C <request>  create PATH DATA [mode] | set PATH DATA | get PATH [watch] |
//!                          delete PATH | children PATH [watch] | exists PATH [watch] | sync PATH
//!   pipeline client=C R1 ; R2 ; ...   requests sent back to back before any reply
//!   send client=C <request>  a request sent, nothing delivered yet (follow it with `deliver`)
//!   deliver [from=A] [to=B] [count=N] [verbose]   messages in flight, one link at a time,
//!                          nothing fsynced, no time passing
//!   fsync id=N             N's appends reported durable
//!   disconnect client=C    the client's connection drops
//!   quiet client=C         the client stops pinging (its session expires as time passes)
//!   op requests also: auth SCHEME CRED | setacl PATH SPEC | getacl PATH | whoami |
//!                     addwatch PATH [recursive] | ephemerals PREFIX | count PATH | close;
//!                     a create takes `acl=SCHEME:ID:PERMS` (perms `cdrwa`)
//!   status                 every server's role, epoch, zxids and tree digest
//!   tree id=N              the data tree of server N (paths and data)
//!   disk id=N              server N's disk: epochs, snapshot, durable log and unsynced tail

mod clients;
mod cluster;
mod connect;
mod crash;
mod deliver;
mod disk;
mod epochs;
mod hold;
mod op;
mod partition;
mod restart;
mod stabilize;
mod status;
mod tick;
mod tree;

use crate::ensemble::Ensemble;
pub use clients::ScriptClients;

/// The ensemble a script drives.
pub type World = Ensemble<ScriptClients>;

/// The value of `key=` among a command's arguments.
fn arg<'a>(args: &'a [&str], key: &str) -> Option<&'a str> {
    args.iter()
        .find_map(|a| a.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
}

/// A numeric `key=`, which the command needs.
fn num(args: &[&str], key: &str) -> u64 {
    arg(args, key)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("missing {key}="))
}

/// Run one command line; returns its output.
pub fn run_command(w: &mut Option<World>, line: &str) -> String {
    let words: Vec<&str> = line.split_whitespace().collect();
    let (cmd, args) = (words[0], &words[1..]);
    if cmd == "cluster" {
        *w = Some(cluster::cluster(args));
        return "ok\n".to_string();
    }
    let w = w.as_mut().expect("a cluster first");
    w.clients.log.clear();
    w.clients.verbose = false;
    match cmd {
        "stabilize" => stabilize::stabilize_cmd(w, args),
        "tick" => tick::tick(w, args),
        "advance" => stabilize::advance_cmd(w, args),
        "crash" => crash::crash(w, args),
        "restart" => restart::restart(w, args),
        "epochs" => epochs::epochs(w, args),
        "partition" => partition::partition(w, args),
        "heal" => partition::heal(w),
        "hold" => hold::hold(w, args),
        "release" => hold::release(w, args),
        "connect" => connect::connect(w, args),
        "quiet" => connect::quiet(w, args),
        "disconnect" => connect::disconnect(w, args),
        "op" => op::op(w, args),
        "pipeline" => op::pipeline(w, args),
        "send" => op::send_only(w, args),
        "deliver" => deliver::deliver(w, args),
        "fsync" => deliver::fsync(w, args),
        "status" => return status::status(w),
        "tree" => return tree::tree(w, args),
        "disk" => return disk::disk(w, args),
        other => panic!("unknown command {other}"),
    }
    w.check();
    if w.clients.log.is_empty() {
        "ok\n".to_string()
    } else {
        w.clients.log.clone()
    }
}

/// Run the script at `path` against its expected output: the mismatches, or with `rewrite`
/// the file rewritten with what the commands printed.
pub fn run_file(path: &std::path::Path, rewrite: bool) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut world = None;
    let mut rewritten = String::new();
    let mut lines = text.lines().peekable();
    let mut failures = Vec::new();
    while let Some(line) = lines.next() {
        if line.trim().is_empty() || line.starts_with('#') {
            rewritten.push_str(line);
            rewritten.push('\n');
            continue;
        }
        let cmd = line.to_string();
        if lines.next() != Some("----") {
            return Err(format!("{}: `----` after `{cmd}`", path.display()));
        }
        let mut expected = String::new();
        while let Some(l) = lines.peek() {
            if l.is_empty() {
                break;
            }
            expected.push_str(l);
            expected.push('\n');
            lines.next();
        }
        let got = run_command(&mut world, &cmd);
        if got != expected {
            failures.push(format!(
                "{}: `{cmd}`\n--- expected\n{expected}--- got\n{got}",
                path.display()
            ));
        }
        rewritten.push_str(&cmd);
        rewritten.push_str("\n----\n");
        rewritten.push_str(&got);
    }
    if rewrite {
        std::fs::write(path, rewritten).map_err(|e| format!("{}: {e}", path.display()))
    } else if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("\n"))
    }
}
