//! Key and trust stores as ZooKeeper 3.8 reads them (`FileKeyStoreLoader`): JKS, PKCS12 and
//! PEM, the type from `ssl.keyStore.type` / `ssl.trustStore.type` or, when that is not set,
//! from the file's extension (`.jks`, `.p12` / `.pfx`, `.pem`), as `KeyStoreFileType` does.
//!
//! Every error names the setting and the file, never the password.

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::path::Path;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreType {
    Jks,
    Pkcs12,
    Pem,
}

impl StoreType {
    /// `ssl.*.type` (case-insensitive, as `KeyStoreFileType.fromPropertyValue`), else the file
    /// name's extension.
    pub fn of(type_value: Option<&str>, path: &Path) -> Result<StoreType, String> {
        if let Some(t) = type_value.map(str::trim).filter(|t| !t.is_empty()) {
            return match t.to_ascii_uppercase().as_str() {
                "JKS" => Ok(StoreType::Jks),
                "PKCS12" => Ok(StoreType::Pkcs12),
                "PEM" => Ok(StoreType::Pem),
                "BCFKS" => Err("BCFKS stores (Bouncy Castle FIPS) are not supported; \
                     use JKS, PKCS12 or PEM"
                    .into()),
                _ => Err(format!(
                    "unknown store type '{t}' (expected JKS, PKCS12 or PEM)"
                )),
            };
        }
        let name = path.to_string_lossy().to_ascii_lowercase();
        if name.ends_with(".jks") {
            Ok(StoreType::Jks)
        } else if name.ends_with(".p12") || name.ends_with(".pfx") {
            Ok(StoreType::Pkcs12)
        } else if name.ends_with(".pem") {
            Ok(StoreType::Pem)
        } else {
            Err(
                "cannot tell the store type from the file name (.jks, .p12, .pfx or .pem); \
                 set the matching .type setting"
                    .into(),
            )
        }
    }
}

/// A server's (or a dialling peer's) own certificate chain and private key.
pub struct KeyMaterial {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read: {e}"))
}

/// The first private key entry of a key store, with its chain.
pub fn load_key_store(path: &Path, password: &str, kind: StoreType) -> Result<KeyMaterial, String> {
    let data = read(path)?;
    match kind {
        StoreType::Jks => {
            let (ks, aliases) = open_jks(&data, password)?;
            for alias in aliases {
                if !ks.is_private_key_entry(&alias) {
                    continue;
                }
                // ZooKeeper uses the store's password for the key too.
                let entry = ks
                    .get_private_key_entry(&alias, password.as_bytes())
                    .map_err(|e| {
                        format!(
                            "the key '{alias}' does not open with the store's password: {}",
                            jks_error(e)
                        )
                    })?;
                let chain = entry
                    .certificate_chain
                    .into_iter()
                    .map(|c| CertificateDer::from(c.content))
                    .collect::<Vec<_>>();
                if chain.is_empty() {
                    return Err(format!("the key '{alias}' has no certificate"));
                }
                let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(entry.private_key));
                return Ok(KeyMaterial { chain, key });
            }
            Err("holds no private key entry".into())
        }
        StoreType::Pkcs12 => {
            let archive =
                p12_keystore::Pkcs12Archive::from_pkcs12(&data, password).map_err(p12_error)?;
            let Some(key) = archive.keys.first() else {
                return Err("holds no private key".into());
            };
            let certs: Vec<&p12_keystore::CertificateBag> = archive.certs.iter().collect();
            let leaf = certs
                .iter()
                .find(|c| {
                    key.local_key_id
                        .as_ref()
                        .is_some_and(|id| c.local_key_id.as_deref() == Some(&id.0[..]))
                })
                .or_else(|| certs.iter().find(|c| !c.trusted))
                .ok_or("holds no certificate for its private key")?;
            let mut chain = vec![leaf.cert.clone()];
            // The rest of the chain, issuer by issuer (a self-signed root ends it).
            while let Some(last) = chain.last()
                && last.issuer() != last.subject()
                && chain.len() < 10
            {
                match certs.iter().find(|c| c.cert.subject() == last.issuer()) {
                    Some(c) if !chain.contains(&c.cert) => chain.push(c.cert.clone()),
                    _ => break,
                }
            }
            Ok(KeyMaterial {
                chain: chain
                    .into_iter()
                    .map(|c| CertificateDer::from(c.as_der().to_vec()))
                    .collect(),
                key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.key.as_der().to_vec())),
            })
        }
        StoreType::Pem => {
            let chain = pem_certs(&data)?;
            if chain.is_empty() {
                return Err("holds no CERTIFICATE block".into());
            }
            if data
                .windows(b"ENCRYPTED PRIVATE KEY".len())
                .any(|w| w == b"ENCRYPTED PRIVATE KEY")
            {
                return Err(
                    "holds an encrypted private key, which this build cannot open; \
                     store it unencrypted (PKCS#8, PKCS#1 or SEC1) or use a JKS or PKCS12 store"
                        .into(),
                );
            }
            let key = PrivateKeyDer::from_pem_slice(&data)
                .map_err(|e| format!("holds no readable private key: {e}"))?;
            Ok(KeyMaterial { chain, key })
        }
    }
}

