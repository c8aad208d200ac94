//! Shared by the TLS tests: certificates made in the test (rcgen), the stores ZooKeeper reads
//! made from them (PEM here; PKCS12 with openssl and JKS with the JDK's keytool, as an
//! operator makes them), an `ensemble run` child, and a ZooKeeper session over TLS spoken
//! with tokio-rustls and the project's jute codec.

#![allow(dead_code)]

use ensemble_proto::jute;
use ensemble_proto::proto::{Acl, ConnectRequest, CreateMode, CreateOp, Id, Reply, Request, perms};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    date_time_ymd,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, pem::PemObject};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub const BIN: &str = env!("CARGO_BIN_EXE_ensemble");
pub const PASSWORD: &str = "s3cret-pw";

pub fn tmp(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ens-tls-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("tmp dir");
    d
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("an ephemeral port")
}

/// A CA and what it signs.
pub struct Ca {
    pub pem: String,
    issuer: Issuer<'static, KeyPair>,
}

/// A certificate and its key, in PEM.
pub struct Leaf {
    pub cert: String,
    pub key: String,
    pub ca: String,
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let key = KeyPair::generate().expect("key");
        let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
        p.distinguished_name.push(DnType::CommonName, name);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = p.self_signed(&key).expect("ca cert");
        Ca {
            pem: cert.pem(),
            issuer: Issuer::new(p, key),
        }
    }

    /// A certificate for `names` (DNS names or IPs) with subject `CN=<cn>[,O=<o>]`.
    pub fn leaf(&self, cn: &str, org: Option<&str>, names: &[&str]) -> Leaf {
        self.leaf_valid(cn, org, names, None)
    }

    pub fn expired(&self, cn: &str) -> Leaf {
        self.leaf_valid(cn, None, &["localhost"], Some((2001, 2002)))
    }

    fn leaf_valid(
        &self,
        cn: &str,
        org: Option<&str>,
        names: &[&str],
        years: Option<(i32, i32)>,
    ) -> Leaf {
        let key = KeyPair::generate().expect("key");
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let mut p = CertificateParams::new(names).expect("params");
        // rcgen writes CN before O; Java prints them O=..,CN=.. (the last RDN first).
        p.distinguished_name.push(DnType::CommonName, cn);
        if let Some(o) = org {
            p.distinguished_name.push(DnType::OrganizationName, o);
        }
        if let Some((from, to)) = years {
            p.not_before = date_time_ymd(from, 1, 1);
            p.not_after = date_time_ymd(to, 1, 1);
        }
        let cert = p.signed_by(&key, &self.issuer).expect("leaf");
        Leaf {
            cert: cert.pem(),
            key: key.serialize_pem(),
            ca: self.pem.clone(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Store {
    Pem,
    Pkcs12,
    Jks,
}

fn run(cmd: &mut Command) {
    let out = cmd.output().expect("run a store tool");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Whether keytool and openssl are here (the JDK comes with the interop dependencies).
pub fn have_store_tools() -> bool {
    let ok = Command::new("keytool").arg("-help").output().is_ok()
        && Command::new("openssl").arg("version").output().is_ok();
    if !ok {
        assert!(
            std::env::var("CI").is_err(),
            "keytool and openssl are needed (scripts/install-test-deps.sh)"
        );
        eprintln!("NOTE: skipping the JKS/PKCS12 part: no keytool or openssl here");
    }
    ok
}

/// Write `leaf` as a key store and its CA as a trust store of `kind` in `dir`, named
/// `<name>-key.<ext>` and `<name>-trust.<ext>`; returns their paths.
pub fn stores(dir: &Path, name: &str, leaf: &Leaf, kind: Store) -> (PathBuf, PathBuf) {
    let pem_key = dir.join(format!("{name}-key.pem"));
    let pem_trust = dir.join(format!("{name}-trust.pem"));
    std::fs::write(&pem_key, format!("{}{}", leaf.cert, leaf.key)).expect("pem");
    std::fs::write(&pem_trust, &leaf.ca).expect("pem");
    if kind == Store::Pem {
        return (pem_key, pem_trust);
    }
    let p12 = dir.join(format!("{name}-key.p12"));
    let ca = dir.join(format!("{name}-ca.pem"));
    std::fs::write(&ca, &leaf.ca).expect("ca");
    run(Command::new("openssl")
        .args(["pkcs12", "-export", "-name", "key", "-in"])
        .arg(&pem_key)
        .arg("-certfile")
        .arg(&ca)
        .arg("-out")
        .arg(&p12)
        .arg("-passout")
        .arg(format!("pass:{PASSWORD}")));
    let (key, trust, store_type) = match kind {
        Store::Pkcs12 => (p12.clone(), dir.join(format!("{name}-trust.p12")), "PKCS12"),
        _ => {
            let jks = dir.join(format!("{name}-key.jks"));
            run(Command::new("keytool")
                .args(["-importkeystore", "-noprompt", "-srcstoretype", "PKCS12"])
                .arg("-srckeystore")
                .arg(&p12)
                .args(["-srcstorepass", PASSWORD, "-deststoretype", "JKS"])
                .arg("-destkeystore")
                .arg(&jks)
                .args(["-deststorepass", PASSWORD, "-destkeypass", PASSWORD]));
            (jks, dir.join(format!("{name}-trust.jks")), "JKS")
        }
    };
    run(Command::new("keytool")
        .args(["-importcert", "-noprompt", "-alias", "ca", "-file"])
        .arg(&ca)
        .arg("-keystore")
        .arg(&trust)
        .args(["-storetype", store_type, "-storepass", PASSWORD]));
    (key, trust)
}

/// The zoo.cfg lines for the client port's stores (or `ssl.quorum.` ones).
pub fn ssl_lines(prefix: &str, key: &Path, trust: &Path) -> String {
    format!(
        "{prefix}keyStore.location={}\n{prefix}keyStore.password={PASSWORD}\n\
         {prefix}trustStore.location={}\n{prefix}trustStore.password={PASSWORD}\n",
        key.display(),
        trust.display()
    )
}

/// An `ensemble run` child, killed on drop.
pub struct Node {
    pub dir: PathBuf,
    pub cfg: PathBuf,
    pub client_port: u16,
    pub child: Child,
}

impl Node {
    /// Start `ensemble run` on a zoo.cfg made of `cfg` (dataDir added).
    pub fn spawn(dir: &Path, name: &str, cfg: &str, client_port: u16) -> Node {
        let data = dir.join(format!("data-{name}"));
        std::fs::create_dir_all(&data).expect("data");
        let text = format!(
            "tickTime=200\ninitLimit=10\nsyncLimit=5\ndataDir={}\nclientPort={client_port}\n\
             clientPortAddress=127.0.0.1\npreAllocSize=1024\nforceSync=no\n\
             admin.enableServer=false\n{cfg}",
            data.display()
        );
        let path = dir.join(format!("{name}.cfg"));
        std::fs::write(&path, text).expect("zoo.cfg");
        let log = std::fs::File::create(dir.join(format!("{name}.log"))).expect("log");
        let child = Command::new(BIN)
            .arg("run")
            .arg(&path)
            .env_remove("JVMFLAGS")
            .env_remove("SERVER_JVMFLAGS")
            .env_remove("ZOOCFGDIR")
            .env("RUST_LOG", "info,ensemble_node::runtime::clients=debug")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn ensemble");
        Node {
            dir: dir.to_path_buf(),
            cfg: path,
            client_port,
            child,
        }
    }

    pub fn log(&self) -> String {
        let name = self.cfg.file_stem().unwrap_or_default().to_string_lossy();
        std::fs::read_to_string(self.dir.join(format!("{name}.log"))).unwrap_or_default()
    }

    pub fn srvr(&self) -> String {
        ensemble_node::daemon::ask("127.0.0.1", self.client_port, "srvr").unwrap_or_default()
    }

    /// Wait until `srvr` says one of `modes`.
    pub fn wait_mode(&self, modes: &[&str]) -> String {
        let t0 = Instant::now();
        loop {
            let s = self.srvr();
            if let Some(m) = modes.iter().find(|m| s.contains(&format!("Mode: {m}"))) {
                return m.to_string();
            }
            assert!(
                t0.elapsed() < Duration::from_secs(40),
                "{} not serving: {}",
                self.cfg.display(),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A client's TLS configuration: trusting `ca`, presenting `identity` if given.
pub fn client_tls(ca: &str, identity: Option<&Leaf>) -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca.as_bytes()) {
        roots.add(c.expect("ca pem")).expect("root");
    }
    let b = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots);
    Arc::new(match identity {
        Some(l) => {
            let chain = CertificateDer::pem_slice_iter(l.cert.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .expect("cert");
            let key = PrivateKeyDer::from_pem_slice(l.key.as_bytes()).expect("key");
            b.with_client_auth_cert(chain, key).expect("identity")
        }
        None => b.with_no_client_auth(),
    })
}

/// A ZooKeeper session over TLS.
pub struct TlsSession {
    s: tokio_rustls::client::TlsStream<TcpStream>,
    xid: i32,
}

async fn read_frame<S: tokio::io::AsyncRead + Unpin>(s: &mut S) -> Result<Vec<u8>, String> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).await.map_err(|e| e.to_string())?;
    let n = jute::frame_len(len).map_err(|e| e.to_string())?;
    let mut body = vec![0u8; n];
    s.read_exact(&mut body).await.map_err(|e| e.to_string())?;
    Ok(body)
}

impl TlsSession {
    /// Handshake, then a session: any failure on the way is the `Err` (with TLS 1.3 a server
    /// that refuses the client's certificate says so after the client's handshake is done).
    pub async fn open(
        port: u16,
        config: Arc<rustls::ClientConfig>,
        name: &str,
    ) -> Result<TlsSession, String> {
        let tcp = TcpStream::connect(("127.0.0.1", port))
            .await
            .map_err(|e| e.to_string())?;
        let name = ServerName::try_from(name.to_string()).map_err(|e| e.to_string())?;
        let mut s = tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        let mut out = Vec::new();
        jute::encode_connect(
            &ConnectRequest {
                protocol_version: 0,
                last_zxid_seen: 0,
                timeout_ms: 10_000,
                session_id: 0,
                passwd: vec![0; 16],
                read_only: Some(false),
            },
            &mut out,
        );
        let io = async {
            s.write_all(&out).await.map_err(|e| e.to_string())?;
            let frame = read_frame(&mut s).await?;
            jute::decode_connect_response(&frame).map_err(|e| e.to_string())
        };
        let resp = tokio::time::timeout(Duration::from_secs(10), io)
            .await
            .map_err(|_| "no ConnectResponse in time".to_string())??;
        if resp.session_id == 0 {
            return Err("session refused".into());
        }
        Ok(TlsSession { s, xid: 0 })
    }

    pub async fn request(&mut self, req: Request) -> Result<Reply, String> {
        self.xid += 1;
        let opcode = req.opcode();
        let mut out = Vec::new();
        jute::encode_request(self.xid, &req, &mut out);
        self.s.write_all(&out).await.map_err(|e| e.to_string())?;
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(10), read_frame(&mut self.s))
                .await
                .map_err(|_| "no reply in time".to_string())??;
            let (xid, _, err, body) =
                jute::decode_reply_header(&frame).map_err(|e| e.to_string())?;
            if xid == self.xid {
                return jute::decode_reply_body(opcode, err, body).map_err(|e| e.to_string());
            }
        }
    }

    pub async fn create(&mut self, path: &str, acl: Vec<Acl>) -> Result<Reply, String> {
        self.request(Request::Create {
            op: CreateOp::Create,
            path: path.to_string(),
            data: b"x".to_vec(),
            acl,
            mode: CreateMode::Persistent,
            ttl: -1,
        })
        .await
    }
}

pub fn open_acl() -> Vec<Acl> {
    vec![Acl {
        perms: perms::ALL,
        id: Id {
            scheme: "world".into(),
            id: "anyone".into(),
        },
    }]
}
