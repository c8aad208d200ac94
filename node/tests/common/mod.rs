//! Shared by the client and CLI tests: a real Apache ZooKeeper 3.8 standalone server (from the
//! Debian package `zookeeper`) started once per test binary, and a TCP proxy that can cut
//! connections. Tests that need the server skip, with a note, when it is not installed.
//! `ENSEMBLE_TEST_SERVER=host:port` points them at a server that is already running instead.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

pub const ZK_JAR: &str = "/usr/share/java/zookeeper.jar";
pub const ZKCLI: &str = "/usr/share/zookeeper/bin/zkCli.sh";

pub struct RealZk {
    /// `127.0.0.1:port`
    pub addr: String,
    pub dir: PathBuf,
    /// The wrapper shell; when this process exits its stdin closes and it kills the server.
    _guard: Option<Mutex<Child>>,
}

static ZK: OnceLock<Option<RealZk>> = OnceLock::new();

/// The shared server, or None (after printing why) when ZooKeeper is not installed.
pub fn real_zk() -> Option<&'static RealZk> {
    ZK.get_or_init(start).as_ref()
}

pub fn skip(test: &str) {
    eprintln!(
        "NOTE: skipping {test}: Apache ZooKeeper is not installed ({ZK_JAR}, java); \
         scripts/install-test-deps.sh installs it"
    );
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("an ephemeral port")
}

fn start() -> Option<RealZk> {
    if std::env::var_os("ENSEMBLE_SKIP_REAL_ZK").is_some() {
        return None;
    }
    // run the same tests against a server that is already up (e.g. Ensemble itself)
    if let Ok(addr) = std::env::var("ENSEMBLE_TEST_SERVER") {
        return Some(RealZk {
            addr,
            dir: std::env::temp_dir(),
            _guard: None,
        });
    }
    if !Path::new(ZK_JAR).exists() || Command::new("java").arg("-version").output().is_err() {
        return None;
    }
    let port = free_port();
    let dir = std::env::temp_dir().join(format!("ensemble-realzk-{}-{port}", std::process::id()));
    std::fs::create_dir_all(dir.join("data")).expect("temp dir");
    let cfg = format!(
        "tickTime=500\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\n\
         extendedTypesEnabled=true\n4lw.commands.whitelist=*\nadmin.enableServer=false\n\
         maxClientCnxns=0\nmaxSessionTimeout=60000\n",
        dir.join("data").display()
    );
    std::fs::write(dir.join("zoo.cfg"), cfg).expect("zoo.cfg");
    let log = std::fs::File::create(dir.join("server.log")).expect("log file");
    // `read` returns when our end of the pipe closes (this process exited, whatever way),
    // and the wrapper then kills the server it started, by its pid
    let script = format!(
        "java -Xmx256m -cp {ZK_JAR} org.apache.zookeeper.server.ZooKeeperServerMain {} & \
         pid=$!; read _; kill $pid",
        dir.join("zoo.cfg").display()
    );
    let child = Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .ok()?;
    let addr = format!("127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        // ruok answers before the server takes sessions; srvr shows a Mode only once it does
        if four_letter(&addr, "srvr").is_some_and(|s| s.contains("Mode:")) {
            return Some(RealZk {
                addr,
                dir,
                _guard: Some(Mutex::new(child)),
            });
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!(
        "NOTE: the real ZooKeeper did not start; see {}",
        dir.join("server.log").display()
    );
    None
}

pub fn four_letter(addr: &str, word: &str) -> Option<String> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(word.as_bytes()).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

static UNIQUE: AtomicU64 = AtomicU64::new(0);

/// A fresh top-level path for one test, so tests share the server without colliding.
pub fn unique(name: &str) -> String {
    let n = UNIQUE.fetch_add(1, Ordering::Relaxed);
    format!("/t-{name}-{}-{n}", std::process::id())
}

/// A TCP proxy in front of a server: `cut()` drops every proxied connection, `block(true)`
/// refuses new ones (the client sees a dead server), `block(false)` lets them through again.
pub struct Proxy {
    pub addr: String,
    state: Arc<Mutex<ProxyState>>,
}

#[derive(Default)]
struct ProxyState {
    blocked: bool,
    conns: Vec<TcpStream>,
}

impl Proxy {
    pub fn start(target: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let state = Arc::new(Mutex::new(ProxyState::default()));
        let st = state.clone();
        let target = target.to_string();
        std::thread::spawn(move || {
            for inbound in listener.incoming() {
                let Ok(inbound) = inbound else { continue };
                let mut s = st.lock().expect("proxy lock");
                if s.blocked {
                    drop(inbound);
                    continue;
                }
                let Ok(outbound) = TcpStream::connect(&target) else {
                    continue;
                };
                for (from, to) in [(&inbound, &outbound), (&outbound, &inbound)] {
                    let (Ok(mut from), Ok(mut to)) = (from.try_clone(), to.try_clone()) else {
                        continue;
                    };
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                }
                s.conns.push(inbound);
                s.conns.push(outbound);
            }
        });
        Proxy { addr, state }
    }

    pub fn cut(&self) {
        let mut s = self.state.lock().expect("proxy lock");
        for c in s.conns.drain(..) {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
    }

    pub fn block(&self, on: bool) {
        self.state.lock().expect("proxy lock").blocked = on;
    }
}
