//! `replay`'s filters and the run explorer: the filtered text replay keeps only the lines asked
//! for, the replay and the recorded trace agree, and the explorer page (`replay --html`)
//! renders in a real headless Chromium (Debian's `chromium`, scripts/install-test-deps.sh) with
//! lanes, messages and operations drawn. In CI the browser must be there; elsewhere the test
//! says it skipped.

use std::path::PathBuf;
use std::process::Command;

fn sim() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ensemble-sim"))
}

fn out_dir() -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("explorer");
    std::fs::create_dir_all(&d).expect("a scratch directory");
    d
}

/// The event lines of a replay's output (numbered: `  line  ms who role text`).
fn numbered_lines(text: &str) -> Vec<(u64, u64, String)> {
    text.lines()
        .take_while(|l| !l.starts_with("# ----"))
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let n = w.next()?.parse().ok()?;
            let t = w.next()?.parse().ok()?;
            let who = w.next()?.to_string();
            Some((n, t, who))
        })
        .collect()
}

#[test]
fn replay_filters_keep_what_was_asked() {
    let run = |args: &[&str]| {
        let out = sim().args(args).output().expect("runs");
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let all = run(&["replay", "--seed", "5", "--numbers", "--to", "8000"]);
    let all = numbered_lines(&all);
    assert!(all.len() > 1000, "seed 5 has a busy first 8 s");
    assert!(all.iter().all(|(_, t, _)| *t <= 8000));
    let n2 = run(&[
        "replay", "--seed", "5", "--node", "2", "--from", "2000", "--to", "8000",
    ]);
    let n2 = numbered_lines(&n2);
    assert!(!n2.is_empty());
    for (n, t, _) in &n2 {
        assert!(
            (2000..=8000).contains(t),
            "line {n} at {t} ms is outside the window"
        );
        let full = all
            .iter()
            .find(|(m, _, _)| m == n)
            .expect("the same line numbers");
        assert_eq!(full.1, *t);
    }
    assert!(n2.iter().any(|(_, _, w)| w == "n2"));
    assert!(
        n2.len() < all.len() / 2,
        "a node filter keeps a part of the trace"
    );
    let c1 = run(&["replay", "--seed", "5", "--client", "c1", "--to", "8000"]);
    let c1 = numbered_lines(&c1);
    assert!(c1.iter().any(|(_, _, w)| w == "c1"));
    assert!(
        c1.iter()
            .all(|(_, _, w)| w == "c1" || w.starts_with('n') || w == "sim"),
        "a client filter keeps its lines and the servers' lines on its connections"
    );
    assert!(!c1.iter().any(|(_, _, w)| w.starts_with('c') && w != "c1"));
    let bad = sim()
        .args(["replay", "--seed", "5", "--node", "x"])
        .output()
        .expect("runs");
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--node"));
}

#[test]
fn a_violation_is_shown_in_the_context_of_what_it_names() {
    let out = sim()
        .args(["replay", "--seed", "3", "--plant", "lost-watch"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    // the client the violation names (`client.watch-missed ...: client N watch ...`)
    let fail = text
        .lines()
        .find(|l| l.starts_with("FAIL "))
        .expect("a FAIL line");
    let client: String = fail
        .split("client ")
        .nth(1)
        .expect("the violation names its client")
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    let me = format!("c{client}");
    let ctx: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("the failure in context"))
        .collect();
    assert!(
        ctx[0].contains(&format!("of {me}")),
        "the context names its client: {}",
        ctx[0]
    );
    let body: Vec<&str> = ctx[1..]
        .iter()
        .take_while(|l| !l.starts_with("FAIL"))
        .copied()
        .collect();
    assert!(!body.is_empty());
    for l in &body {
        let who = l.split_whitespace().nth(2).unwrap_or("");
        assert!(
            who == me || who.starts_with('n') || who == "sim",
            "context line not about {me}: {l}"
        );
    }
}

/// Chromium's binary, if this machine has one.
fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser"].into_iter().find(|b| {
        Command::new(b)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

/// The page's `<body ...>` attributes after its script ran in headless Chromium.
fn rendered(browser: &str, page: &std::path::Path) -> String {
    let out = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--window-size=1400,1000",
            "--virtual-time-budget=5000",
            "--dump-dom",
        ])
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs");
    let dom = String::from_utf8_lossy(&out.stdout).to_string();
    let body = dom
        .split("<body")
        .nth(1)
        .and_then(|b| b.split('>').next())
        .unwrap_or("")
        .to_string();
    assert!(
        !body.is_empty(),
        "chromium rendered no page: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    body
}

fn attr(body: &str, name: &str) -> u64 {
    body.split(&format!("data-{name}=\""))
        .nth(1)
        .and_then(|v| v.split('"').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[test]
fn the_explorer_renders_in_headless_chromium() {
    let Some(browser) = chromium() else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI must render the explorer: chromium is missing (scripts/install-test-deps.sh)"
        );
        eprintln!("SKIPPED: no chromium here (scripts/install-test-deps.sh installs it)");
        return;
    };
    let dir = out_dir();
    // a whole 60 s swarm run: every lane, the aggregate of its messages, its operations
    let pass = dir.join("seed5.html");
    let out = sim()
        .args(["replay", "--seed", "5", "--html"])
        .arg(&pass)
        .output()
        .expect("runs");
    assert!(out.status.success());
    let page = std::fs::read_to_string(&pass).expect("the page");
    assert!(!page.contains("http://") && !page.contains("https://"));
    assert!(!page.contains("<script src") && !page.contains("<link"));
    let body = rendered(browser, &pass);
    assert_eq!(attr(&body, "drawn"), 1, "the script drew: {body}");
    assert_eq!(attr(&body, "lanes"), 4, "a lane per server: {body}");
    assert!(attr(&body, "segs") >= 4, "{body}");
    assert!(attr(&body, "agg") + attr(&body, "arrows") > 0, "{body}");
    assert!(attr(&body, "ops") > 100, "{body}");
    assert!(attr(&body, "faults") > 0, "its clogs: {body}");
    // a violation: the page opens on it, with its chain, and draws single arrows there
    let fail = dir.join("lost-watch.html");
    let out = sim()
        .args(["replay", "--seed", "3", "--plant", "lost-watch", "--html"])
        .arg(&fail)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let page = std::fs::read_to_string(&fail).expect("the page");
    assert!(page.contains("client.watch-missed"));
    let body = rendered(browser, &fail);
    assert_eq!(attr(&body, "drawn"), 1, "{body}");
    assert_eq!(attr(&body, "lanes"), 8, "{body}");
    assert!(attr(&body, "arrows") > 0, "{body}");
}
