//! Three-node ensembles of either system on loopback, in a temporary directory: generated zoo.cfg
//! files, start, kill and restart one node, `srvr`, and teardown that never leaves a server
//! behind — on return, on error, on Ctrl-C (the caller drops the cluster) and even when the
//! benchmark itself is killed (a sentinel shell holding a pipe from us kills what is listed).

use crate::procfs;
use anyhow::{Context, Result, anyhow, bail};
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum System {
    Ensemble,
    ZooKeeper,
}

impl System {
    pub fn name(self) -> &'static str {
        match self {
            System::Ensemble => "Ensemble",
            System::ZooKeeper => "ZooKeeper",
        }
    }
}

/// How to launch each system's server.
#[derive(Clone, Debug)]
pub struct Launch {
    /// `target/release/ensemble`
    pub ensemble_bin: PathBuf,
    pub java: PathBuf,
    pub zk_classpath: String,
    /// -Xmx for each ZooKeeper JVM, MiB (zkEnv.sh's ZK_SERVER_HEAP default is 1000).
    pub zk_heap_mb: u32,
    /// Run each Ensemble node as `WRAP... ensemble run CONFIG` (a profiler) instead of
    /// `ensemble start CONFIG`.
    pub ensemble_wrap: Vec<String>,
    /// Run every server as a plain child in the benchmark's own session (Ensemble as `ensemble
    /// run`) instead of each in a session of its own (Ensemble's `ensemble start` daemon, and
    /// ZooKeeper's JVM after setsid, to match). With the kernel's autogroup scheduling the two
    /// are scheduled differently; both systems always get the same treatment.
    pub same_session: bool,
    /// Serve clients over TLS too: a directory of the stores `scripts/bench.sh tls` makes
    /// (interop/harness/tls.sh's: keystore.jks, truststore.jks, ca_cert.pem, client_*.pem).
    pub tls: Option<PathBuf>,
    /// ZooKeeper on NettyServerCnxnFactory over plaintext as well (TLS always takes it), so a
    /// plaintext-against-TLS comparison changes one thing only.
    pub zk_netty: bool,
}

/// The password of the TLS stores (interop/harness/tls.sh's TLS_PASSWORD).
pub const TLS_PASSWORD: &str = "apassword";

impl Launch {
    /// Find both systems, or say clearly what is missing.
    pub fn discover(
        ensemble_bin: Option<PathBuf>,
        zk_classpath: Option<String>,
        zk_heap_mb: u32,
        need_ensemble: bool,
        need_zk: bool,
    ) -> Result<Launch> {
        let ensemble_bin = match ensemble_bin {
            Some(p) => p,
            None => {
                let exe = std::env::current_exe().context("locating ensemble-bench")?;
                exe.parent().map(|d| d.join("ensemble")).unwrap_or_default()
            }
        };
        if need_ensemble && !ensemble_bin.is_file() {
            bail!(
                "the Ensemble server binary {} is missing: build it with \
                 `cargo build --release -p ensemble-node` (or pass --ensemble-bin PATH)",
                ensemble_bin.display()
            );
        }
        let java = std::env::var_os("JAVA_HOME")
            .map(|h| PathBuf::from(h).join("bin/java"))
            .filter(|p| p.is_file())
            .unwrap_or_else(|| PathBuf::from("java"));
        let zk_classpath = match zk_classpath {
            Some(cp) => cp,
            None => {
                // zookeeper.jar's manifest Class-Path names its dependencies in /usr/share/java;
                // add the slf4j binding and log4j the Debian package logs through.
                let mut cp = vec!["/usr/share/java/zookeeper.jar".to_string()];
                // netty-codec and -resolver: the manifest leaves them out, and TLS needs
                // NettyServerCnxnFactory
                for extra in [
                    "slf4j-log4j12.jar",
                    "log4j-1.2.jar",
                    "netty-codec.jar",
                    "netty-resolver.jar",
                ] {
                    let p = Path::new("/usr/share/java").join(extra);
                    if p.exists() {
                        cp.push(p.display().to_string());
                    }
                }
                cp.join(":")
            }
        };
        if need_zk {
            let first = zk_classpath.split(':').next().unwrap_or_default();
            if !Path::new(first).exists() {
                bail!(
                    "Apache ZooKeeper 3.8 is not installed ({first} is missing): \
                     `apt-get install zookeeper` (scripts/install-test-deps.sh does it), \
                     or pass --zk-classpath"
                );
            }
            let ok = Command::new(&java)
                .arg("-version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if !ok {
                bail!(
                    "no working `java` ({}); ZooKeeper needs a JRE (the Debian package \
                     `zookeeper` pulls one in)",
                    java.display()
                );
            }
        }
        Ok(Launch {
            ensemble_bin,
            java,
            zk_classpath,
            zk_heap_mb,
            ensemble_wrap: Vec::new(),
            same_session: false,
            tls: None,
            zk_netty: false,
        })
    }
}

