//! TLS on the client port, configured as ZooKeeper 3.8 is: `secureClientPort` with
//! `ssl.keyStore.*` / `ssl.trustStore.*` in JKS, PKCS12 and PEM; bad clients refused one by
//! one while an established session goes on; a bad server-side store refusing to start;
//! `client.portUnification`; the stores reloaded when their files change. Certificates are
//! made by the test (rcgen; keytool and openssl for JKS and PKCS12).

mod tls_kit;

use ensemble_proto::proto::Response;
use std::time::{Duration, Instant};
use tls_kit::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn secure_node(
    dir: &std::path::Path,
    name: &str,
    extra: &str,
    store: Store,
) -> (Node, Leaf, u16, Ca) {
    let ca = Ca::new("Ensemble Test CA");
    let server = ca.leaf("localhost", None, &["localhost", "127.0.0.1"]);
    let (key, trust) = stores(dir, name, &server, store);
    let secure = free_port();
    let cfg = format!(
        "secureClientPort={secure}\nsecureClientPortAddress=127.0.0.1\n{}{extra}",
        ssl_lines("ssl.", &key, &trust)
    );
    let node = Node::spawn(dir, name, &cfg, free_port());
    node.wait_mode(&["standalone"]);
    let client = ca.leaf("client", Some("Ensemble"), &["client.example"]);
    (node, client, secure, ca)
}

/// Every store type ZooKeeper reads serves a session on secureClientPort; the plaintext port
/// goes on serving beside it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secure_client_port_with_jks_pkcs12_and_pem_stores() {
    let dir = tmp("stores");
    let kinds: &[Store] = if have_store_tools() {
        &[Store::Pem, Store::Pkcs12, Store::Jks]
    } else {
        &[Store::Pem]
    };
    for kind in kinds {
        let name = format!("{kind:?}").to_lowercase();
        let (node, client, secure, _) = secure_node(&dir, &name, "", *kind);
        let mut s = TlsSession::open(secure, client_tls(&client.ca, Some(&client)), "localhost")
            .await
            .unwrap_or_else(|e| panic!("{kind:?}: {e}\n{}", node.log()));
        let r = s.create("/over-tls", open_acl()).await.expect("create");
        assert!(matches!(r, Ok(Response::Create { .. })), "{kind:?}: {r:?}");
        assert!(
            node.srvr().contains("Mode: standalone"),
            "the plaintext port answers too"
        );
        let conf = ensemble_node::daemon::ask("127.0.0.1", node.client_port, "conf").expect("conf");
        assert!(
            conf.contains(&format!("secureClientPort={secure}")),
            "{conf}"
        );
        assert!(!conf.contains(PASSWORD) && !node.log().contains(PASSWORD));
    }
}

