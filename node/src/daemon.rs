//! `ensemble start|stop|status`, the way `zkServer.sh` does them: a detached server process
//! with its pid in `dataDir/zookeeper_server.pid`, stopped with SIGTERM, asked with `srvr`.
//!
//! The pid file is also a lock (flock) held by the server for its whole life, so "already
//! running" and "has it stopped yet" never depend on pid reuse.

use crate::config::NodeConfig;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The environment variable naming the fd a daemon child reports readiness on.
pub const READY_FD_ENV: &str = "ENSEMBLE_READY_FD";

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("already running as process {pid} (pid file {path})")]
    AlreadyRunning { pid: String, path: PathBuf },
    // The io error is in the message and not a `source`, so `{:#}` does not print it twice.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A directory named by a setting cannot serve as one: names the setting, its line and why.
    #[error("{setting}: {problem}")]
    Dir { setting: String, problem: String },
}

/// Where a setting of `zoo.cfg` came from: `zoo1.cfg:4: dataDir=/var/lib/x`, or, for a setting
/// the file leaves out, what it defaults to (`dataLogDir` is `dataDir` unless set).
pub fn setting(cfg: &NodeConfig, key: &str, value: &Path) -> String {
    match config_line(&cfg.path, key) {
        Some(line) => format!("{}:{line}: {key}={}", cfg.path.display(), value.display()),
        None if key == "dataLogDir" => setting(cfg, "dataDir", value),
        None => format!(
            "{}: {key}={} (default)",
            cfg.path.display(),
            value.display()
        ),
    }
}

/// The 1-based line of the last `key=...` in a properties file (the one that wins).
fn config_line(path: &Path, key: &str) -> Option<usize> {
    let text = std::fs::read_to_string(path).ok()?;
    let mut found = None;
    for (i, raw) in text.lines().enumerate() {
        let l = raw.trim_start();
        if l.starts_with('#') || l.starts_with('!') {
            continue;
        }
        let end = l
            .find(|c: char| c == '=' || c == ':' || c.is_whitespace())
            .unwrap_or(l.len());
        if &l[..end] == key {
            found = Some(i + 1);
        }
    }
    found
}

/// What an operator can do about an io error on a directory they configured.
fn hint(e: &std::io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(libc::EPERM) => "; check its owner and mode, and `lsattr -d` for the immutable flag",
        Some(libc::EACCES) => "; check its owner and mode",
        Some(libc::EROFS) => "; the file system is mounted read-only",
        Some(libc::EEXIST) | Some(libc::ENOTDIR) => {
            "; a file is in the way where a directory should be"
        }
        Some(libc::ENOSPC) => "; the disk is full",
        _ => "",
    }
}

/// Before the server opens its storage: `dataDir` and `dataLogDir` are directories this process
/// can create and write in, each error naming the directory, its setting and its config line.
/// (ZooKeeper's own checks say only "Unable to create data directory"; an operator should not
/// need to read source to find which setting is wrong.)
pub fn check_dirs(cfg: &NodeConfig) -> Result<(), DaemonError> {
    let mut dirs = vec![("dataDir", &cfg.data_dir)];
    if cfg.data_log_dir != cfg.data_dir {
        dirs.push(("dataLogDir", &cfg.data_log_dir));
    }
    for (key, dir) in dirs {
        let err = |problem: String| DaemonError::Dir {
            setting: setting(cfg, key, dir),
            problem,
        };
        if dir.exists() && !dir.is_dir() {
            return Err(err(format!("{} is a file, not a directory", dir.display())));
        }
        let sub = dir.join("version-2");
        if let Err(e) = std::fs::create_dir_all(&sub) {
            return Err(err(format!(
                "cannot create {}: {e}{}",
                sub.display(),
                hint(&e)
            )));
        }
        // A directory that exists can still refuse new files (mode, immutable flag, read-only
        // mount): try one, so the server does not fail later with a bare os error.
        let probe = sub.join(format!(".ensemble-write-check.{}", std::process::id()));
        match File::create(&probe) {
            Ok(_) => {
                let _ = std::fs::remove_file(&probe);
            }
            Err(e) => {
                return Err(err(format!(
                    "cannot write in {}: {e}{}",
                    sub.display(),
                    hint(&e)
                )));
            }
        }
        // Ensemble's files share ZooKeeper's names: starting on ZooKeeper's would start empty.
        if let Some(file) = crate::zookeeper::holds_zookeeper_files(&sub) {
            return Err(err(format!(
                "{} is Apache ZooKeeper's file, which this server does not read: import \
                 ZooKeeper's data with `ensemble import --zk-data-dir ZKDATADIR [--zk-log-dir \
                 ZKLOGDIR] CONFIG` into an empty dataDir (README: migrating from ZooKeeper)",
                file.display()
            )));
        }
    }
    Ok(())
}