/// Every certificate of a trust store.
pub fn load_trust_store(
    path: &Path,
    password: &str,
    kind: StoreType,
) -> Result<Vec<CertificateDer<'static>>, String> {
    let data = read(path)?;
    let certs = match kind {
        StoreType::Jks => {
            let (ks, aliases) = open_jks(&data, password)?;
            let mut out = Vec::new();
            for alias in aliases {
                if let Ok(e) = ks.get_trusted_certificate_entry(&alias) {
                    out.push(CertificateDer::from(e.certificate.content));
                } else if let Ok(chain) = ks.get_private_key_entry_certificate_chain(&alias) {
                    // Java's trust manager trusts a key entry's own certificate too.
                    if let Some(c) = chain.into_iter().next() {
                        out.push(CertificateDer::from(c.content));
                    }
                }
            }
            out
        }
        StoreType::Pkcs12 => p12_keystore::Pkcs12Archive::from_pkcs12(&data, password)
            .map_err(p12_error)?
            .certs
            .into_iter()
            .map(|c| CertificateDer::from(c.cert.as_der().to_vec()))
            .collect(),
        StoreType::Pem => pem_certs(&data)?,
    };
    if certs.is_empty() {
        return Err("holds no certificate".into());
    }
    Ok(certs)
}

fn pem_certs(data: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    CertificateDer::pem_slice_iter(data)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not a PEM file: {e}"))
}

/// A JKS store opened with its password, and its aliases in order.
fn open_jks(data: &[u8], password: &str) -> Result<(jks::KeyStore, Vec<String>), String> {
    let mut ks = jks::KeyStore::new();
    ks.load(data, password.as_bytes()).map_err(jks_error)?;
    let mut aliases = ks.aliases();
    aliases.sort();
    Ok((ks, aliases))
}

fn jks_error(e: jks::KeyStoreError) -> String {
    match e {
        // The digest over the store is keyed by its password.
        jks::KeyStoreError::InvalidDigest => {
            "wrong password (the store's integrity check failed)".into()
        }
        jks::KeyStoreError::InvalidMagic => "not a JKS store".into(),
        e => format!("not a readable JKS store: {e}"),
    }
}

fn p12_error(e: p12_keystore::error::Error) -> String {
    use p12_keystore::error::Error;
    match e {
        // The MAC over the store, and the bags' encryption, are keyed by its password.
        Error::MacError(_) | Error::UnpadError => {
            "wrong password (the store's integrity check failed)".into()
        }
        e => format!("not a readable PKCS12 store: {e}"),
    }
}