/// Clients without a certificate, with one from another CA, with an expired one, or speaking
/// plaintext to the TLS port: each refused with a log line saying why, and no plaintext
/// answer; a session opened before goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_clients_are_refused_and_others_unaffected() {
    let dir = tmp("bad-clients");
    let (node, client, secure, ca) = secure_node(&dir, "n", "", Store::Pem);
    let good = client_tls(&client.ca, Some(&client));
    let mut session = TlsSession::open(secure, good.clone(), "localhost")
        .await
        .expect("good client");

    let no_cert = TlsSession::open(secure, client_tls(&client.ca, None), "localhost").await;
    assert!(
        no_cert.is_err(),
        "a client without a certificate got a session"
    );

    let other = Ca::new("Some Other CA").leaf("intruder", None, &["intruder"]);
    let untrusted =
        TlsSession::open(secure, client_tls(&client.ca, Some(&other)), "localhost").await;
    assert!(
        untrusted.is_err(),
        "a certificate from an unknown CA got a session"
    );

    // The same CA name with another key: still unknown.
    let impostor = Ca::new("Ensemble Test CA").leaf("client", None, &["client"]);
    let forged =
        TlsSession::open(secure, client_tls(&client.ca, Some(&impostor)), "localhost").await;
    assert!(
        forged.is_err(),
        "a certificate from a look-alike CA got a session"
    );

    // Signed by the trusted CA, but long expired.
    let expired_leaf = ca.expired("old");
    let expired = TlsSession::open(
        secure,
        client_tls(&client.ca, Some(&expired_leaf)),
        "localhost",
    )
    .await;
    assert!(expired.is_err(), "an expired certificate got a session");

    // A client that does not trust the server's CA refuses the server (its own check).
    let wrong_ca = Ca::new("Unrelated");
    let distrust = TlsSession::open(
        secure,
        client_tls(&wrong_ca.pem, Some(&client)),
        "localhost",
    )
    .await;
    assert!(distrust.is_err());
    // Hostname mismatch, seen from a client that checks it.
    let mismatch = TlsSession::open(secure, good.clone(), "not-this-server.example").await;
    assert!(
        mismatch
            .as_ref()
            .is_err_and(|e| e.contains("not valid for name")),
        "{:?}",
        mismatch.as_ref().err()
    );

    // Plaintext on the TLS port: a ConnectRequest and a four-letter word get no ZooKeeper
    // answer (at most a TLS alert record, which starts with 0x15).
    for hello in [
        b"\x00\x00\x00\x2c\x00\x00\x00\x00".to_vec(),
        b"ruok".to_vec(),
    ] {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", secure))
            .await
            .expect("tcp");
        s.write_all(&hello).await.expect("write");
        let mut buf = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(8), s.read_to_end(&mut buf)).await;
        assert!(
            buf.is_empty() || buf[0] == 0x15,
            "plaintext answer on the TLS port: {buf:?}"
        );
        assert!(!String::from_utf8_lossy(&buf).contains("imok"));
    }

    // The session opened first is untouched.
    let r = session
        .create("/still-here", open_acl())
        .await
        .expect("create");
    assert!(matches!(r, Ok(Response::Create { .. })), "{r:?}");
    let log = node.log();
    assert!(log.contains("TLS handshake failed"), "{log}");
    assert!(
        log.contains("UnknownIssuer") || log.contains("unknown issuer"),
        "{log}"
    );
}