/// An error and its causes on one line, each cause once: a message that already quotes its
/// cause (`path: os error`) is not followed by the same cause again.
pub fn describe(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DaemonError + '_ {
    move |source| DaemonError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn try_lock(f: &File) -> bool {
    // SAFETY: flock on a descriptor we own.
    unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

/// The running server's hold on its pid file. Removing the file on drop tells `stop` we are
/// gone even before the process is reaped.
pub struct PidLock {
    path: PathBuf,
    _file: File,
}

impl PidLock {
    pub fn acquire(path: &Path) -> Result<PidLock, DaemonError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io(dir))?;
        }
        let mut f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io(path))?;
        if !try_lock(&f) {
            let mut pid = String::new();
            let _ = f.read_to_string(&mut pid);
            return Err(DaemonError::AlreadyRunning {
                pid: pid.trim().to_string(),
                path: path.to_path_buf(),
            });
        }
        f.set_len(0).map_err(io(path))?;
        writeln!(f, "{}", std::process::id()).map_err(io(path))?;
        f.sync_all().map_err(io(path))?;
        Ok(PidLock {
            path: path.to_path_buf(),
            _file: f,
        })
    }
}

impl Drop for PidLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Is a live process holding this pid file? `Some(pid)` if so.
pub fn running_pid(path: &Path) -> Option<String> {
    // read-only: flock needs no write access, and another user's pid file is readable
    let f = OpenOptions::new().read(true).open(path).ok()?;
    if try_lock(&f) {
        return None; // nobody holds it; our lock goes away with `f`
    }
    let pid = std::fs::read_to_string(path).unwrap_or_default();
    Some(pid.trim().to_string())
}

/// Tell the parent `ensemble start` how starting went (daemon child side).
pub struct ReadyPipe(Option<File>);

impl ReadyPipe {
    pub fn from_env() -> ReadyPipe {
        let fd = std::env::var(READY_FD_ENV)
            .ok()
            .and_then(|v| v.parse::<i32>().ok());
        // SAFETY: the parent passed us this descriptor for exactly this purpose.
        ReadyPipe(
            fd.filter(|fd| *fd > 2)
                .map(|fd| unsafe { File::from_raw_fd(fd) }),
        )
    }
    /// Started by `ensemble start`, with a parent waiting for the verdict.
    pub fn is_connected(&self) -> bool {
        self.0.is_some()
    }
    pub fn ready(&mut self) {
        if let Some(mut f) = self.0.take() {
            let _ = f.write_all(b"READY\n");
        }
    }
    pub fn failed(&mut self, msg: &str) {
        if let Some(mut f) = self.0.take() {
            let _ = writeln!(f, "ERROR {msg}");
        }
    }
}

