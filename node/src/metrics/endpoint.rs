//! ZooKeeper's `PrometheusMetricsProvider` endpoint: `GET /metrics` on
//! `metricsProvider.httpHost:metricsProvider.httpPort`, on threads of its own. Each scrape asks
//! the core thread for [`super::monitor::gather`]'s samples, the same ones `mntr` prints.

use super::monitor::Sample;
use crate::admin::http::{self, Request, Response};
use crate::runtime::Input;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// The class name that turns the endpoint on (`metricsProvider.className`).
pub const PROMETHEUS_PROVIDER: &str =
    "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider";
/// ZooKeeper's default provider: the metrics are in `mntr` and `monitor` only.
pub const DEFAULT_PROVIDER: &str = "org.apache.zookeeper.metrics.impl.DefaultMetricsProvider";

/// `metricsProvider.httpHost` / `httpPort`, with ZooKeeper's defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetricsConfig {
    pub host: String,
    pub port: u16,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            host: "0.0.0.0".into(),
            port: 7000,
        }
    }
}

/// The endpoint's listener. ZooKeeper does not start when its provider cannot listen; neither
/// does this (the caller fails the start, naming the address).
pub fn bind(cfg: &MetricsConfig) -> std::io::Result<std::net::TcpListener> {
    std::net::TcpListener::bind((cfg.host.as_str(), cfg.port))
}

pub fn start<A: http::Acceptor>(acceptor: A, input: mpsc::Sender<Input>) -> std::io::Result<()> {
    let handler: http::Handler = Arc::new(move |req: &Request| handle(req, &input));
    // Prometheus keeps its connection open between scrapes.
    http::serve(acceptor, "metrics", Duration::from_secs(300), 0, handler)
}

fn handle(req: &Request, input: &mpsc::Sender<Input>) -> Response {
    if req.method != "GET" {
        return Response::new(405, "text/plain", format!("{} is not allowed", req.method));
    }
    // ZooKeeper's servlet answers on every path of the port; Prometheus asks /metrics.
    let (tx, rx) = oneshot::channel::<Vec<Sample>>();
    let samples = input
        .blocking_send(Input::Metrics { reply: tx })
        .ok()
        .and_then(|_| rx.blocking_recv().ok());
    let Some(samples) = samples else {
        return Response::new(503, "text/plain", "the server is stopping");
    };
    match super::prometheus::encode(&samples) {
        Ok(body) => Response::new(200, super::prometheus::CONTENT_TYPE, body),
        Err(e) => Response::new(500, "text/plain", e.to_string()),
    }
}
