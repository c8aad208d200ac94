//! A small HTTP/1.1 server for the AdminServer and the `/metrics` endpoint: a thread accepting
//! connections, a thread per connection (at most [`MAX_CONNECTIONS`] at once), keep-alive
//! until the idle timeout. The listener is an [`Acceptor`], so that a TLS layer can wrap the
//! stream without the handlers knowing.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Connections served at once; more are closed at accept (a scraper or curl needs one).
pub const MAX_CONNECTIONS: usize = 64;
/// The request line and headers; ZooKeeper's Jetty takes 8 KiB.
const MAX_HEAD: usize = 16 * 1024;

/// Where connections come from.
pub trait Acceptor: Send + 'static {
    type Stream: Read + Write + Send + 'static;
    fn accept(&self) -> io::Result<(Self::Stream, SocketAddr)>;
    /// A read that waits longer than `idle` fails (the connection is then closed).
    fn set_idle(stream: &Self::Stream, idle: Duration) -> io::Result<()>;
}

impl Acceptor for TcpListener {
    type Stream = TcpStream;
    fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        TcpListener::accept(self)
    }
    fn set_idle(stream: &TcpStream, idle: Duration) -> io::Result<()> {
        stream.set_read_timeout(Some(idle.max(Duration::from_millis(1))))
    }
}

#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// The path, percent-decoded, without the query.
    pub path: String,
    /// Query parameters (and form parameters of a urlencoded POST), the first of each name.
    pub params: BTreeMap<String, String>,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub peer: SocketAddr,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    /// Headers beyond the type and length.
    pub headers: Vec<(String, String)>,
}

impl Response {
    pub fn new(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            content_type,
            body: body.into(),
            headers: Vec::new(),
        }
    }
}

pub type Handler = Arc<dyn Fn(&Request) -> Response + Send + Sync>;

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Payload Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "",
    }
}

/// Serve on its own threads until the process ends; `name` names the threads and the log lines.
pub fn serve<A: Acceptor>(
    acceptor: A,
    name: &'static str,
    idle: Duration,
    max_body: usize,
    handler: Handler,
) -> io::Result<()> {
    let live = Arc::new(AtomicUsize::new(0));
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            loop {
                let (stream, peer) = match acceptor.accept() {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::debug!("{name}: accept: {e}");
                        std::thread::sleep(Duration::from_millis(50));
                        continue;
                    }
                };
                if live.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
                    live.fetch_sub(1, Ordering::SeqCst);
                    tracing::warn!("{name}: {MAX_CONNECTIONS} connections open; closing {peer}");
                    continue;
                }
                if let Err(e) = A::set_idle(&stream, idle) {
                    tracing::debug!("{name}: {peer}: {e}");
                }
                let (live, handler) = (live.clone(), handler.clone());
                let spawned = std::thread::Builder::new()
                    .name(format!("{name}-conn"))
                    .spawn(move || {
                        if let Err(e) = connection(stream, peer, max_body, &handler) {
                            tracing::debug!("{name}: {peer}: {e}");
                        }
                        live.fetch_sub(1, Ordering::SeqCst);
                    });
                if spawned.is_err() {
                    // The closure (and the stream) is gone with the error; count it out.
                    tracing::warn!("{name}: cannot start a thread for {peer}");
                }
            }
        })?;
    Ok(())
}

/// Requests on one connection until it closes, asks to, or stays idle.
fn connection<S: Read + Write>(
    mut stream: S,
    peer: SocketAddr,
    max_body: usize,
    handler: &Handler,
) -> io::Result<()> {
    let mut buf: Vec<u8> = Vec::new();
    loop {
        let (req, keep) = match read_request(&mut stream, &mut buf, peer, max_body)? {
            Parsed::Closed => return Ok(()),
            Parsed::Bad(status, why) => {
                write_response(
                    &mut stream,
                    &Response::new(status, "text/plain", why),
                    false,
                )?;
                return Ok(());
            }
            Parsed::Request(r, keep) => (r, keep),
        };
        let resp = handler(&req);
        write_response(&mut stream, &resp, keep)?;
        if !keep {
            return Ok(());
        }
    }
}

