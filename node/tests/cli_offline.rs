//! `ensemble cli` without any server: option handling, usage, exit statuses and the
//! connection-loss path (zkCli.sh's behaviour, checked against it in `cli_realzk.rs`).

use std::io::Cursor;

use ensemble_client::cli::{Input, run_with};

fn dead_server() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let a = l.local_addr().expect("addr").to_string();
    drop(l);
    a
}

fn run(args: &[&str], stdin: &str) -> (i32, String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let mut argv = vec![
        "-server".to_string(),
        dead_server(),
        "-timeout".into(),
        "3000".into(),
    ];
    argv.extend(args.iter().map(|s| s.to_string()));
    let input = Input::Lines(Box::new(Cursor::new(stdin.as_bytes().to_vec())));
    let code = run_with(argv, input, &mut out, &mut err);
    (
        code,
        String::from_utf8_lossy(&out).into_owned(),
        String::from_utf8_lossy(&err).into_owned(),
    )
}

#[test]
fn unknown_command_prints_usage_and_exits_127() {
    let (code, out, err) = run(&["bogus"], "");
    assert_eq!(code, 127);
    assert!(out.starts_with("Connecting to 127.0.0.1:"));
    assert!(err.starts_with(
        "ZooKeeper -server host:port -client-configuration properties-file cmd args\n"
    ));
    assert!(err.contains("\n\tls [-s] [-w] [-R] path\n"));
    assert!(err.ends_with("Command not found: Command not found bogus\n"));
}

#[test]
fn usage_errors_exit_1() {
    for (cmd, msg) in [
        (&["ls"][..], "ls [-s] [-w] [-R] path\n"),
        (
            &["create"],
            "create [-s] [-e] [-c] [-t ttl] path [data] [acl]\n",
        ),
        (&["set", "/x"], "set [-s] [-v version] path data\n"),
        (
            &["get", "-q", "/x"],
            "org.apache.commons.cli.UnrecognizedOptionException: Unrecognized option: -q\n",
        ),
        (
            &["create", "-c", "-e", "/x"],
            "-c cannot be combined with -s or -e. Containers cannot be ephemeral or sequential.\n",
        ),
        (
            &["deleteall", "/x", "-b", "z"],
            "-b argument must be an int value\n",
        ),
    ] {
        let (code, _, err) = run(cmd, "");
        assert_eq!((code, err.as_str()), (1, msg), "{cmd:?}");
    }
}

#[test]
fn a_dead_server_is_connection_loss() {
    let (code, _, err) = run(&["get", "/x"], "");
    assert_eq!(
        (code, err.as_str()),
        (1, "KeeperErrorCode = ConnectionLoss for /x\n")
    );
    let (code, _, err) = run(&["create", "bad"], "");
    assert_eq!(
        (code, err.as_str()),
        (1, "Path must start with / character\n")
    );
}

#[test]
fn interactive_without_a_terminal_reads_lines() {
    let (code, out, err) = run(
        &[],
        "version\n\nprintwatches off\nprintwatches\nhistory\nredo 9\n",
    );
    assert_eq!(code, 1, "the last command's status");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[1..3],
        ["Welcome to ZooKeeper!", "JLine support is disabled"]
    );
    assert!(lines[3].starts_with("ZooKeeper CLI version: "));
    assert_eq!(
        lines[4..],
        [
            "printwatches is off",
            "0 - version",
            "1 - printwatches off",
            "2 - printwatches",
            "3 - history"
        ]
    );
    assert_eq!(err, "Command index out of range\n");
}
