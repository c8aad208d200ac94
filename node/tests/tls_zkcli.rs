//! ZooKeeper's own CLI over TLS: `zkCli.sh` with `zookeeper.client.secure=true`, Netty's
//! client socket and JKS stores. Debian splits netty into netty-*.jar and zookeeper.jar's
//! manifest names only some of them (not netty-codec or netty-resolver), and its zkEnv.sh sets
//! CLASSPATH itself: the class path goes in CLIENT_JVMFLAGS, whose `-cp` comes after
//! zkCli.sh's and wins. It creates a node on Ensemble's secureClientPort, which requires its certificate
//! (ssl.clientAuth=need, the default). Skipped, with a note, where ZooKeeper or keytool is
//! not installed (never under CI).

mod common;
mod tls_kit;

use ensemble_client::Client;
use std::process::Command;
use std::time::Duration;
use tls_kit::*;

/// A standalone server with a secureClientPort (JKS stores, a certificate of `ca` for
/// localhost and 127.0.0.1); returns it with that port.
fn tls_server(dir: &std::path::Path, ca: &Ca) -> (Node, u16) {
    let server = ca.leaf("localhost", None, &["localhost", "127.0.0.1"]);
    let (key, trust) = stores(dir, "server", &server, Store::Jks);
    let secure = free_port();
    let cfg = format!(
        "secureClientPort={secure}\n{}",
        ssl_lines("ssl.", &key, &trust)
    );
    let node = Node::spawn(dir, "n", &cfg, free_port());
    node.wait_mode(&["standalone"]);
    (node, secure)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zkcli_creates_a_node_over_tls() {
    if !std::path::Path::new(common::ZKCLI).exists() {
        assert!(std::env::var("CI").is_err(), "zkCli.sh is missing under CI");
        common::skip("zkcli_creates_a_node_over_tls");
        return;
    }
    if !have_store_tools() {
        return;
    }
    let dir = tmp("zkcli");
    let ca = Ca::new("zkCli CA");
    let (node, secure) = tls_server(&dir, &ca);

    let client = ca.leaf("zkcli", Some("Ensemble"), &["localhost"]);
    let (ckey, ctrust) = stores(&dir, "client", &client, Store::Jks);
    let mut class_path = vec![
        "/etc/zookeeper/conf".to_string(),
        common::ZK_JAR.to_string(),
    ];
    let netty: Vec<String> = std::fs::read_dir("/usr/share/java")
        .expect("/usr/share/java")
        .filter_map(|e| e.ok())
        .map(|e| e.path().display().to_string())
        .filter(|p| {
            let name = p.rsplit('/').next().unwrap_or_default();
            name.starts_with("netty-") && name.ends_with(".jar") && !name.contains("4.1")
        })
        .collect();
    class_path.extend(netty);
    let flags = format!(
        "-cp {} -Dzookeeper.client.secure=true \
         -Dzookeeper.clientCnxnSocket=org.apache.zookeeper.ClientCnxnSocketNetty \
         -Dzookeeper.ssl.keyStore.location={} -Dzookeeper.ssl.keyStore.password={PASSWORD} \
         -Dzookeeper.ssl.trustStore.location={} -Dzookeeper.ssl.trustStore.password={PASSWORD}",
        class_path.join(":"),
        ckey.display(),
        ctrust.display()
    );
    let out = Command::new(common::ZKCLI)
        .args([
            "-server",
            &format!("localhost:{secure}"),
            "create",
            "/made-by-zkcli-over-tls",
            "hello",
        ])
        .env("CLIENT_JVMFLAGS", flags)
        .env("ZOO_LOG_DIR", &dir)
        .output()
        .expect("run zkCli.sh");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("Created /made-by-zkcli-over-tls"),
        "zkCli.sh: {text}\nserver log:\n{}",
        node.log()
    );
    let c = Client::connect(
        &format!("127.0.0.1:{}", node.client_port),
        Duration::from_secs(10),
    )
    .await
    .expect("connect");
    let (data, _) = c
        .get_data("/made-by-zkcli-over-tls", false)
        .await
        .expect("the node zkCli.sh made over TLS");
    assert_eq!(data, b"hello");
}

/// `ensemble cli` takes zkCli.sh's client settings the same way: `-D` flags in CLIENT_JVMFLAGS,
/// or a `-client-configuration` properties file (PKCS12 stores here, JKS above), and speaks TLS
/// to the secureClientPort with them. A wrong store password or a secure client with no trust
/// store is a clear error naming the setting or file; an unused setting is reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ensemble_cli_takes_zkclis_tls_settings() {
    if !have_store_tools() {
        return;
    }
    let dir = tmp("cli-tls");
    let ca = Ca::new("cli CA");
    let (node, secure) = tls_server(&dir, &ca);
    let client = ca.leaf("cli", Some("Ensemble"), &["localhost"]);
    let (ckey, ctrust) = stores(&dir, "client", &client, Store::Pkcs12);
    let cli = |args: &[&str], jvm_flags: &str| {
        let out = Command::new(BIN)
            .arg("cli")
            .args(["-server", &format!("127.0.0.1:{secure}")])
            .args(args)
            .env("CLIENT_JVMFLAGS", jvm_flags)
            .env_remove("JVMFLAGS")
            .output()
            .expect("run ensemble cli");
        (
            out.status.code(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };

    // a properties file, as zkCli.sh's -client-configuration
    let props = dir.join("client.properties");
    std::fs::write(
        &props,
        format!(
            "zookeeper.client.secure=true\n\
             zookeeper.clientCnxnSocket=org.apache.zookeeper.ClientCnxnSocketNetty\n\
             zookeeper.ssl.keyStore.location={}\nzookeeper.ssl.keyStore.password={PASSWORD}\n\
             zookeeper.ssl.trustStore.location={}\nzookeeper.ssl.trustStore.password={PASSWORD}\n\
             zookeeper.request.timeout=5000\n",
            ckey.display(),
            ctrust.display()
        ),
    )
    .expect("write the client properties");
    let props_arg = props.display().to_string();
    let (code, text) = cli(
        &[
            "-client-configuration",
            &props_arg,
            "create",
            "/cli-over-tls",
            "v",
        ],
        "",
    );
    assert_eq!(code, Some(0), "{text}\nserver log:\n{}", node.log());
    assert!(text.contains("Created /cli-over-tls"), "{text}");
    assert!(
        text.contains("zookeeper.request.timeout") && text.contains("not used"),
        "an unused setting is reported: {text}"
    );

    // the same through -D flags, as CLIENT_JVMFLAGS carries them to zkCli's JVM
    let flags = format!(
        "-Xmx64m -Dzookeeper.client.secure=true \
         -Dzookeeper.ssl.keyStore.location={} -Dzookeeper.ssl.keyStore.password={PASSWORD} \
         -Dzookeeper.ssl.trustStore.location={} -Dzookeeper.ssl.trustStore.password={PASSWORD}",
        ckey.display(),
        ctrust.display()
    );
    let (code, text) = cli(&["get", "/cli-over-tls"], &flags);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.lines().any(|l| l == "v"), "{text}");

    // a wrong trust store password: refused, naming the file, nothing connected
    let wrong = flags.replace(
        &format!("trustStore.password={PASSWORD}"),
        "trustStore.password=not-it",
    );
    let (code, text) = cli(&["get", "/cli-over-tls"], &wrong);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains(&ctrust.display().to_string()) && text.contains("wrong password"),
        "{text}"
    );
    // secure without a trust store
    let (code, text) = cli(&["ls", "/"], "-Dzookeeper.client.secure=true");
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("zookeeper.ssl.trustStore.location"), "{text}");
}
