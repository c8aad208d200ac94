//! `/metrics` scraped by a real Prometheus (Debian's `prometheus`, started here with a generated
//! config on free ports and a short scrape interval) from a real three-server ensemble, and
//! queried through its HTTP API: `up` is 1 for each server, and `znode_count` has one value per
//! server, the count the servers' own `monitor` reports.

mod ops;

use ops::{Cluster, free_ports, get_json, http};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PROVIDER: &str = "metricsProvider.className=\
     org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider\n\
     metricsProvider.httpHost=127.0.0.1\nmetricsProvider.httpPort=METRICS_PORT\n";

struct Prometheus {
    child: Child,
    port: u16,
    log: std::path::PathBuf,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_prometheus(c: &Cluster) -> Prometheus {
    let port = free_ports(1)[0];
    let dir = c.dir.join("prometheus");
    std::fs::create_dir_all(&dir).unwrap();
    let targets: Vec<String> = c
        .nodes
        .iter()
        .map(|n| format!("'127.0.0.1:{}'", n.metrics))
        .collect();
    let cfg = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
         scrape_configs:\n  - job_name: ensemble\n    static_configs:\n      - targets: [{}]\n",
        targets.join(", ")
    );
    std::fs::write(dir.join("prometheus.yml"), cfg).unwrap();
    let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
    let child = Command::new("prometheus")
        .arg(format!(
            "--config.file={}",
            dir.join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("prometheus (scripts/install-test-deps.sh installs Debian's package)");
    Prometheus {
        child,
        port,
        log: dir.join("prometheus.log"),
    }
}

/// An instant query: instance -> value.
fn query(p: &Prometheus, q: &str) -> Vec<(String, f64)> {
    let Some(j) = get_json(p.port, &format!("/api/v1/query?query={q}")) else {
        return Vec::new();
    };
    j["data"]["result"]
        .as_array()
        .map(|rs| {
            rs.iter()
                .filter_map(|r| {
                    let inst = r["metric"]["instance"].as_str()?.to_string();
                    let v = r["value"][1].as_str()?.parse().ok()?;
                    Some((inst, v))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn eventually<T>(what: &str, p: &Prometheus, mut f: impl FnMut() -> Option<T>) -> T {
    let t0 = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        if t0.elapsed() > Duration::from_secs(60) {
            let log = std::fs::read_to_string(&p.log).unwrap_or_default();
            panic!("{what}: not seen in 60 s; prometheus's log:\n{log}");
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_scrapes_the_ensemble() {
    let c = Cluster::start("prom", 3, |_| PROVIDER.to_string());
    let leader = c.wait_serving(Duration::from_secs(30));

    // Our own scrape first: ZooKeeper's names and types.
    let (status, head, body) = http(c.node(leader).metrics, "GET", "/metrics", b"").unwrap();
    assert_eq!(status, 200);
    assert!(head.contains("text/plain; version=0.0.4"), "{head}");
    let text = String::from_utf8(body).unwrap();
    for line in [
        "# TYPE znode_count gauge",
        "# TYPE watch_count gauge",
        "# TYPE ephemerals_count gauge",
        "# TYPE approximate_data_size gauge",
        "# TYPE outstanding_requests gauge",
        "# TYPE num_alive_connections gauge",
        "# TYPE synced_followers gauge",
        "# TYPE synced_observers gauge",
        "# TYPE learners gauge",
        "# TYPE quorum_size gauge",
        "# TYPE pending_syncs gauge",
        "# TYPE last_client_response_size gauge",
        "# TYPE packets_received gauge",
        "# TYPE packets_sent gauge",
        "# TYPE looking_count counter",
        "# TYPE readlatency summary",
        "# TYPE updatelatency summary",
        "# TYPE fsynctime summary",
        "# TYPE ensemble_fsync_seconds histogram",
        "# TYPE ensemble_commit_seconds histogram",
        "# TYPE ensemble_sync_round_seconds histogram",
        "# TYPE ensemble_proposal_bytes histogram",
        "# TYPE ensemble_snapshot_parts histogram",
        "synced_followers 2",
        "quorum_size 3",
        "readlatency{quantile=\"0.99\"}",
        "fsynctime{quantile=\"0.5\"}",
    ] {
        assert!(text.contains(line), "{line} not in /metrics:\n{text}");
    }

    // Some writes, so the counts move.
    let hosts: Vec<String> = c
        .nodes
        .iter()
        .map(|n| format!("127.0.0.1:{}", n.client))
        .collect();
    let client = ensemble_client::Client::connect(&hosts.join(","), Duration::from_secs(10))
        .await
        .expect("connect");
    for i in 0..5 {
        client
            .create(
                &format!("/m{i}"),
                b"v",
                ensemble_proto::proto::Acl::open_unsafe(),
                ensemble_proto::proto::CreateMode::Persistent,
            )
            .await
            .expect("create");
    }
    client.sync("/").await.expect("sync");

    let prom = tokio::task::spawn_blocking(move || {
        let p = start_prometheus(&c);
        let ups = eventually("up == 1 for each server", &p, || {
            let up = query(&p, "up");
            (up.len() == 3 && up.iter().all(|(_, v)| *v == 1.0)).then_some(up)
        });
        assert_eq!(ups.len(), 3);
        // Each server's own count, as its monitor command reports it.
        let expected: Vec<f64> = c
            .nodes
            .iter()
            .map(|n| {
                get_json(n.admin, "/commands/monitor").unwrap()["znode_count"]
                    .as_f64()
                    .unwrap()
            })
            .collect();
        assert!(
            expected.iter().all(|v| *v == expected[0] && *v >= 7.0),
            "{expected:?}"
        );
        let counts = eventually("znode_count from each server", &p, || {
            let z = query(&p, "znode_count");
            (z.len() == 3 && z.iter().all(|(_, v)| *v == expected[0])).then_some(z)
        });
        let instances: Vec<&String> = counts.iter().map(|(i, _)| i).collect();
        for n in &c.nodes {
            assert!(
                instances.contains(&&format!("127.0.0.1:{}", n.metrics)),
                "{instances:?}"
            );
        }
        // A summary with its quantiles, and a histogram of our own, through the API.
        eventually("the update latency's quantiles", &p, || {
            let q = query(&p, "updatelatency%7Bquantile%3D%220.99%22%7D");
            (q.len() == 3).then_some(())
        });
        // Each write was fsynced by a quorum: at least 5 fsyncs over the servers.
        eventually("fsyncs counted", &p, || {
            let fsyncs = query(&p, "ensemble_fsync_seconds_count");
            (fsyncs.iter().map(|(_, v)| v).sum::<f64>() >= 5.0).then_some(())
        });
        (c, p)
    })
    .await
    .unwrap();
    drop(client);
    drop(prom);
}

/// ZooKeeper does not start when its Prometheus provider cannot listen; neither does Ensemble,
/// and it says which setting and address.
#[test]
fn a_taken_metrics_port_stops_the_start() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = std::env::temp_dir().join(format!("ens-ops-taken-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let client = free_ports(1)[0];
    let cfg = dir.join("zoo.cfg");
    std::fs::write(
        &cfg,
        format!(
            "tickTime=200\ndataDir={}\nclientPort={client}\nclientPortAddress=127.0.0.1\nadmin.enableServer=false\n{}",
            dir.display(),
            PROVIDER.replace("METRICS_PORT", &port.to_string())
        ),
    )
    .unwrap();
    let out = Command::new(ops::BIN)
        .arg("run")
        .arg(&cfg)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("metricsProvider.httpPort") && err.contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );
    drop(taken);
    let _ = std::fs::remove_dir_all(&dir);
}