/// Kills, by pid, every server listed in a file when the benchmark's end of a pipe closes —
/// however the benchmark ends. Only processes whose command line names our directory.
pub struct Sentinel {
    file: PathBuf,
    pids: Mutex<BTreeSet<i32>>,
    _stdin: Mutex<ChildStdin>,
    child: Mutex<Child>,
}

impl Sentinel {
    pub fn start(dir: &Path) -> Result<Arc<Sentinel>> {
        let file = dir.join("pids");
        std::fs::write(&file, "")?;
        let script = format!(
            "read _ ; for p in $(cat '{file}'); do \
               if grep -qa '{dir}' /proc/$p/cmdline 2>/dev/null; then kill -9 $p; fi; \
             done",
            file = file.display(),
            dir = dir.display()
        );
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // its own process group: a Ctrl-C at the terminal must not kill it first
        cmd.process_group(0);
        let mut child = cmd.spawn().context("starting the cleanup sentinel (sh)")?;
        let stdin = child
            .stdin
            .take()
            .ok_or_else(|| anyhow!("sentinel stdin"))?;
        Ok(Arc::new(Sentinel {
            file,
            pids: Mutex::new(BTreeSet::new()),
            _stdin: Mutex::new(stdin),
            child: Mutex::new(child),
        }))
    }

    fn write(&self, pids: &BTreeSet<i32>) {
        let text: String = pids.iter().map(|p| format!("{p}\n")).collect();
        let _ = std::fs::write(&self.file, text);
    }

    pub fn add(&self, pid: i32) {
        let mut p = self.pids.lock().unwrap_or_else(|e| e.into_inner());
        p.insert(pid);
        self.write(&p);
    }

    pub fn remove(&self, pid: i32) {
        let mut p = self.pids.lock().unwrap_or_else(|e| e.into_inner());
        p.remove(&pid);
        self.write(&p);
    }
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        // Everything was stopped in order already; let the sentinel go without work.
        self.write(&BTreeSet::new());
        let mut c = self.child.lock().unwrap_or_else(|e| e.into_inner());
        let _ = c.kill();
        let _ = c.wait();
    }
}

pub struct Node {
    pub id: u32,
    pub dir: PathBuf,
    pub cfg: PathBuf,
    pub client_port: u16,
    /// secureClientPort, when the cluster serves TLS
    pub secure_port: Option<u16>,
    pub pid: Option<i32>,
    /// ZooKeeper's JVM is our child; Ensemble daemonises itself.
    child: Option<Child>,
}

pub struct Cluster {
    pub system: System,
    pub dir: PathBuf,
    pub nodes: Vec<Node>,
    launch: Launch,
    sentinel: Arc<Sentinel>,
}

/// Ports: client `base+i`, quorum `base+100+i`, election `base+200+i`, secure client
/// `base+300+i`, for i in 1..=3.
pub fn ports_free(base: u16) -> Result<()> {
    for off in [0u16, 100, 200, 300] {
        for i in 1..=3u16 {
            let port = base + off + i;
            if TcpListener::bind(("127.0.0.1", port)).is_err() {
                bail!(
                    "port {port} on 127.0.0.1 is in use (another server?); \
                     choose other ports with --port-base"
                );
            }
        }
    }
    Ok(())
}