/// A server-side store that does not open refuses to start, naming the setting and the file
/// and never the password; so does a missing one.
#[test]
fn bad_server_store_refuses_to_start() {
    let dir = tmp("bad-store");
    let ca = Ca::new("CA");
    let server = ca.leaf("localhost", None, &["localhost"]);
    let kind = if have_store_tools() {
        Store::Jks
    } else {
        Store::Pem
    };
    let (key, trust) = stores(&dir, "s", &server, kind);
    let cases = [
        (
            format!(
                "ssl.keyStore.location={}\nssl.keyStore.password=wrong-one\n\
                 ssl.trustStore.location={}\nssl.trustStore.password={PASSWORD}\n",
                key.display(),
                trust.display()
            ),
            "ssl.keyStore.location",
            if kind == Store::Jks {
                "wrong password"
            } else {
                ""
            },
        ),
        (
            format!(
                "ssl.keyStore.location={}/missing.jks\nssl.keyStore.password={PASSWORD}\n\
                 ssl.trustStore.location={}\nssl.trustStore.password={PASSWORD}\n",
                dir.display(),
                trust.display()
            ),
            "missing.jks",
            "cannot read",
        ),
    ];
    for (i, (lines, names, why)) in cases.iter().enumerate() {
        let cfg = format!("secureClientPort={}\n{lines}", free_port());
        let mut node = Node::spawn(&dir, &format!("bad{i}"), &cfg, free_port());
        let t0 = Instant::now();
        let status = loop {
            if let Some(st) = node.child.try_wait().expect("wait") {
                break st;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "it started: {}",
                node.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        assert_eq!(status.code(), Some(1));
        let log = node.log();
        assert!(log.contains(names) && log.contains(why), "{log}");
        assert!(
            !log.contains(PASSWORD) && !log.contains("wrong-one"),
            "{log}"
        );
        node.kill();
    }
}

/// client.portUnification: the plaintext client port takes TLS as well.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn port_unification_takes_tls_and_plaintext() {
    let dir = tmp("unified");
    let ca = Ca::new("CA");
    let server = ca.leaf("localhost", None, &["localhost", "127.0.0.1"]);
    let (key, trust) = stores(&dir, "u", &server, Store::Pem);
    let cfg = format!(
        "client.portUnification=true\n{}",
        ssl_lines("ssl.", &key, &trust)
    );
    let node = Node::spawn(&dir, "u", &cfg, free_port());
    node.wait_mode(&["standalone"]);
    let client = ca.leaf("client", None, &["client"]);
    let mut s = TlsSession::open(
        node.client_port,
        client_tls(&ca.pem, Some(&client)),
        "localhost",
    )
    .await
    .expect("TLS on the unified port");
    assert!(matches!(s.create("/u", open_acl()).await, Ok(Ok(_))));
    assert!(node.srvr().contains("Mode: standalone"), "plaintext 4lw");
}

/// A key store replaced on disk serves new connections with the new certificate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stores_reload_when_their_files_change() {
    let dir = tmp("reload");
    let old_ca = Ca::new("Old CA");
    let new_ca = Ca::new("New CA");
    let server = old_ca.leaf("localhost", None, &["localhost"]);
    let (key, trust) = stores(&dir, "r", &server, Store::Pem);
    // Trust both CAs' clients throughout.
    std::fs::write(&trust, format!("{}{}", old_ca.pem, new_ca.pem)).expect("trust");
    let secure = free_port();
    let cfg = format!(
        "secureClientPort={secure}\n{}",
        ssl_lines("ssl.", &key, &trust)
    );
    let node = Node::spawn(&dir, "r", &cfg, free_port());
    node.wait_mode(&["standalone"]);
    let client = new_ca.leaf("client", None, &["client"]);
    let trusts_new = client_tls(&new_ca.pem, Some(&client));
    assert!(
        TlsSession::open(secure, trusts_new.clone(), "localhost")
            .await
            .is_err(),
        "the server still has the old CA's certificate"
    );
    let renewed = new_ca.leaf("localhost", None, &["localhost"]);
    std::fs::write(&key, format!("{}{}", renewed.cert, renewed.key)).expect("new key store");
    let t0 = Instant::now();
    loop {
        if TlsSession::open(secure, trusts_new.clone(), "localhost")
            .await
            .is_ok()
        {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "not reloaded: {}",
            node.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(node.log().contains("reloaded"));
}

/// X509AuthenticationProvider: a client certificate's subject, as Java's
/// `getSubjectX500Principal().getName()` prints it, is an `x509` identity for ACLs; the subject
/// named by `X509AuthenticationProvider.superUser` passes every check; a plaintext client and
/// another certificate do not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x509_identities_pass_acls_as_in_zookeeper() {
    use ensemble_proto::proto::{Acl, Id, KeeperError, Request, perms};
    let dir = tmp("x509");
    let (node, owner, secure, ca) = secure_node(
        &dir,
        "x",
        "X509AuthenticationProvider.superUser=O=Ensemble,CN=admin\n",
        Store::Pem,
    );
    let acl = |id: &str| {
        vec![Acl {
            perms: perms::ALL,
            id: Id {
                scheme: "x509".into(),
                id: id.into(),
            },
        }]
    };
    let read = Request::GetData {
        path: "/owned".into(),
        watch: false,
    };
    let mut s = TlsSession::open(secure, client_tls(&ca.pem, Some(&owner)), "localhost")
        .await
        .expect("owner");
    // The certificate has CN before O in its DER; Java (and OpenSSL's RFC 2253 form) print
    // the last RDN first.
    let subject = "O=Ensemble,CN=client";
    if have_store_tools() {
        let pem = dir.join("owner.pem");
        std::fs::write(&pem, &owner.cert).expect("pem");
        let out = std::process::Command::new("openssl")
            .args(["x509", "-noout", "-subject", "-nameopt", "RFC2253", "-in"])
            .arg(&pem)
            .output()
            .expect("openssl");
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(text.trim(), format!("subject={subject}"));
    }
    let r = s.create("/owned", acl(subject)).await;
    assert!(matches!(r, Ok(Ok(_))), "{r:?}");
    let r = s.request(read.clone()).await;
    assert!(matches!(r, Ok(Ok(_))), "{r:?}\n{}", node.log());
    // RFC 2253 escapes, as Java prints them.
    let odd = ca.leaf("Smith, J+Q", Some("Ex"), &["odd"]);
    let r = s.create("/odd", acl("O=Ex,CN=Smith\\, J\\+Q")).await;
    assert!(matches!(r, Ok(Ok(_))), "{r:?}");
    let mut o = TlsSession::open(secure, client_tls(&ca.pem, Some(&odd)), "localhost")
        .await
        .expect("odd");
    let r = o
        .request(Request::GetData {
            path: "/odd".into(),
            watch: false,
        })
        .await;
    assert!(matches!(r, Ok(Ok(_))), "{r:?}");
    assert!(
        matches!(o.request(read.clone()).await, Ok(Err(KeeperError::NoAuth))),
        "another certificate reads the owner's node"
    );
    let admin = ca.leaf("admin", Some("Ensemble"), &["admin"]);
    let mut a = TlsSession::open(secure, client_tls(&ca.pem, Some(&admin)), "localhost")
        .await
        .expect("admin");
    assert!(
        matches!(a.request(read.clone()).await, Ok(Ok(_))),
        "the x509 super user is refused"
    );
    let plain = ensemble_client::Client::connect(
        &format!("127.0.0.1:{}", node.client_port),
        Duration::from_secs(10),
    )
    .await
    .expect("plaintext");
    assert!(plain.get_data("/owned", false).await.is_err());
}

/// The AdminServer over HTTPS (admin.forceHttps=true, the ssl.quorum.* stores, as ZooKeeper's
/// JettyAdminServer): a command answers over TLS, plaintext HTTP gets no answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_server_over_https() {
    let dir = tmp("admin");
    let ca = Ca::new("Admin CA");
    let server = ca.leaf("localhost", None, &["localhost", "127.0.0.1"]);
    let (key, trust) = stores(&dir, "a", &server, Store::Pem);
    let port = free_port();
    let cfg = format!(
        "admin.enableServer=true\nadmin.serverAddress=127.0.0.1\nadmin.serverPort={port}\n\
         admin.forceHttps=true\n{}",
        ssl_lines("ssl.quorum.", &key, &trust)
    );
    let node = Node::spawn(&dir, "a", &cfg, free_port());
    node.wait_mode(&["standalone"]);
    let request = b"GET /commands/ruok HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("tcp");
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let mut tls = tokio_rustls::TlsConnector::from(client_tls(&ca.pem, None))
        .connect(name, tcp)
        .await
        .unwrap_or_else(|e| panic!("HTTPS handshake: {e}\n{}", node.log()));
    tls.write_all(request).await.expect("write");
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut answer)).await;
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("\"command\""), "{text}");

    let mut plain = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("tcp");
    plain.write_all(request).await.expect("write");
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), plain.read_to_end(&mut buf)).await;
    assert!(
        !String::from_utf8_lossy(&buf).contains("HTTP/1.1"),
        "plaintext HTTP answered on an HTTPS-only AdminServer"
    );
}