/// `ensemble start CONFIG`: spawn `ensemble run CONFIG` detached, wait until it listens.
pub fn start(config_path: &Path, cfg: &NodeConfig) -> anyhow::Result<i32> {
    println!("Using config: {}", config_path.display());
    let pid_file = cfg.pid_file();
    if let Some(pid) = running_pid(&pid_file) {
        println!("Starting ensemble ... already running as process {pid}.");
        return Ok(1);
    }
    if let Err(e) = check_dirs(cfg) {
        println!("Starting ensemble ... FAILED TO START");
        eprintln!("ensemble: {e}");
        return Ok(1);
    }
    let out_path = cfg.data_dir.join("zookeeper.out");
    let out = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&out_path)
        .map_err(|e| DaemonError::Dir {
            setting: setting(cfg, "dataDir", &cfg.data_dir),
            problem: format!("cannot open {}: {e}{}", out_path.display(), hint(&e)),
        })?;
    let err = out.try_clone()?;

    let mut fds = [0i32; 2];
    // SAFETY: pipe2 fills the array we own.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    // SAFETY: both descriptors were just created and are owned here.
    let (mut read_end, write_end) =
        unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) };
    let wfd = write_end.as_raw_fd();
    let exe = std::env::current_exe()?;
    let abs_config =
        std::fs::canonicalize(config_path).unwrap_or_else(|_| config_path.to_path_buf());
    let mut cmd = Command::new(exe);
    cmd.arg("run")
        .arg(&abs_config)
        .env(READY_FD_ENV, wfd.to_string())
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            // Let the readiness pipe survive exec.
            let flags = libc::fcntl(wfd, libc::F_GETFD);
            libc::fcntl(wfd, libc::F_SETFD, flags & !libc::FD_CLOEXEC);
            Ok(())
        });
    }
    let mut child = cmd.spawn()?;
    drop(write_end);

    // Read the child's verdict; EOF without one means it died early.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = read_end.read_to_string(&mut s);
        let _ = tx.send(s);
    });
    let verdict = rx
        .recv_timeout(Duration::from_secs(300))
        .unwrap_or_default();
    if verdict.starts_with("READY") {
        println!("Starting ensemble ... STARTED");
        return Ok(0);
    }
    if let Some(msg) = verdict.strip_prefix("ERROR ") {
        println!("Starting ensemble ... FAILED TO START");
        eprintln!("ensemble: {}", msg.trim());
    } else {
        let status = child.try_wait().ok().flatten();
        println!("Starting ensemble ... FAILED TO START");
        eprintln!(
            "ensemble: the server process {} without reporting; see {}",
            status
                .map(|s| format!("exited ({s})"))
                .unwrap_or_else(|| "did not start in time".into()),
            out_path.display()
        );
    }
    Ok(1)
}

fn wait_gone(pid_file: &Path, limit: Duration) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        if running_pid(pid_file).is_none() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// `ensemble stop CONFIG`: SIGTERM, wait for the server to let go of its pid file.
pub fn stop(config_path: &Path, cfg: &NodeConfig) -> anyhow::Result<i32> {
    println!("Using config: {}", config_path.display());
    let pid_file = cfg.pid_file();
    let Some(pid) = running_pid(&pid_file) else {
        if pid_file.exists() {
            let _ = std::fs::remove_file(&pid_file);
            println!(
                "Stopping ensemble ... no ensemble to stop (removed stale {})",
                pid_file.display()
            );
        } else {
            println!(
                "Stopping ensemble ... no ensemble to stop (could not find file {})",
                pid_file.display()
            );
        }
        return Ok(1);
    };
    let Ok(n) = pid.parse::<i32>() else {
        eprintln!("ensemble: {} holds '{pid}', not a pid", pid_file.display());
        return Ok(1);
    };
    // SAFETY: plain kill(2).
    unsafe { libc::kill(n, libc::SIGTERM) };
    if !wait_gone(&pid_file, Duration::from_secs(30)) {
        eprintln!("ensemble: process {n} did not stop within 30 s; killing it");
        // SAFETY: plain kill(2).
        unsafe { libc::kill(n, libc::SIGKILL) };
        wait_gone(&pid_file, Duration::from_secs(5));
    }
    // The pid file is let go just before the process exits: wait for the exit too, so that a
    // `start` right after (as `restart` does) finds its ports free.
    wait_exited(n, Duration::from_secs(5));
    println!("Stopping ensemble ... STOPPED");
    Ok(0)
}