impl Cluster {
    /// Writes the configs and starts all three nodes; returns once each answers `srvr` with a
    /// Mode (a leader is elected and the followers synced).
    pub fn start(
        system: System,
        root: &Path,
        port_base: u16,
        launch: &Launch,
        sentinel: Arc<Sentinel>,
        timeout: Duration,
    ) -> Result<Cluster> {
        ports_free(port_base)?;
        let dir = root.join(match system {
            System::Ensemble => "ensemble",
            System::ZooKeeper => "zookeeper",
        });
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        let servers: String = (1..=3u16)
            .map(|i| {
                format!(
                    "server.{i}=127.0.0.1:{}:{}\n",
                    port_base + 100 + i,
                    port_base + 200 + i
                )
            })
            .collect();
        let mut nodes = Vec::new();
        for i in 1..=3u16 {
            let ndir = dir.join(format!("node{i}"));
            let data = ndir.join("data");
            std::fs::create_dir_all(&data)?;
            std::fs::write(data.join("myid"), format!("{i}\n"))?;
            let client_port = port_base + i;
            // the same settings for both systems; ZooKeeper's defaults where not said
            let mut cfg = format!(
                "tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir={}\nclientPort={client_port}\n\
                 clientPortAddress=127.0.0.1\nmaxClientCnxns=0\nforceSync=yes\nsnapCount=100000\n\
                 autopurge.snapRetainCount=3\nautopurge.purgeInterval=0\n\
                 4lw.commands.whitelist=*\nadmin.enableServer=false\n{servers}",
                data.display()
            );
            let secure_port = launch.tls.as_ref().map(|_| port_base + 300 + i);
            if launch.tls.is_some() || launch.zk_netty {
                // ZooKeeper serves TLS only with netty; Ensemble ignores the key's value (it
                // has one network stack) and reports it at start
                cfg.push_str(
                    "serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory\n",
                );
            }
            if let (Some(tls), Some(port)) = (&launch.tls, secure_port) {
                // the same stores and settings for both
                cfg.push_str(&format!(
                    "secureClientPort={port}\nsecureClientPortAddress=127.0.0.1\n\
                     ssl.keyStore.location={ks}\nssl.keyStore.password={TLS_PASSWORD}\n\
                     ssl.trustStore.location={ts}\nssl.trustStore.password={TLS_PASSWORD}\n",
                    ks = tls.join("keystore.jks").display(),
                    ts = tls.join("truststore.jks").display(),
                ));
            }
            let cfg_path = ndir.join("zoo.cfg");
            std::fs::write(&cfg_path, cfg)?;
            if system == System::ZooKeeper {
                std::fs::write(
                    ndir.join("log4j.properties"),
                    "log4j.rootLogger=INFO, FILE\n\
                     log4j.appender.FILE=org.apache.log4j.FileAppender\n\
                     log4j.appender.FILE.File=${zookeeper.log.dir}/zookeeper.log\n\
                     log4j.appender.FILE.layout=org.apache.log4j.PatternLayout\n\
                     log4j.appender.FILE.layout.ConversionPattern=%d{ISO8601} - %-5p [%t] - %m%n\n",
                )?;
            }
            nodes.push(Node {
                id: i as u32,
                dir: ndir,
                cfg: cfg_path,
                client_port,
                secure_port,
                pid: None,
                child: None,
            });
        }
        let mut cluster = Cluster {
            system,
            dir,
            nodes,
            launch: launch.clone(),
            sentinel,
        };
        for i in 0..3 {
            cluster.start_node(i)?;
        }
        cluster.wait_serving(timeout)?;
        Ok(cluster)
    }

