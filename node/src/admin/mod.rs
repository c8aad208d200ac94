//! The AdminServer: ZooKeeper's HTTP interface to its commands (`admin.*` settings), on
//! threads of its own. `GET` (or `POST`) `{commandURL}/NAME` runs a command by any of its
//! names and answers JSON; `{commandURL}` lists the commands as links. The commands run on the
//! core thread ([`commands::run`]), reached through the runtime's input channel as the
//! four-letter words are.

pub mod backup;
pub mod commands;
pub mod http;
pub mod json;

use crate::runtime::Input;
use http::{Request, Response};
use json::Json;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// The `admin.*` settings (zoo.cfg or `-Dzookeeper.admin.*`), with ZooKeeper's defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdminConfig {
    /// `admin.enableServer` (true).
    pub enabled: bool,
    /// `admin.serverAddress` (0.0.0.0).
    pub address: String,
    /// `admin.serverPort` (8080).
    pub port: u16,
    /// `admin.commandURL` (/commands).
    pub command_url: String,
    /// `admin.idleTimeout` in ms (30000): a connection idle that long is closed.
    pub idle_timeout_ms: u64,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            enabled: true,
            address: "0.0.0.0".into(),
            port: 8080,
            command_url: "/commands".into(),
            idle_timeout_ms: 30_000,
        }
    }
}

/// Request bodies taken (no 3.8 command reads one).
const MAX_BODY: usize = 64 * 1024;

/// The AdminServer's listener: bound where the settings say. ZooKeeper logs a failure to start
/// its AdminServer and goes on serving clients; so does this (the caller warns).
pub fn bind(cfg: &AdminConfig) -> std::io::Result<std::net::TcpListener> {
    std::net::TcpListener::bind((cfg.address.as_str(), cfg.port))
}

/// Serve on `acceptor` (a bound listener, or a TLS layer over one) until the process ends.
/// `super_digest`: DigestAuthenticationProvider.superDigest, which passes the checks of the
/// commands behind authentication.
pub fn start<A: http::Acceptor>(
    acceptor: A,
    cfg: &AdminConfig,
    super_digest: Option<String>,
    input: mpsc::Sender<Input>,
) -> std::io::Result<()> {
    let url = cfg.command_url.trim_end_matches('/').to_string();
    let handler: http::Handler =
        Arc::new(move |req: &Request| handle(&url, req, super_digest.as_deref(), &input));
    http::serve(
        acceptor,
        "admin",
        Duration::from_millis(cfg.idle_timeout_ms),
        MAX_BODY,
        handler,
    )
}

/// ZooKeeper's list at the command URL: a link per primary name, sorted.
fn command_links(url: &str) -> String {
    let mut names: Vec<&str> = commands::COMMANDS.iter().map(|c| c.0).collect();
    names.sort_unstable();
    names
        .iter()
        .map(|n| format!("<a href=\"{url}/{n}\">{n}</a>\n<br/>\n"))
        .collect()
}

fn json(j: &Json) -> Response {
    Response::new(200, "application/json", j.pretty())
}

fn handle(
    url: &str,
    req: &Request,
    super_digest: Option<&str>,
    input: &mpsc::Sender<Input>,
) -> Response {
    if req.method != "GET" && req.method != "POST" {
        return Response::new(405, "text/plain", format!("{} is not allowed", req.method));
    }
    let rest = if url.is_empty() {
        Some(req.path.as_str())
    } else {
        req.path.strip_prefix(url)
    };
    let name = match rest {
        Some("") | Some("/") => return Response::new(200, "text/html", command_links(url)),
        Some(r) if r.starts_with('/') => &r[1..],
        _ => return Response::new(404, "text/plain", "Not Found"),
    };
    let Some(primary) = commands::primary(name) else {
        return json(&commands::unknown(name));
    };
    if primary == backup::SNAPSHOT || primary == backup::RESTORE {
        return guarded(primary, req, super_digest, input);
    }
    let (tx, rx) = oneshot::channel();
    let asked = input.blocking_send(Input::Admin {
        command: primary,
        params: req.params.clone(),
        reply: tx,
    });
    match asked.ok().and_then(|_| rx.blocking_recv().ok()) {
        Some(answer) => json(&answer),
        None => json(&commands::response(
            primary,
            Some(commands::NOT_SERVING.into()),
        )),
    }
}

/// `snapshot` and `restore`: authenticated here, authorised and taken on the core thread.
fn guarded(
    primary: &'static str,
    req: &Request,
    super_digest: Option<&str>,
    input: &mpsc::Sender<Input>,
) -> Response {
    let method = if primary == backup::SNAPSHOT {
        "GET"
    } else {
        "POST"
    };
    if req.method != method {
        return Response::new(405, "text/plain", format!("{primary} takes {method}"));
    }
    let ids = match backup::authenticate(req, super_digest) {
        Ok(ids) => ids,
        Err((status, why)) => return backup::refusal(primary, status, why),
    };
    let (tx, rx) = oneshot::channel();
    let asked = input.blocking_send(Input::AdminGuarded {
        command: primary,
        ids,
        reply: tx,
    });
    let taken = match asked.ok().and_then(|_| rx.blocking_recv().ok()) {
        Some(t) => t,
        None => Err((200, commands::NOT_SERVING.to_string())),
    };
    if primary == backup::RESTORE {
        return match taken {
            Ok(_) => backup::restore_refused(),
            Err((status, why)) => backup::refusal(primary, status, why),
        };
    }
    // ZooKeeper streams unless told `streaming=false`.
    let streaming = req
        .params
        .get("streaming")
        .is_none_or(|v| !v.eq_ignore_ascii_case("false"));
    backup::snapshot_response(taken, streaming)
}
