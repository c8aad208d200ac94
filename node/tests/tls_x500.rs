//! x509 identities are the subject exactly as Java's `X500Principal.getName()` prints it (what
//! ZooKeeper's X509AuthenticationProvider uses): certificates with awkward subjects (escapes,
//! multi-valued RDNs, attributes without an RFC 2253 keyword, leading and trailing spaces,
//! UTF-8) made by openssl, named by a JVM (tls_kit/X500Name.java) and by this build. Skipped,
//! with a note, without java or openssl (never under CI).

use rustls::pki_types::{CertificateDer, pem::PemObject};
use std::process::Command;

#[test]
fn subjects_match_what_java_prints() {
    let tools = Command::new("java").arg("-version").output().is_ok()
        && Command::new("openssl").arg("version").output().is_ok();
    if !tools {
        assert!(std::env::var("CI").is_err(), "java and openssl are needed");
        eprintln!("NOTE: skipping subjects_match_what_java_prints: no java or openssl");
        return;
    }
    let dir = std::env::temp_dir().join(format!("ens-x500-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let subjects = [
        "/CN=client",
        "/O=Ensemble/CN=client",
        "/DC=org/DC=example/O=Smith\\, J\\+Q/OU=a=b#c;d<e>\"f\"/CN=client+UID=42",
        "/emailAddress=me@example.org/L= lead/ST=trail /serialNumber=7/CN=Zoë",
        "/C=DE/STREET=Main St 1/CN=#hash",
    ];
    let mut files = Vec::new();
    for (i, subj) in subjects.iter().enumerate() {
        let cert = dir.join(format!("c{i}.pem"));
        let out = Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
            ])
            .args([
                "-nodes",
                "-days",
                "1",
                "-multivalue-rdn",
                "-utf8",
                "-subj",
                subj,
            ])
            .arg("-keyout")
            .arg(dir.join(format!("k{i}.pem")))
            .arg("-out")
            .arg(&cert)
            .output()
            .expect("openssl");
        assert!(
            out.status.success(),
            "{subj}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        files.push(cert);
    }
    let java = Command::new("java")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/tls_kit/X500Name.java"
        ))
        .args(&files)
        .output()
        .expect("java");
    assert!(
        java.status.success(),
        "{}",
        String::from_utf8_lossy(&java.stderr)
    );
    let names = String::from_utf8(java.stdout).expect("utf-8");
    let names: Vec<&str> = names.lines().collect();
    assert_eq!(names.len(), files.len());
    for (file, java_name) in files.iter().zip(names) {
        let pem = std::fs::read(file).expect("pem");
        let der = CertificateDer::from_pem_slice(&pem).expect("der");
        let ours = ensemble_node::tls::x500::subject_of(&der).expect("subject");
        assert_eq!(ours, java_name, "{}", file.display());
    }
}
