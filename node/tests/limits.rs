//! Client connection limits on a real server: `maxCnxns` refuses a connection past the
//! server's total, `maxClientCnxns` one past an IP's, and the connection throttle
//! (`-Dzookeeper.connection_throttle_tokens`) closes a ConnectRequest once its bucket is
//! empty; the connections already in keep working.

use ensemble_client::{Client, ConnectOptions};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_ensemble");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

struct Node {
    dir: PathBuf,
    port: u16,
    child: Child,
}

impl Node {
    fn start(tag: &str, extra: &str, jvmflags: &str) -> Node {
        let dir = std::env::temp_dir().join(format!("ens-limits-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let port = free_port();
        let cfg = format!(
            "tickTime=500\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\n\
             preAllocSize=1024\nforceSync=no\n{extra}",
            dir.join("data").display()
        );
        let path = dir.join("zoo.cfg");
        std::fs::write(&path, cfg).expect("zoo.cfg");
        let log = std::fs::File::create(dir.join("node.log")).expect("log");
        let child = Command::new(BIN)
            .arg("run")
            .arg(&path)
            .env_remove("JVMFLAGS")
            .env_remove("ZOOCFGDIR")
            .env("SERVER_JVMFLAGS", jvmflags)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn ensemble");
        let node = Node { dir, port, child };
        node.wait_up();
        node
    }

    fn wait_up(&self) {
        let t0 = Instant::now();
        // a 4lw connection is a connection too: it comes and goes before the test's own
        while !ensemble_node::daemon::ask("127.0.0.1", self.port, "srvr")
            .is_ok_and(|s| s.contains("Mode: standalone"))
        {
            assert!(t0.elapsed() < Duration::from_secs(30), "{}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(100));
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("node.log")).unwrap_or_default()
    }

    /// A session, or the reason there is none within two seconds.
    async fn connect(&self) -> Result<Client, String> {
        let mut o =
            ConnectOptions::new(&format!("127.0.0.1:{}", self.port), Duration::from_secs(10));
        o.connect_timeout = Some(Duration::from_secs(2));
        Client::connect_with(o).await.map_err(|e| e.to_string())
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_cnxns_refuses_past_the_total() {
    let node = Node::start("max", "maxCnxns=2\nmaxClientCnxns=0\n", "");
    let a = node.connect().await.expect("first");
    let b = node.connect().await.expect("second");
    assert!(
        node.connect().await.is_err(),
        "a third connection past maxCnxns=2"
    );
    assert!(
        node.log().contains("Too many connections max allowed is 2"),
        "{}",
        node.log()
    );
    a.create(
        "/x",
        b"",
        ensemble_proto::proto::Acl::open_unsafe(),
        ensemble_proto::proto::CreateMode::Persistent,
    )
    .await
    .expect("the ones in still work");
    b.close().await.expect("close");
    tokio::time::sleep(Duration::from_millis(300)).await;
    node.connect().await.expect("room again once one left");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_client_cnxns_refuses_past_an_ip() {
    let node = Node::start("perip", "maxClientCnxns=1\n", "");
    let _a = node.connect().await.expect("first");
    assert!(node.connect().await.is_err(), "a second from 127.0.0.1");
    assert!(
        node.log()
            .contains("Too many connections from /127.0.0.1 - max is 1"),
        "{}",
        node.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_throttle_closes_past_its_tokens() {
    let node = Node::start(
        "throttle",
        "",
        "-Dzookeeper.connection_throttle_tokens=2 -Dzookeeper.connection_throttle_fill_time=3600000",
    );
    let a = node.connect().await.expect("first token");
    let _b = node.connect().await.expect("second token");
    assert!(node.connect().await.is_err(), "no token left");
    assert!(
        node.log().contains("connection throttled"),
        "{}",
        node.log()
    );
    a.get_data("/zookeeper", false)
        .await
        .expect("the ones in still work");
}
