//! `ensemble cli`: Apache ZooKeeper's `zkCli.sh`, command for command and line for line
//! (`ZooKeeperMain` and `org.apache.zookeeper.cli.*` of 3.8), over this crate's [`Client`](crate::Client).
//!
//! `ensemble cli [-server host:port[,host:port][/chroot]] [-timeout ms] [-r] [cmd args...]`:
//! with a command it runs that one and exits with its status; without, it reads commands
//! (with the `[zk: host(STATE) n] ` prompt and line editing on a terminal).

mod args;
mod commands;
mod config;
mod format;

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};
use std::time::Duration;

use ensemble_proto::proto::WatchedEvent;
use tokio::sync::mpsc::UnboundedReceiver;

use crate::{Client, ConnectOptions, SessionState};

/// Runs the CLI on the process's stdin/stdout/stderr; returns the exit status.
pub fn run(args: Vec<String>) -> i32 {
    // a thread of its own: the caller may or may not be inside a tokio runtime
    let worker = std::thread::spawn(move || {
        let input = if std::io::stdin().is_terminal() {
            Input::Terminal
        } else {
            Input::Lines(Box::new(std::io::BufReader::new(std::io::stdin())))
        };
        let mut out = std::io::stdout();
        let mut err = std::io::stderr();
        run_with(args, input, &mut out, &mut err)
    });
    worker.join().unwrap_or(1)
}

/// Where interactive commands come from.
pub enum Input {
    /// a terminal: line editing, history and the zkCli prompt
    Terminal,
    /// anything else (a pipe, a file, a test): lines, no prompt, as zkCli without JLine
    Lines(Box<dyn BufRead + Send>),
}

/// Runs the CLI with the given input and outputs; returns the exit status.
pub fn run_with(args: Vec<String>, input: Input, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = writeln!(err, "ensemble cli: cannot start a runtime: {e}");
            return 1;
        }
    };
    let code = rt.block_on(async {
        let mut shell = Shell::new(out, err);
        shell.main(args, input).await
    });
    // a blocked stdin read must not hold the exit
    rt.shutdown_background();
    code
}

/// `--help` (or `-help`, `-h`) among the options, before any command word.
fn asks_for_help(args: &[String]) -> bool {
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--help" | "-help" | "-h" => return true,
            "-server" | "-timeout" | "-client-configuration" => {
                it.next();
            }
            w if !w.starts_with('-') => return false,
            _ => {}
        }
    }
    false
}

/// `MyCommandOptions.parseOptions`: options up to the first word not starting with '-'.
struct Options {
    server: String,
    timeout: String,
    read_only: bool,
    wait_for_connection: bool,
    client_configuration: Option<String>,
    command: Option<Vec<String>>,
}

fn parse_options(args: &[String], err: &mut dyn Write) -> Options {
    let mut o = Options {
        server: "localhost:2181".into(),
        timeout: "30000".into(),
        read_only: false,
        wait_for_connection: false,
        client_configuration: None,
        command: None,
    };
    let mut it = args.iter();
    while let Some(opt) = it.next() {
        let missing = |err: &mut dyn Write| {
            let _ = writeln!(err, "Error: no argument found for option {opt}");
        };
        match opt.as_str() {
            "-server" => match it.next() {
                Some(v) => o.server = v.clone(),
                None => missing(err),
            },
            "-timeout" => match it.next() {
                Some(v) => o.timeout = v.clone(),
                None => missing(err),
            },
            "-r" => o.read_only = true,
            "-waitforconnection" => o.wait_for_connection = true,
            "-client-configuration" => match it.next() {
                Some(v) => o.client_configuration = Some(v.clone()),
                None => missing(err),
            },
            _ => {}
        }
        if !opt.starts_with('-') {
            let mut cmd = vec![opt.clone()];
            cmd.extend(it.cloned());
            o.command = Some(cmd);
            break;
        }
    }
    o
}