/// The ssl settings come from -Dzookeeper.ssl.* flags in SERVER_JVMFLAGS too, zoo.cfg winning
/// over a flag; a password is shown nowhere (Debug, warnings).
#[test]
fn ssl_settings_from_jvm_flags_and_zoo_cfg() {
    use ensemble_node::tls::Side;
    let dir = tmp("flags");
    let cfg = dir.join("zoo.cfg");
    std::fs::write(
        &cfg,
        format!(
            "tickTime=2000\ndataDir={}\nclientPort=2181\nsecureClientPort=2281\n\
             ssl.keyStore.location=/from/zoo.cfg.jks\n",
            dir.display()
        ),
    )
    .expect("zoo.cfg");
    let flags = format!(
        "-Dzookeeper.ssl.keyStore.location=/from/flag.jks \
         -Dzookeeper.ssl.keyStore.password={PASSWORD} -Dzookeeper.ssl.clientAuth=want \
         -Dzookeeper.ssl.quorum.hostnameVerification=false"
    );
    let c = ensemble_node::config::load_with_env(&cfg, &|k| {
        (k == "SERVER_JVMFLAGS").then(|| flags.clone())
    })
    .expect("config");
    let t = &c.tls;
    assert_eq!(t.secure_client_port.as_ref().map(|p| p.0), Some(2281));
    let loc = t.get(Side::Client, "keyStore.location").expect("location");
    assert_eq!(loc.value, "/from/zoo.cfg.jks", "zoo.cfg wins");
    assert_eq!(
        t.get(Side::Client, "keyStore.password")
            .map(|s| s.value.as_str()),
        Some(PASSWORD)
    );
    assert_eq!(
        t.get(Side::Client, "clientAuth").map(|s| s.value.as_str()),
        Some("want")
    );
    assert!(t.get(Side::Quorum, "hostnameVerification").is_some());
    let shown = format!("{c:?}{:?}", c.warnings);
    assert!(!shown.contains(PASSWORD), "{shown}");
    // A bad value names its flag.
    let e = ensemble_node::config::load_with_env(&cfg, &|k| {
        (k == "SERVER_JVMFLAGS").then(|| "-Dzookeeper.ssl.clientAuth=sometimes".to_string())
    })
    .expect_err("a bad clientAuth");
    let e = e.to_string();
    assert!(
        e.contains("SERVER_JVMFLAGS") && e.contains("ssl.clientAuth"),
        "{e}"
    );
}

