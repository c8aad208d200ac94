//! A certificate's subject as Java's `X500Principal.getName()` prints it (RFC 2253): the
//! string ZooKeeper's X509AuthenticationProvider makes an `x509` identity of, so ACLs written
//! against ZooKeeper (`x509:CN=client,O=Example`) match here too.
//!
//! As Java: the RDNs last first, joined by `,` with no spaces; multi-valued RDNs joined by `+`;
//! the RFC 2253 keywords (CN, C, L, ST, O, OU, STREET, DC, UID) by name, any other attribute
//! as its dotted OID with `#` and the hex of its DER value; `,=+<>#;"\` escaped with a
//! backslash, and so are leading and trailing spaces.

use x509_parser::prelude::*;

fn keyword(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.9" => "STREET",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        _ => return None,
    })
}

/// The subject of a DER certificate, RFC 2253 as Java prints it.
pub fn subject_of(der: &[u8]) -> Result<String, String> {
    let (_, cert) = X509Certificate::from_der(der).map_err(|e| e.to_string())?;
    Ok(rfc2253(cert.subject()))
}

pub fn rfc2253(name: &X509Name<'_>) -> String {
    let rdns: Vec<String> = name
        .iter()
        .map(|rdn| {
            rdn.iter()
                .map(|ava| {
                    let oid = ava.attr_type().to_id_string();
                    match (keyword(&oid), text_of(ava.attr_value())) {
                        (Some(k), Some(text)) => format!("{k}={}", escape(&text)),
                        _ => format!("{oid}=#{}", hex(&der_of(ava.attr_value()))),
                    }
                })
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect();
    rdns.into_iter().rev().collect::<Vec<_>>().join(",")
}

/// The value of a directory string, decoded as Java decodes it; `None` for other types.
fn text_of(any: &x509_parser::asn1_rs::Any<'_>) -> Option<String> {
    use x509_parser::asn1_rs::Tag;
    let data = any.as_bytes();
    match any.tag() {
        Tag::Utf8String | Tag::PrintableString | Tag::Ia5String | Tag::VisibleString => {
            String::from_utf8(data.to_vec()).ok()
        }
        // T61: Java reads it as ISO-8859-1.
        Tag::TeletexString => Some(data.iter().map(|b| *b as char).collect()),
        Tag::BmpString => {
            let units: Vec<u16> = data
                .chunks(2)
                .map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]))
                .collect();
            String::from_utf16(&units).ok()
        }
        Tag::UniversalString => data
            .chunks(4)
            .map(|c| {
                let mut b = [0u8; 4];
                b[..c.len()].copy_from_slice(c);
                char::from_u32(u32::from_be_bytes(b))
            })
            .collect(),
        _ => None,
    }
}

fn der_of(any: &x509_parser::asn1_rs::Any<'_>) -> Vec<u8> {
    use x509_parser::asn1_rs::ToDer;
    any.to_der_vec().unwrap_or_default()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn escape(value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    let lead = chars.iter().take_while(|c| **c == ' ').count();
    let trail = chars.iter().rev().take_while(|c| **c == ' ').count();
    let mut out = String::with_capacity(value.len() + 4);
    for (i, c) in chars.iter().enumerate() {
        if *c == '\0' {
            out.push_str("\\00");
            continue;
        }
        if ",=+<>#;\"\\".contains(*c) || i < lead || i >= chars.len() - trail {
            out.push('\\');
        }
        out.push(*c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn escapes_as_java_does() {
        assert_eq!(escape("client"), "client");
        assert_eq!(escape("a,b+c"), "a\\,b\\+c");
        assert_eq!(escape(" x "), "\\ x\\ ");
        assert_eq!(escape("#1=2"), "\\#1\\=2");
        assert_eq!(escape("q\"\\"), "q\\\"\\\\");
    }
}