/// A failed command: its message (to stderr) and exit status.
pub(crate) struct CliError {
    pub msg: String,
    pub code: i32,
}

impl CliError {
    pub(crate) fn new(msg: impl Into<String>) -> CliError {
        CliError {
            msg: msg.into(),
            code: 1,
        }
    }
}

/// What a processed line asks of the loop.
enum Flow {
    Continue,
    Quit,
}

pub(crate) struct Shell<'a> {
    out: &'a mut dyn Write,
    err: &'a mut dyn Write,
    host: String,
    timeout: Duration,
    read_only: bool,
    /// TLS to every server (`zookeeper.client.secure`), from the client settings
    tls: Option<crate::TlsOptions>,
    zk: Option<Client>,
    events: Option<UnboundedReceiver<WatchedEvent>>,
    print_watches: bool,
    history: BTreeMap<usize, String>,
    command_count: usize,
    exit_code: i32,
}

/// Every command of zkCli 3.8 with its usage, as `usage()` lists them (sorted).
pub(crate) const USAGE: &[(&str, &str)] = &[
    (
        "addWatch",
        "[-m mode] path # optional mode is one of [PERSISTENT, PERSISTENT_RECURSIVE] - default is PERSISTENT_RECURSIVE",
    ),
    ("addauth", "scheme auth"),
    ("close", ""),
    ("config", "[-c] [-w] [-s]"),
    ("connect", "host:port"),
    ("create", "[-s] [-e] [-c] [-t ttl] path [data] [acl]"),
    ("delete", "[-v version] path"),
    ("deleteall", "path [-b batch size]"),
    ("delquota", "[-n|-b|-N|-B] path"),
    ("get", "[-s] [-w] path"),
    ("getAcl", "[-s] path"),
    ("getAllChildrenNumber", "path"),
    ("getEphemerals", "path"),
    ("history", ""),
    ("listquota", "path"),
    ("ls", "[-s] [-w] [-R] path"),
    ("printwatches", "on|off"),
    ("quit", ""),
    (
        "reconfig",
        "[-s] [-v version] [[-file path] | [-members serverID=host:port1:port2;port3[,...]*]] | [-add serverId=host:port1:port2;port3[,...]]* [-remove serverId[,...]*]",
    ),
    ("redo", "cmdno"),
    ("removewatches", "path [-c|-d|-a] [-l]"),
    ("set", "[-s] [-v version] path data"),
    ("setAcl", "[-s] [-v version] [-R] path acl"),
    ("setquota", "-n|-b|-N|-B val path"),
    ("stat", "[-w] path"),
    ("sync", "path"),
    ("version", ""),
    ("whoami", ""),
];

pub(crate) fn usage_of(cmd: &str) -> String {
    let opts = USAGE
        .iter()
        .find(|(c, _)| *c == cmd)
        .map(|(_, o)| *o)
        .unwrap_or("");
    format!("{cmd} {opts}")
}