enum Parsed {
    Closed,
    Bad(u16, String),
    Request(Request, bool),
}

fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

fn read_request<S: Read>(
    stream: &mut S,
    buf: &mut Vec<u8>,
    peer: SocketAddr,
    max_body: usize,
) -> io::Result<Parsed> {
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(e) = find_head_end(buf) {
            break e;
        }
        if buf.len() > MAX_HEAD {
            return Ok(Parsed::Bad(431, "request head too large".into()));
        }
        let n = match stream.read(&mut chunk) {
            Ok(0) => return Ok(Parsed::Closed),
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Ok(Parsed::Closed);
            }
            Err(e) => return Err(e),
        };
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let line = lines.next().unwrap_or_default();
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Ok(Parsed::Bad(400, format!("bad request line: {line}")));
    };
    if !version.starts_with("HTTP/1.") {
        return Ok(Parsed::Bad(400, format!("unsupported version {version}")));
    }
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let get = |n: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(n))
            .map(|(_, v)| v.clone())
    };
    if get("transfer-encoding").is_some() {
        return Ok(Parsed::Bad(
            501,
            "chunked request bodies are not taken".into(),
        ));
    }
    let len = match get("content-length").map(|v| v.parse::<usize>()) {
        None => 0,
        Some(Ok(n)) => n,
        Some(Err(_)) => return Ok(Parsed::Bad(400, "bad Content-Length".into())),
    };
    if len > max_body {
        return Ok(Parsed::Bad(413, format!("bodies up to {max_body} bytes")));
    }
    while buf.len() < head_end + len {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Ok(Parsed::Closed);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = buf[head_end..head_end + len].to_vec();
    buf.drain(..head_end + len);
    let connection = get("connection").unwrap_or_default().to_ascii_lowercase();
    let keep = if version == "HTTP/1.0" {
        connection == "keep-alive"
    } else {
        connection != "close"
    };
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut params = BTreeMap::new();
    let form =
        get("content-type").is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
    for q in [query.as_bytes(), if form { &body[..] } else { &[] }] {
        for pair in String::from_utf8_lossy(q)
            .split('&')
            .filter(|p| !p.is_empty())
        {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            params.entry(decode(k)).or_insert_with(|| decode(v));
        }
    }
    Ok(Parsed::Request(
        Request {
            method: method.to_string(),
            path: decode(path),
            params,
            headers,
            body,
            peer,
        },
        keep,
    ))
}

/// Percent-decoding (`+` is a space, as in a form).
pub fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = |c: u8| (c as char).to_digit(16);
                match (hex(b[i + 1]), hex(b[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn write_response<S: Write>(stream: &mut S, r: &Response, keep: bool) -> io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n",
        r.status,
        reason(r.status),
        r.content_type,
        r.body.len()
    );
    for (k, v) in &r.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !keep {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(&r.body)?;
    stream.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str) -> Parsed {
        let mut buf = Vec::new();
        read_request(
            &mut raw.as_bytes(),
            &mut buf,
            "127.0.0.1:1".parse().unwrap(),
            1024,
        )
        .unwrap()
    }

    #[test]
    fn parses_a_get_with_parameters() {
        let Parsed::Request(r, keep) =
            parse("GET /commands/stmk?traceMask=7&x=a%20b+c HTTP/1.1\r\nHost: h\r\n\r\n")
        else {
            panic!()
        };
        assert!(keep);
        assert_eq!(r.path, "/commands/stmk");
        assert_eq!(r.params["traceMask"], "7");
        assert_eq!(r.params["x"], "a b c");
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        assert!(matches!(parse("GARBAGE\r\n\r\n"), Parsed::Bad(400, _)));
        assert!(matches!(
            parse("POST / HTTP/1.1\r\nContent-Length: 99999\r\n\r\n"),
            Parsed::Bad(413, _)
        ));
        assert!(matches!(parse("GET / HTTP/1.1\r\n"), Parsed::Closed));
        assert_eq!(decode("%zz%41"), "%zzA");
    }
}