fn wait_exited(pid: i32, limit: Duration) {
    let t0 = Instant::now();
    // SAFETY: kill(2) with signal 0 only checks that the process exists.
    while t0.elapsed() < limit && unsafe { libc::kill(pid, 0) } == 0 {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `ensemble restart CONFIG`: `stop` (nothing to stop is fine) then `start`, as zkServer.sh.
pub fn restart(config_path: &Path, cfg: &NodeConfig) -> anyhow::Result<i32> {
    stop(config_path, cfg)?;
    start(config_path, cfg)
}

/// Send a four-letter word and read the whole answer.
pub fn ask(host: &str, port: u16, word: &str) -> std::io::Result<String> {
    use std::net::{TcpStream, ToSocketAddrs};
    let mut last = std::io::Error::new(std::io::ErrorKind::NotFound, "no address");
    for addr in (host, port).to_socket_addrs()? {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(3)) {
            Ok(mut s) => {
                s.set_read_timeout(Some(Duration::from_secs(10)))?;
                s.write_all(word.as_bytes())?;
                let mut out = String::new();
                s.read_to_string(&mut out)?;
                return Ok(out);
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// `ensemble status CONFIG`: the `Mode:` line of `srvr`, as zkServer.sh prints it; when there
/// is none, why not. The pid file is asked first, so a config whose server is not running is
/// not answered by whatever else listens on its client port.
pub fn status(config_path: &Path, cfg: &NodeConfig) -> anyhow::Result<i32> {
    println!("Using config: {}", config_path.display());
    let host = cfg.client_connect_host();
    println!(
        "Client port found: {}. Client address: {}. Client SSL: false.",
        cfg.client_port, host
    );
    let pid_file = cfg.pid_file();
    let out_path = cfg.data_dir.join("zookeeper.out");
    let server = match running_pid(&pid_file) {
        Some(pid) => format!("the server (process {pid})"),
        // a pid file we may not open (another user's server): the port is all we can ask
        None if pid_file.exists() && OpenOptions::new().read(true).open(&pid_file).is_err() => {
            "the server".to_string()
        }
        None => {
            eprintln!("Error contacting service. It is not running.");
            if pid_file.exists() {
                eprintln!(
                    "(no process holds {}: the server exited; its last words are in {})",
                    pid_file.display(),
                    out_path.display()
                );
            } else if out_path.exists() {
                eprintln!(
                    "(no pid file {}: the server is stopped or failed to start; see {})",
                    pid_file.display(),
                    out_path.display()
                );
            } else {
                eprintln!(
                    "(no pid file {}: no server was started with this config)",
                    pid_file.display()
                );
            }
            return Ok(1);
        }
    };
    match ask(&host, cfg.client_port, "srvr") {
        Ok(text) => {
            if let Some(mode) = text.lines().find(|l| l.starts_with("Mode: ")) {
                println!("{mode}");
                return Ok(0);
            }
            if text == crate::fourlw::NOT_SERVING {
                let voters: Vec<String> = cfg
                    .core
                    .members
                    .iter()
                    .filter(|(_, t)| **t == ensemble_core::LearnerType::Participant)
                    .map(|(id, _)| format!("server.{id}"))
                    .collect();
                if voters.len() <= 1 {
                    // its own quorum: not serving only while it recovers and establishes itself
                    eprintln!(
                        "Not serving yet: {server} is running and establishing \
                         itself as its own quorum (a tick or two after start); ask again."
                    );
                    return Ok(1);
                }
                eprintln!("Not serving: {server} is running and electing a leader.");
                eprintln!(
                    "It serves once {} of the {} voters ({}) agree on one: if this lasts, the \
                     others are not running or not reachable on their election ports (no quorum).",
                    voters.len() / 2 + 1,
                    voters.len(),
                    voters.join(", ")
                );
                return Ok(1);
            }
            if text == crate::fourlw::not_whitelisted("srvr") {
                eprintln!(
                    "{} is running, but srvr is not in its \
                     4lw.commands.whitelist, so its mode cannot be asked.",
                    capitalized(&server)
                );
                return Ok(1);
            }
            eprintln!(
                "Error contacting service: {host}:{} answered without a mode.",
                cfg.client_port
            );
            if !text.trim().is_empty() {
                eprintln!("(it answered: {})", text.trim());
            }
            Ok(1)
        }
        Err(e) => {
            eprintln!(
                "Error contacting service: {server} is running but {host}:{} \
                 does not answer ({e}).",
                cfg.client_port
            );
            eprintln!("(see {} for what it is doing)", out_path.display());
            Ok(1)
        }
    }
}

fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}
