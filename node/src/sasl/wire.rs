//! The SASL records on the client wire: a request frame is `RequestHeader {xid, type=102}`
//! then `GetSASLRequest {buffer token}`; the answer `ReplyHeader {xid, zxid=0, err}` then
//! `SetSASLResponse {buffer token}` (a null buffer, length -1, when there is none).

/// ZooKeeper's `OpCode.sasl`.
pub const OP_SASL: i32 = 102;

/// Is this request frame (without its length prefix) a SASL request?
pub fn is_sasl(frame: &[u8]) -> bool {
    frame.len() >= 8 && i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]) == OP_SASL
}

/// The xid and the client's token of a SASL request frame; `None` if it does not decode
/// (a null token reads as empty, as Java's `GetSASLRequest` hands it on).
pub fn decode_request(frame: &[u8]) -> Option<(i32, Vec<u8>)> {
    let int = |at: usize| -> Option<i32> {
        let b = frame.get(at..at + 4)?;
        Some(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    };
    let xid = int(0)?;
    if int(4)? != OP_SASL {
        return None;
    }
    let len = int(8)?;
    let token = if len < 0 {
        Vec::new()
    } else {
        frame.get(12..12 + len as usize)?.to_vec()
    };
    // nothing may follow the record
    let end = 12 + len.max(0) as usize;
    (frame.len() == end).then_some((xid, token))
}

/// A whole reply frame, length prefix included.
pub fn encode_reply(xid: i32, err: i32, token: Option<&[u8]>) -> Vec<u8> {
    let mut body = Vec::with_capacity(24 + token.map_or(0, <[u8]>::len));
    body.extend_from_slice(&xid.to_be_bytes());
    body.extend_from_slice(&0i64.to_be_bytes());
    body.extend_from_slice(&err.to_be_bytes());
    match token {
        Some(t) => {
            body.extend_from_slice(&(t.len() as i32).to_be_bytes());
            body.extend_from_slice(t);
        }
        None => body.extend_from_slice(&(-1i32).to_be_bytes()),
    }
    let mut out = (body.len() as i32).to_be_bytes().to_vec();
    out.extend_from_slice(&body);
    out
}

/// A reply header alone (what enforcement sends before closing: no record follows).
pub fn encode_header(xid: i32, err: i32) -> Vec<u8> {
    let mut out = 16i32.to_be_bytes().to_vec();
    out.extend_from_slice(&xid.to_be_bytes());
    out.extend_from_slice(&0i64.to_be_bytes());
    out.extend_from_slice(&err.to_be_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_of_the_records() {
        let mut f = 7i32.to_be_bytes().to_vec();
        f.extend_from_slice(&OP_SASL.to_be_bytes());
        f.extend_from_slice(&3i32.to_be_bytes());
        f.extend_from_slice(b"abc");
        assert!(is_sasl(&f));
        assert_eq!(decode_request(&f), Some((7, b"abc".to_vec())));
        let mut trailing = f.clone();
        trailing.push(0);
        assert_eq!(decode_request(&trailing), None);
        assert_eq!(decode_request(&f[..f.len() - 1]), None);
        let mut null = 1i32.to_be_bytes().to_vec();
        null.extend_from_slice(&OP_SASL.to_be_bytes());
        null.extend_from_slice(&(-1i32).to_be_bytes());
        assert_eq!(decode_request(&null), Some((1, vec![])));
        let r = encode_reply(7, 0, Some(b"xy"));
        assert_eq!(&r[..4], &22i32.to_be_bytes());
        assert_eq!(&r[4..8], &7i32.to_be_bytes());
        assert_eq!(&r[20..24], &2i32.to_be_bytes());
        let failed = encode_reply(7, -115, None);
        assert_eq!(&failed[16..20], &(-115i32).to_be_bytes());
        assert_eq!(&failed[20..24], &(-1i32).to_be_bytes());
        assert_eq!(encode_header(3, -124).len(), 20);
    }
}