impl<'a> Shell<'a> {
    fn new(out: &'a mut dyn Write, err: &'a mut dyn Write) -> Shell<'a> {
        Shell {
            out,
            err,
            host: String::new(),
            timeout: Duration::from_secs(30),
            read_only: false,
            tls: None,
            zk: None,
            events: None,
            print_watches: true,
            history: BTreeMap::new(),
            command_count: 0,
            exit_code: 0,
        }
    }

    /// Prints watch events that have arrived, so they come out in the order they happened
    /// relative to command output.
    pub(crate) fn drain_events(&mut self) {
        while let Some(ev) = self.events.as_mut().and_then(|rx| rx.try_recv().ok()) {
            self.print_event(&ev);
        }
    }

    fn print_event(&mut self, ev: &WatchedEvent) {
        if self.print_watches {
            // ZooKeeperMain.printMessage prints "\n" + msg
            let _ = writeln!(self.out, "\nWATCHER::");
            let _ = writeln!(self.out, "\n{}", format::event_string(ev));
            let _ = self.out.flush();
        }
    }

    pub(crate) fn out(&mut self, line: impl AsRef<str>) {
        self.drain_events();
        let _ = writeln!(self.out, "{}", line.as_ref());
    }

    /// Output without a newline (`out.print`).
    pub(crate) fn out_raw(&mut self, s: impl AsRef<str>) {
        self.drain_events();
        let _ = write!(self.out, "{}", s.as_ref());
    }

    pub(crate) fn err(&mut self, line: impl AsRef<str>) {
        self.drain_events();
        let _ = self.out.flush();
        let _ = writeln!(self.err, "{}", line.as_ref());
        let _ = self.err.flush();
    }

    fn usage(&mut self) {
        self.err("ZooKeeper -server host:port -client-configuration properties-file cmd args");
        for (cmd, opts) in USAGE {
            self.err(format!("\t{cmd} {opts}"));
        }
    }

    fn state(&self) -> SessionState {
        self.zk
            .as_ref()
            .map(|z| z.state())
            .unwrap_or(SessionState::Closed)
    }

    pub(crate) fn client(&self) -> Result<&Client, CliError> {
        self.zk
            .as_ref()
            .ok_or_else(|| CliError::new("Not connected"))
    }

    async fn connect_to(&mut self, host: &str) -> Result<(), CliError> {
        if let Some(old) = self.zk.take() {
            if !old.state().is_terminal() {
                let _ = old.close().await;
            }
            // the old session's last events (Closed) still belong on screen
            self.drain_events();
        }
        self.host = host.to_string();
        let mut opts = ConnectOptions::new(host, self.timeout);
        opts.read_only = self.read_only;
        opts.tls = self.tls.clone();
        let zk = Client::start(opts).map_err(|e| CliError::new(e.to_string()))?;
        self.events = zk.take_events();
        self.zk = Some(zk);
        Ok(())
    }

    async fn main(&mut self, args: Vec<String>, input: Input) -> i32 {
        let mut err_buf = Vec::new();
        // `ensemble cli --help`: usage, not a connection to localhost:2181 (zkCli.sh has no
        // such flag and would connect; a newcomer asking for help should not wait on one).
        if asks_for_help(&args) {
            self.out(
                "usage: ensemble cli [-server host:port] [-timeout ms] [-r] [-waitforconnection] [-client-configuration properties-file] [cmd args]",
            );
            self.out("  without cmd: an interactive shell (zkCli.sh's); -server defaults to localhost:2181");
            self.out("commands:");
            for (c, o) in USAGE {
                self.out(format!("\t{c} {o}"));
            }
            return 0;
        }
        let o = parse_options(&args, &mut err_buf);
        if !err_buf.is_empty() {
            let _ = self.err.write_all(&err_buf);
        }
        self.out(format!("Connecting to {}", o.server));
        let Ok(ms) = o.timeout.parse::<u64>() else {
            self.err(format!(
                "Exception in thread \"main\" java.lang.NumberFormatException: For input string: \"{}\"",
                o.timeout
            ));
            return 1;
        };
        self.timeout = Duration::from_millis(ms);
        self.read_only = o.read_only;
        // zkCli.sh's settings: -D flags of its JVM, then the -client-configuration file
        let mut settings = config::ClientSettings::default();
        for var in ["CLIENT_JVMFLAGS", "JVMFLAGS"] {
            if let Ok(flags) = std::env::var(var) {
                settings.add_jvm_flags(&flags, var);
            }
        }
        if let Some(file) = &o.client_configuration
            && let Err(e) = settings.add_file(std::path::Path::new(file))
        {
            self.err(format!("ensemble cli: {e}"));
            return 1;
        }
        for line in settings.unused() {
            self.err(line);
        }
        match settings.tls() {
            Ok(tls) => self.tls = tls,
            Err(e) => {
                self.err(format!("ensemble cli: {e}"));
                return 1;
            }
        }
        if let Err(e) = self.connect_to(&o.server).await {
            self.err(e.msg);
            return 1;
        }
        if o.wait_for_connection && !self.wait_connected(self.timeout).await {
            if let Some(zk) = self.zk.take() {
                let _ = zk.close().await;
            }
            self.err("KeeperErrorCode = ConnectionLoss");
            return 1;
        }
        match o.command {
            Some(words) => {
                self.process_cmd(words).await;
                self.drain_events();
                let _ = self.out.flush();
                self.exit_code
            }
            None => self.interactive(input).await,
        }
    }

    async fn wait_connected(&mut self, within: Duration) -> bool {
        let Some(zk) = self.zk.as_ref() else {
            return false;
        };
        let mut w = zk.state_watcher();
        let r = tokio::time::timeout(within, async {
            loop {
                let s = *w.borrow_and_update();
                if s.is_connected() {
                    return true;
                }
                if s.is_terminal() || w.changed().await.is_err() {
                    return false;
                }
            }
        })
        .await;
        r.unwrap_or(false)
    }

    fn prompt(&self) -> String {
        format!(
            "[zk: {}({}) {}] ",
            self.host,
            self.state().java_name(),
            self.command_count
        )
    }

    async fn interactive(&mut self, input: Input) -> i32 {
        self.out("Welcome to ZooKeeper!");
        match input {
            Input::Terminal => {
                self.out("JLine support is enabled");
                let Ok(mut editor) = rustyline::DefaultEditor::new() else {
                    self.err("ensemble cli: cannot open the terminal");
                    return 1;
                };
                loop {
                    self.drain_events();
                    let _ = self.out.flush();
                    let prompt = self.prompt();
                    let read = tokio::task::spawn_blocking(move || {
                        let line = editor.readline(&prompt);
                        (editor, line)
                    });
                    let (ed, line) = match self.wait_for_line(read).await {
                        Some(r) => r,
                        None => return self.exit_code,
                    };
                    editor = ed;
                    match line {
                        Ok(line) => {
                            if !line.trim().is_empty() {
                                let _ = editor.add_history_entry(line.as_str());
                            }
                            if let Flow::Quit = self.execute_line(&line).await {
                                return self.exit_code;
                            }
                        }
                        // Ctrl-D / Ctrl-C end the shell, as they end zkCli's JVM
                        Err(_) => return self.exit_code,
                    }
                }
            }
            Input::Lines(mut reader) => {
                self.out("JLine support is disabled");
                loop {
                    self.drain_events();
                    let _ = self.out.flush();
                    let read = tokio::task::spawn_blocking(move || {
                        let mut line = String::new();
                        let n = reader.read_line(&mut line);
                        (reader, n.map(|n| (n, line)))
                    });
                    let (r, line) = match self.wait_for_line(read).await {
                        Some(r) => r,
                        None => return self.exit_code,
                    };
                    reader = r;
                    match line {
                        Ok((0, _)) | Err(_) => return self.exit_code,
                        Ok((_, mut line)) => {
                            // BufferedReader.readLine strips "\n" or "\r\n"
                            if line.ends_with('\n') {
                                line.pop();
                                if line.ends_with('\r') {
                                    line.pop();
                                }
                            }
                            if let Flow::Quit = self.execute_line(&line).await {
                                return self.exit_code;
                            }
                        }
                    }
                }
            }
        }
    }

    /// Waits for the next input line, printing watch events as they arrive meanwhile.
    async fn wait_for_line<T>(&mut self, read: tokio::task::JoinHandle<T>) -> Option<T> {
        tokio::pin!(read);
        loop {
            let ev = async {
                match self.events.as_mut() {
                    Some(rx) => rx.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                r = &mut read => return r.ok(),
                ev = ev => match ev {
                    Some(ev) => self.print_event(&ev),
                    // the session task ended: no more events from it
                    None => self.events = None,
                },
            }
        }
    }

    async fn execute_line(&mut self, line: &str) -> Flow {
        if line.is_empty() {
            return Flow::Continue;
        }
        let words = args::split_line(line);
        if words.is_empty() {
            return Flow::Continue;
        }
        self.history.insert(self.command_count, line.to_string());
        let flow = self.process_cmd(words).await;
        self.command_count += 1;
        flow
    }

    async fn process_cmd(&mut self, words: Vec<String>) -> Flow {
        match Box::pin(self.process_zk_cmd(words)).await {
            Ok(flow) => {
                self.exit_code = 0;
                flow
            }
            Err(e) => {
                self.exit_code = e.code;
                self.err(e.msg);
                Flow::Continue
            }
        }
    }

    async fn process_zk_cmd(&mut self, words: Vec<String>) -> Result<Flow, CliError> {
        let Some(cmd) = words.first().cloned() else {
            self.usage();
            return Err(CliError::new("No command entered"));
        };
        if cmd == "help" {
            self.out("ZooKeeper -server host:port -client-configuration properties-file cmd args");
            for (c, o) in USAGE {
                self.out(format!("\t{c} {o}"));
            }
            return Ok(Flow::Continue);
        }
        if !USAGE.iter().any(|(c, _)| *c == cmd) {
            self.usage();
            return Err(CliError {
                msg: format!("Command not found: Command not found {cmd}"),
                code: 127,
            });
        }
        match cmd.as_str() {
            "quit" => {
                if let Some(zk) = self.zk.as_ref()
                    && !zk.state().is_terminal()
                {
                    let _ = zk.close().await;
                }
                self.drain_events();
                return Ok(Flow::Quit);
            }
            "redo" if words.len() >= 2 => {
                let i = parse_java_int(&words[1]).ok_or_else(|| {
                    CliError::new(format!(
                        "java.lang.NumberFormatException: For input string: \"{}\"",
                        words[1]
                    ))
                })?;
                if i < 0 || self.command_count as i64 <= i {
                    return Err(CliError::new("Command index out of range"));
                }
                let line = self.history.get(&(i as usize)).cloned().unwrap_or_default();
                let again = args::split_line(&line);
                if again.first().map(String::as_str) == Some("redo") {
                    return Err(CliError::new("No redoing redos"));
                }
                self.history.insert(self.command_count, line);
                if let Flow::Quit = Box::pin(self.process_cmd(again)).await {
                    return Ok(Flow::Quit);
                }
            }
            "history" => {
                let from = self.command_count as i64 - 10;
                for i in from.max(0)..=self.command_count as i64 {
                    let line = self
                        .history
                        .get(&(i as usize))
                        .cloned()
                        .unwrap_or("null".into());
                    self.out(format!("{i} - {line}"));
                }
            }
            "printwatches" => {
                if words.len() == 1 {
                    let s = if self.print_watches { "on" } else { "off" };
                    self.out(format!("printwatches is {s}"));
                } else {
                    self.print_watches = words[1] == "on";
                }
            }
            "connect" => {
                let host = words.get(1).cloned().unwrap_or_else(|| self.host.clone());
                self.connect_to(&host).await?;
            }
            _ => {}
        }
        // below, everything needs a live session (connecting counts)
        if self.zk.is_none() || self.state().is_terminal() {
            self.out("Not connected");
            return Ok(Flow::Continue);
        }
        commands::exec(self, &cmd, words).await?;
        Ok(Flow::Continue)
    }
}

/// `Integer.decode`: decimal, 0x/0X/# hex, leading-0 octal, optional sign.
fn parse_java_int(s: &str) -> Option<i64> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let v = if let Some(h) = body
        .strip_prefix("0x")
        .or_else(|| body.strip_prefix("0X"))
        .or_else(|| body.strip_prefix('#'))
    {
        i64::from_str_radix(h, 16).ok()?
    } else if body.len() > 1 && body.starts_with('0') {
        i64::from_str_radix(&body[1..], 8).ok()?
    } else {
        body.parse::<i64>().ok()?
    };
    let v = if neg { -v } else { v };
    i32::try_from(v).ok().map(i64::from)
}
