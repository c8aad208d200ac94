//! Checking the other side's certificate.
//!
//! Clients' certificates: webpki, except for X.509 v1 certificates, which Java's trust
//! managers accept and webpki does not (kazoo's own test harness makes its client and server
//! certificates v1): those are checked here — each link's signature by the next certificate
//! (or a trust anchor), every validity period, and the handshake signature with the leaf's
//! key.
//!
//! Servers' certificates (a quorum peer we dial): webpki against the server line's host, or
//! only the chain with `ssl.quorum.hostnameVerification=false`.

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, SubjectPublicKeyInfoDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, Error, SignatureScheme};
use std::sync::Arc;
use x509_parser::prelude::*;

fn is_v1(der: &CertificateDer<'_>) -> bool {
    matches!(X509Certificate::from_der(der), Ok((_, c)) if c.version() == X509Version::V1)
}

fn bad(why: &str) -> Error {
    Error::InvalidCertificate(CertificateError::Other(rustls::OtherError(Arc::new(
        std::io::Error::other(why.to_string()),
    ))))
}

fn parse(d: &[u8]) -> Result<X509Certificate<'_>, Error> {
    X509Certificate::from_der(d)
        .map(|(_, c)| c)
        .map_err(|_| Error::InvalidCertificate(CertificateError::BadEncoding))
}

/// The chain of a v1 end-entity certificate: every link signed by the next, the last by a
/// trust anchor, all within their validity at `now`.
fn verify_v1_chain(
    end_entity: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    roots: &[CertificateDer<'static>],
    now: UnixTime,
) -> Result<(), Error> {
    let at = ASN1Time::from_timestamp(now.as_secs() as i64)
        .map_err(|_| bad("the clock is out of range"))?;
    let mut cert = parse(end_entity)?;
    let mut chain: Vec<X509Certificate<'_>> = intermediates
        .iter()
        .map(|d| parse(d))
        .collect::<Result<_, _>>()?;
    let anchors: Vec<X509Certificate<'_>> = roots.iter().filter_map(|d| parse(d).ok()).collect();
    for _ in 0..=intermediates.len() {
        if !cert.validity().is_valid_at(at) {
            return Err(Error::InvalidCertificate(CertificateError::Expired));
        }
        // A trust anchor that issued it ends the chain.
        if anchors.iter().any(|a| {
            a.subject().as_raw() == cert.issuer().as_raw()
                && cert.verify_signature(Some(a.public_key())).is_ok()
        }) {
            return Ok(());
        }
        let Some(i) = chain
            .iter()
            .position(|c| c.subject().as_raw() == cert.issuer().as_raw())
        else {
            return Err(Error::InvalidCertificate(CertificateError::UnknownIssuer));
        };
        let issuer = chain.remove(i);
        if cert.verify_signature(Some(issuer.public_key())).is_err() {
            return Err(Error::InvalidCertificate(CertificateError::BadSignature));
        }
        cert = issuer;
    }
    Err(Error::InvalidCertificate(CertificateError::UnknownIssuer))
}

/// The handshake signature made with a (v1) certificate's key.
fn verify_v1_signature(
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
    algs: &WebPkiSupportedAlgorithms,
) -> Result<HandshakeSignatureValid, Error> {
    let (_, c) = X509Certificate::from_der(cert)
        .map_err(|_| Error::InvalidCertificate(CertificateError::BadEncoding))?;
    let spki = SubjectPublicKeyInfoDer::from(c.public_key().raw);
    let key = webpki::RawPublicKeyEntity::try_from(&spki)
        .map_err(|_| Error::InvalidCertificate(CertificateError::BadEncoding))?;
    let candidates = algs
        .mapping
        .iter()
        .filter(|(scheme, _)| *scheme == dss.scheme)
        .flat_map(|(_, algs)| algs.iter());
    for alg in candidates {
        if key.verify_signature(*alg, message, dss.signature()).is_ok() {
            return Ok(HandshakeSignatureValid::assertion());
        }
    }
    Err(Error::InvalidCertificate(CertificateError::BadSignature))
}

/// webpki's client verifier, with v1 certificates checked as Java checks them.
#[derive(Debug)]
pub struct ClientVerifier {
    pub inner: Arc<dyn ClientCertVerifier>,
    pub roots: Vec<CertificateDer<'static>>,
    pub algs: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for ClientVerifier {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }
    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }
    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        if is_v1(end_entity) {
            verify_v1_chain(end_entity, intermediates, &self.roots, now)?;
            return Ok(ClientCertVerified::assertion());
        }
        self.inner
            .verify_client_cert(end_entity, intermediates, now)
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        if is_v1(cert) {
            return verify_v1_signature(message, cert, dss, &self.algs);
        }
        self.inner.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        if is_v1(cert) {
            return verify_v1_signature(message, cert, dss, &self.algs);
        }
        self.inner.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

// the server-side verifier with ZooKeeper's ssl.hostnameVerification lives with the client
pub use ensemble_client::tls::ServerVerifier;

/// Whether a peer's certificate names `ip`, or one of `hosts` that resolves to it (what
/// ZooKeeper's ZKTrustManager checks of a quorum peer that dialled in).
pub fn peer_names_match(
    cert: &CertificateDer<'_>,
    ip: std::net::IpAddr,
    hosts: &[(String, Vec<std::net::IpAddr>)],
) -> bool {
    let Ok(ee) = webpki::EndEntityCert::try_from(cert) else {
        return false;
    };
    let ip = ip.to_canonical();
    let by_ip = ServerName::IpAddress(ip.into());
    if ee.verify_is_valid_for_subject_name(&by_ip).is_ok() {
        return true;
    }
    hosts.iter().any(|(host, addrs)| {
        addrs.iter().any(|a| a.to_canonical() == ip)
            && ServerName::try_from(host.as_str())
                .is_ok_and(|n| ee.verify_is_valid_for_subject_name(&n).is_ok())
    })
}
