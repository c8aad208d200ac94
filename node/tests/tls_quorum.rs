//! Quorum TLS (`sslQuorum=true` with `ssl.quorum.*`): a 3-voter ensemble whose quorum and
//! election ports speak TLS only survives a leader kill; the election port completes a
//! verified handshake with the CA, gives plaintext no answer, and drops a member-signed
//! certificate that names another host (`ssl.quorum.hostnameVerification`). With
//! `portUnification=true` servers that dial in plaintext and servers that dial with TLS form
//! one ensemble (the rolling switch).

mod tls_kit;

use ensemble_client::Client;
use ensemble_proto::proto::CreateMode;
use std::path::Path;
use std::time::{Duration, Instant};
use tls_kit::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Member {
    id: u64,
    client: u16,
    quorum: u16,
    election: u16,
}

fn members() -> Vec<Member> {
    (1..=3)
        .map(|id| Member {
            id,
            client: free_port(),
            quorum: free_port(),
            election: free_port(),
        })
        .collect()
}

/// Start member `m` with `tls` lines (stores made per member, all signed by `ca`).
fn start(dir: &Path, ms: &[Member], m: &Member, ca: &Ca, tls: &str, store: Store) -> Node {
    let servers: String = ms
        .iter()
        .map(|o| format!("server.{}=127.0.0.1:{}:{}\n", o.id, o.quorum, o.election))
        .collect();
    let leaf = ca.leaf(
        &format!("server{}", m.id),
        None,
        &["localhost", "127.0.0.1"],
    );
    let (key, trust) = stores(dir, &format!("s{}", m.id), &leaf, store);
    let data = dir.join(format!("data-s{}", m.id));
    std::fs::create_dir_all(&data).expect("data");
    std::fs::write(data.join("myid"), m.id.to_string()).expect("myid");
    let cfg = format!("{servers}{tls}{}", ssl_lines("ssl.quorum.", &key, &trust));
    Node::spawn(dir, &format!("s{}", m.id), &cfg, m.client)
}

fn leader_of(nodes: &[Option<Node>]) -> usize {
    let t0 = Instant::now();
    loop {
        let modes: Vec<String> = nodes
            .iter()
            .map(|n| n.as_ref().map(|n| n.srvr()).unwrap_or_default())
            .collect();
        let leaders: Vec<usize> = (0..nodes.len())
            .filter(|i| modes[*i].contains("Mode: leader"))
            .collect();
        let followers = modes
            .iter()
            .filter(|m| m.contains("Mode: follower"))
            .count();
        let alive = nodes.iter().filter(|n| n.is_some()).count();
        if leaders.len() == 1 && followers + 1 == alive {
            return leaders[0];
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "no leader: {modes:?}\n{}",
            nodes
                .iter()
                .flatten()
                .map(|n| n.log())
                .collect::<Vec<_>>()
                .join("\n----\n")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

async fn write_and_read(port: u16, path: &str) {
    let c = Client::connect(&format!("127.0.0.1:{port}"), Duration::from_secs(10))
        .await
        .expect("connect");
    c.create(path, b"v", open_acl(), CreateMode::Persistent)
        .await
        .expect("create");
    let (data, _) = c.get_data(path, false).await.expect("read");
    assert_eq!(data, b"v");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssl_quorum_survives_a_leader_kill() {
    let dir = tmp("quorum");
    let ca = Ca::new("Quorum CA");
    let ms = members();
    let store = if have_store_tools() {
        Store::Jks
    } else {
        Store::Pem
    };
    let mut nodes: Vec<Option<Node>> = ms
        .iter()
        .map(|m| Some(start(&dir, &ms, m, &ca, "sslQuorum=true\n", store)))
        .collect();
    let leader = leader_of(&nodes);
    write_and_read(ms[(leader + 1) % 3].client, "/before").await;

    // The election port: a verified handshake with the CA and a member's certificate ...
    let other = (leader + 1) % 3;
    let member = ca.leaf("probe", None, &["127.0.0.1"]);
    let config = client_tls(&ca.pem, Some(&member));
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", ms[other].election))
        .await
        .expect("tcp");
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").expect("name");
    tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .expect("a verified TLS handshake on the election port");
    // ... no answer to plaintext ...
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", ms[other].election))
        .await
        .expect("tcp");
    s.write_all(b"ENSP\x00\x03\x00\x00\x00\x00\x00\x00\x00\x00\x00\x09")
        .await
        .expect("write");
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(8), s.read_to_end(&mut buf)).await;
    assert!(
        buf.is_empty() || buf[0] == 0x15,
        "plaintext answer: {buf:?}"
    );
    // ... and a certificate the CA signed for another host is dropped after its handshake.
    let elsewhere = ca.leaf("elsewhere", None, &["elsewhere.example"]);
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", ms[other].quorum))
        .await
        .expect("tcp");
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").expect("name");
    if let Ok(mut tls) = tokio_rustls::TlsConnector::from(client_tls(&ca.pem, Some(&elsewhere)))
        .connect(name, tcp)
        .await
    {
        let mut buf = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(8), tls.read_to_end(&mut buf)).await;
        assert!(
            buf.is_empty(),
            "answered a peer with another host's certificate"
        );
    }
    let t0 = Instant::now();
    while !nodes[other]
        .as_ref()
        .is_some_and(|n| n.log().contains("hostnameVerification"))
    {
        assert!(t0.elapsed() < Duration::from_secs(10), "no log line");
        std::thread::sleep(Duration::from_millis(50));
    }

    // Kill the leader: the other two elect one over TLS and go on.
    if let Some(mut n) = nodes[leader].take() {
        n.kill();
    }
    let next = leader_of(&nodes);
    assert_ne!(next, leader);
    write_and_read(ms[next].client, "/after").await;
    let survivor = (0..3)
        .find(|i| *i != leader && *i != next)
        .expect("a follower");
    let c = Client::connect(
        &format!("127.0.0.1:{}", ms[survivor].client),
        Duration::from_secs(10),
    )
    .await
    .expect("connect");
    c.sync("/").await.expect("sync");
    assert!(c.exists("/before", false).await.expect("exists").is_some());
    assert!(c.exists("/after", false).await.expect("exists").is_some());
}

/// Mid-way through a rolling switch to TLS: one server dials with TLS, two still dial in
/// plaintext, all accept both (portUnification=true). They form one ensemble.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn port_unification_lets_tls_and_plaintext_servers_form_one_ensemble() {
    let dir = tmp("rolling");
    let ca = Ca::new("Rolling CA");
    let ms = members();
    let modes = [
        "sslQuorum=true\nportUnification=true\n",
        "portUnification=true\n",
        "portUnification=true\n",
    ];
    let nodes: Vec<Option<Node>> = ms
        .iter()
        .zip(modes)
        .map(|(m, tls)| Some(start(&dir, &ms, m, &ca, tls, Store::Pem)))
        .collect();
    leader_of(&nodes);
    for m in &ms {
        write_and_read(m.client, &format!("/from-{}", m.id)).await;
    }
}
