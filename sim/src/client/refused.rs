//! Request frames a server cannot decode, as a buggy or newer client sends them, with what
//! Apache ZooKeeper 3.8 answers each (the client judges the answer by these, `client.refused`;
//! the world runs the node's own triage, `jute::triage_request`, to turn the frame into what
//! the core sees). Facts from ZooKeeper's request path: an opcode `Request.isValid` does not
//! know goes to `UnimplementedRequestProcessor` (UNIMPLEMENTED, then `sendCloseSession`, which
//! closes the connection and leaves the session to its timeout); `CreateMode.fromFlag` throws
//! BADARGUMENTS for unknown flags; a body `FinalRequestProcessor` cannot deserialize is
//! answered MARSHALLINGERROR.

use ensemble_proto::proto::KeeperError;

/// One undecodable request: its opcode and body (the xid goes in front when it is sent).
#[derive(Clone, Debug)]
pub(crate) struct BadFrame {
    pub(crate) what: &'static str,
    pub(crate) opcode: i32,
    pub(crate) body: Vec<u8>,
    /// ZooKeeper's answer, and whether it closes the connection after it.
    pub(crate) expect: KeeperError,
    pub(crate) close: bool,
}

impl BadFrame {
    /// The frame as it goes on the wire, without its length prefix.
    pub(crate) fn frame(&self, xid: i32) -> Vec<u8> {
        let mut f = Vec::with_capacity(8 + self.body.len());
        f.extend_from_slice(&xid.to_be_bytes());
        f.extend_from_slice(&self.opcode.to_be_bytes());
        f.extend_from_slice(&self.body);
        f
    }
}

fn string(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as i32).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// The `n`th kind (the caller's counter picks it, no draw), about `path`.
pub(crate) fn bad_frame(n: u64, path: &str) -> BadFrame {
    match n % 4 {
        0 => {
            let mut body = Vec::new();
            string(&mut body, path);
            BadFrame {
                what: "an unknown opcode",
                opcode: 999,
                body,
                expect: KeeperError::Unimplemented,
                close: true,
            }
        }
        1 => {
            // the container reaper's own op, which no client may send
            let mut body = Vec::new();
            string(&mut body, path);
            BadFrame {
                what: "deleteContainer",
                opcode: 20,
                body,
                expect: KeeperError::BadArguments,
                close: false,
            }
        }
        2 => {
            // create: path, data, one world:anyone ACL, flags no CreateMode has
            let mut body = Vec::new();
            string(&mut body, path);
            body.extend_from_slice(&3i32.to_be_bytes());
            body.extend_from_slice(b"bad");
            body.extend_from_slice(&1i32.to_be_bytes());
            body.extend_from_slice(&31i32.to_be_bytes());
            string(&mut body, "world");
            string(&mut body, "anyone");
            body.extend_from_slice(&99i32.to_be_bytes());
            BadFrame {
                what: "a create with unknown flags",
                opcode: 1,
                body,
                expect: KeeperError::BadArguments,
                close: false,
            }
        }
        _ => {
            // getData whose path string claims more bytes than the frame holds
            let mut body = Vec::new();
            body.extend_from_slice(&((path.len() + 40) as i32).to_be_bytes());
            body.extend_from_slice(path.as_bytes());
            BadFrame {
                what: "a truncated getData",
                opcode: 4,
                body,
                expect: KeeperError::MarshallingError,
                close: false,
            }
        }
    }
}
