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
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
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
    let f = OpenOptions::new().read(true).write(true).open(path).ok()?;
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
    std::fs::create_dir_all(&cfg.data_dir)?;
    let out_path = cfg.data_dir.join("zookeeper.out");
    let out = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&out_path)?;
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
    println!("Stopping ensemble ... STOPPED");
    Ok(0)
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

/// `ensemble status CONFIG`: the `Mode:` line of `srvr`, as zkServer.sh prints it.
pub fn status(config_path: &Path, cfg: &NodeConfig) -> anyhow::Result<i32> {
    println!("Using config: {}", config_path.display());
    let host = cfg.client_connect_host();
    println!(
        "Client port found: {}. Client address: {}. Client SSL: false.",
        cfg.client_port, host
    );
    match ask(&host, cfg.client_port, "srvr") {
        Ok(text) => {
            if let Some(mode) = text.lines().find(|l| l.starts_with("Mode: ")) {
                println!("{mode}");
                return Ok(0);
            }
            eprintln!("Error contacting service. It is probably not running.");
            if !text.trim().is_empty() {
                eprintln!("(it answered: {})", text.trim());
            }
            Ok(1)
        }
        Err(e) => {
            eprintln!("Error contacting service. It is probably not running.");
            eprintln!("({host}:{}: {e})", cfg.client_port);
            Ok(1)
        }
    }
}