    /// Starts node `i` (0-based) and returns once its process exists (not once it serves).
    pub fn start_node(&mut self, i: usize) -> Result<()> {
        let launch = self.launch.clone();
        let node = &mut self.nodes[i];
        match self.system {
            System::Ensemble if launch.same_session || !launch.ensemble_wrap.is_empty() => {
                let log = std::fs::File::create(node.dir.join("zookeeper.out"))?;
                let mut argv: Vec<std::ffi::OsString> =
                    launch.ensemble_wrap.iter().map(Into::into).collect();
                argv.push(launch.ensemble_bin.clone().into());
                let mut cmd = Command::new(&argv[0]);
                cmd.args(&argv[1..])
                    .arg("run")
                    .arg(&node.cfg)
                    .stdin(Stdio::null())
                    .stdout(log.try_clone()?)
                    .stderr(log)
                    .process_group(0);
                let child = cmd
                    .spawn()
                    .with_context(|| format!("running {}", argv[0].to_string_lossy()))?;
                let pid = child.id() as i32;
                self.sentinel.add(pid);
                node.pid = Some(pid);
                node.child = Some(child);
            }
            System::Ensemble => {
                let log = std::fs::File::create(node.dir.join("start.out"))?;
                let mut child = Command::new(&launch.ensemble_bin)
                    .arg("start")
                    .arg(&node.cfg)
                    .stdin(Stdio::null())
                    .stdout(log.try_clone()?)
                    .stderr(log)
                    .spawn()
                    .with_context(|| format!("running {}", launch.ensemble_bin.display()))?;
                // `ensemble start` returns once the daemon listens (or failed)
                let t0 = Instant::now();
                let status = loop {
                    if let Some(s) = child.try_wait()? {
                        break s;
                    }
                    if t0.elapsed() > Duration::from_secs(120) {
                        let _ = child.kill();
                        let _ = child.wait();
                        bail!(
                            "`ensemble start {}` did not return in 120 s",
                            node.cfg.display()
                        );
                    }
                    std::thread::sleep(Duration::from_millis(5));
                };
                let pid_file = node.dir.join("data/zookeeper_server.pid");
                let pid: Option<i32> = std::fs::read_to_string(&pid_file)
                    .ok()
                    .and_then(|s| s.trim().parse().ok());
                if let Some(pid) = pid {
                    self.sentinel.add(pid);
                    node.pid = Some(pid);
                }
                if !status.success() || pid.is_none() {
                    bail!(
                        "`ensemble start {}` failed ({status}); see {} and {}",
                        node.cfg.display(),
                        node.dir.join("start.out").display(),
                        node.dir.join("data/zookeeper.out").display()
                    );
                }
            }
            System::ZooKeeper => {
                let log = std::fs::File::create(node.dir.join("zookeeper.out"))?;
                let mut cmd = Command::new(&launch.java);
                cmd.arg(format!("-Xmx{}m", launch.zk_heap_mb))
                    .arg(format!("-Dzookeeper.log.dir={}", node.dir.display()))
                    .arg(format!(
                        "-Dlog4j.configuration=file:{}",
                        node.dir.join("log4j.properties").display()
                    ))
                    .arg("-cp")
                    .arg(&launch.zk_classpath)
                    .arg("org.apache.zookeeper.server.quorum.QuorumPeerMain")
                    .arg(&node.cfg)
                    .stdin(Stdio::null())
                    .stdout(log.try_clone()?)
                    .stderr(log);
                let own_session = !launch.same_session;
                // SAFETY: setsid and prctl are async-signal-safe; the JVM dies with us whatever
                // happens, and lives in a session of its own as `ensemble start`'s daemon does.
                unsafe {
                    cmd.pre_exec(move || {
                        if own_session {
                            libc::setsid();
                        } else {
                            libc::setpgid(0, 0);
                        }
                        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                        Ok(())
                    });
                }
                let child = cmd
                    .spawn()
                    .with_context(|| format!("running {}", launch.java.display()))?;
                let pid = child.id() as i32;
                self.sentinel.add(pid);
                node.pid = Some(pid);
                node.child = Some(child);
            }
        }
        Ok(())
    }