/// The Rust client library (`ensemble_client`, the benchmark's client) over TLS: a session by
/// host name and by IP address, both checked against the certificate's names; refused when it
/// does not trust the server's CA, when the name is not the certificate's, and (the server
/// needs client certificates) without a certificate of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_client_library_over_tls() {
    use ensemble_client::{Client, ClientError, ConnectOptions, TlsOptions};
    use ensemble_proto::proto::CreateMode;
    let dir = tmp("rust-client");
    let (node, client, secure, _) = secure_node(&dir, "n", "", Store::Pem);
    let write = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).expect("write pem");
        p
    };
    let ca_file = write("ca.pem", &client.ca);
    let mut tls = TlsOptions::new(&ca_file);
    tls.cert_file = Some(write("client.pem", &client.cert));
    tls.key_file = Some(write("client.key", &client.key));
    let timeout = Duration::from_secs(10);
    let open = |hosts: String, tls: TlsOptions| {
        let mut o = ConnectOptions::new(&hosts, timeout);
        o.tls = Some(tls);
        o.connect_timeout = Some(Duration::from_secs(3));
        Client::connect_with(o)
    };

    for host in ["localhost", "127.0.0.1"] {
        let c = open(format!("{host}:{secure}"), tls.clone())
            .await
            .unwrap_or_else(|e| panic!("{host}: {e}\n{}", node.log()));
        let path = format!("/tls-{host}");
        c.create(&path, b"over tls", open_acl(), CreateMode::Persistent)
            .await
            .expect("create");
        let (data, _) = c.get_data(&path, false).await.expect("get");
        assert_eq!(data, b"over tls");
        c.close().await.expect("close");
    }

    let other = Ca::new("Some Other CA");
    let untrusting = TlsOptions::new(write("other-ca.pem", &other.pem));
    let mut with_cert = untrusting.clone();
    with_cert.cert_file = tls.cert_file.clone();
    with_cert.key_file = tls.key_file.clone();
    let r = open(format!("localhost:{secure}"), with_cert).await;
    assert!(matches!(r, Err(ClientError::NoServer(_))), "{r:?}");

    let mut wrong_name = tls.clone();
    wrong_name.server_name = Some("elsewhere.example".into());
    let r = open(format!("localhost:{secure}"), wrong_name).await;
    assert!(matches!(r, Err(ClientError::NoServer(_))), "{r:?}");

    let r = open(format!("localhost:{secure}"), TlsOptions::new(&ca_file)).await;
    assert!(matches!(r, Err(ClientError::NoServer(_))), "{r:?}");

    let mut half = tls.clone();
    half.key_file = None;
    let r = open(format!("localhost:{secure}"), half).await;
    assert!(matches!(r, Err(ClientError::Tls(_))), "{r:?}");
}