    /// Kills node `i` with `sig` and waits until its process is gone.
    pub fn kill_node(&mut self, i: usize, sig: i32, wait: Duration) -> Result<()> {
        let node = &mut self.nodes[i];
        let Some(pid) = node.pid else { return Ok(()) };
        procfs::signal(pid, sig);
        let t0 = Instant::now();
        loop {
            let gone = match node.child.as_mut() {
                Some(c) => c.try_wait()?.is_some(),
                // the daemon is not our child: it is gone once it lets go of its pid file's lock
                // (its leader thread shows as a zombie while the others still exit)
                None => {
                    ensemble_node::daemon::running_pid(&node.dir.join("data/zookeeper_server.pid"))
                        .is_none()
                        && !procfs::alive(pid)
                }
            };
            if gone {
                break;
            }
            if t0.elapsed() > wait {
                if sig == libc::SIGKILL {
                    bail!("process {pid} survived SIGKILL for {wait:?}");
                }
                procfs::signal(pid, libc::SIGKILL);
                return self.kill_node(i, libc::SIGKILL, Duration::from_secs(10));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        node.child = None;
        node.pid = None;
        self.sentinel.remove(pid);
        Ok(())
    }

    /// Stops every node: SIGTERM (the orderly stop both systems' scripts use), SIGKILL after 15 s
    /// (60 s under a profiler, which writes its data on the way out).
    pub fn stop(&mut self) {
        let grace = if self.launch.ensemble_wrap.is_empty() {
            Duration::from_secs(15)
        } else {
            Duration::from_secs(60)
        };
        for i in 0..self.nodes.len() {
            if let Some(pid) = self.nodes[i].pid {
                procfs::signal(pid, libc::SIGTERM);
            }
        }
        for i in 0..self.nodes.len() {
            if let Err(e) = self.kill_node(i, libc::SIGTERM, grace) {
                eprintln!(
                    "warning: stopping {} node {}: {e:#}",
                    self.system.name(),
                    i + 1
                );
            }
        }
    }

    pub fn pids(&self) -> Vec<i32> {
        self.nodes.iter().filter_map(|n| n.pid).collect()
    }

    pub fn addr(&self, i: usize) -> String {
        format!("127.0.0.1:{}", self.nodes[i].client_port)
    }

    /// Where the benchmark's clients connect to node `i`: its secureClientPort when the
    /// cluster serves TLS, else its clientPort.
    pub fn client_addr(&self, i: usize) -> String {
        let n = &self.nodes[i];
        format!("127.0.0.1:{}", n.secure_port.unwrap_or(n.client_port))
    }

    /// `srvr`'s Mode line of node `i` (leader, follower, ...), if it serves.
    pub fn mode(&self, i: usize) -> Option<String> {
        let text = four_letter(&self.addr(i), "srvr", Duration::from_secs(2))?;
        text.lines()
            .find_map(|l| l.strip_prefix("Mode: "))
            .map(|m| m.trim().to_string())
    }

    /// Waits until every node reports a Mode, with exactly one leader; returns its index.
    pub fn wait_serving(&mut self, timeout: Duration) -> Result<usize> {
        let t0 = Instant::now();
        loop {
            for n in &mut self.nodes {
                if let Some(c) = n.child.as_mut()
                    && let Some(status) = c.try_wait()?
                {
                    bail!(
                        "{} node {} exited ({status}); see {}",
                        self.system.name(),
                        n.id,
                        n.dir.display()
                    );
                }
            }
            let modes: Vec<Option<String>> = (0..self.nodes.len()).map(|i| self.mode(i)).collect();
            let leaders: Vec<usize> = modes
                .iter()
                .enumerate()
                .filter(|(_, m)| m.as_deref() == Some("leader"))
                .map(|(i, _)| i)
                .collect();
            if modes.iter().all(|m| m.is_some()) && leaders.len() == 1 {
                return Ok(leaders[0]);
            }
            if t0.elapsed() > timeout {
                bail!(
                    "{} did not form a quorum in {timeout:?} (modes {modes:?}); logs under {}",
                    self.system.name(),
                    self.dir.display()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The index of a node reporting `follower`.
    pub fn a_follower(&self) -> Option<usize> {
        (0..self.nodes.len()).find(|i| self.mode(*i).as_deref() == Some("follower"))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Sends a four-letter word and reads the whole answer.
pub fn four_letter(addr: &str, word: &str, timeout: Duration) -> Option<String> {
    let sa: SocketAddr = addr.parse().ok()?;
    let mut s = TcpStream::connect_timeout(&sa, timeout).ok()?;
    s.set_read_timeout(Some(timeout)).ok()?;
    s.write_all(word.as_bytes()).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}
