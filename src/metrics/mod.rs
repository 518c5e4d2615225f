//! The Prometheus exporter (`metricsExporterType=PROM`): `GET /metrics` on
//! `metricsPromExporterHost:metricsPromExporterPort` (5557, as RocketMQ's).
//!
//! It runs on a thread of its own, off the shards: hyper on a one-thread tokio runtime. The
//! shards never share state with it; each sends a copy of its figures every second over a
//! channel (`petrel_shards::broker::metrics`), and a scrape renders the latest copy of each.

mod render;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::mpsc::{Receiver, Sender};
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, Response, StatusCode};
use petrel_shards::broker::metrics::ShardMetrics;

pub use render::render;

/// How often the shards' copies are taken off the channel.
const DRAIN_EVERY: Duration = petrel_shards::broker::metrics::PUBLISH_EVERY;
/// A request's headers must arrive within this.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The latest figures of each shard.
struct Latest {
    from_shards: Receiver<ShardMetrics>,
    by_shard: BTreeMap<usize, ShardMetrics>,
}

impl Latest {
    /// Keeps the newest copy of each shard's figures and drops the rest.
    fn drain(&mut self) {
        while let Ok(m) = self.from_shards.try_recv() {
            self.by_shard.insert(m.shard, m);
        }
    }

    fn take(&mut self) -> Vec<ShardMetrics> {
        self.drain();
        self.by_shard.values().cloned().collect()
    }
}

/// Binds `addr` and serves metrics from a thread of its own: the channel the shards send
/// their figures to, and the address bound.
pub fn start(addr: SocketAddr) -> anyhow::Result<(Sender<ShardMetrics>, SocketAddr)> {
    let listener = std::net::TcpListener::bind(addr)
        .with_context(|| format!("metricsPromExporterPort: cannot listen on {addr}"))?;
    listener.set_nonblocking(true)?;
    let bound = listener.local_addr()?;
    let (to_exporter, from_shards) = std::sync::mpsc::channel();
    let latest = Latest {
        from_shards,
        by_shard: BTreeMap::new(),
    };
    std::thread::Builder::new()
        .name("petrel-metrics".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a one-thread runtime starts");
            let local = tokio::task::LocalSet::new();
            if let Err(e) = local.block_on(&runtime, serve(listener, latest)) {
                log::error!("metrics exporter stopped: {e}");
            }
        })?;
    log::info!("metrics: Prometheus exporter on http://{bound}/metrics");
    Ok((to_exporter, bound))
}

async fn serve(listener: std::net::TcpListener, latest: Latest) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let latest = Rc::new(RefCell::new(latest));
    // Drained every second whether or not anyone scrapes: the channel never holds more
    // than a second of copies.
    let draining = latest.clone();
    tokio::task::spawn_local(async move {
        loop {
            tokio::time::sleep(DRAIN_EVERY).await;
            draining.borrow_mut().drain();
        }
    });
    let mut failures = 0u32;
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                failures += 1;
                if failures.is_power_of_two() {
                    log::warn!("metrics: accept failed ({failures} times): {e}");
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let latest = latest.clone();
        tokio::task::spawn_local(async move {
            let service = hyper::service::service_fn(move |req| {
                let reply = answer(&latest, &req);
                async move { Ok::<_, Infallible>(reply) }
            });
            let served = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
            if let Err(e) = served {
                log::debug!("metrics: connection: {e}");
            }
        });
    }
}

fn answer<B>(latest: &RefCell<Latest>, req: &Request<B>) -> Response<Full<Bytes>> {
    let reply = |status: StatusCode, kind: &str, body: String| {
        Response::builder()
            .status(status)
            .header("content-type", kind)
            .body(Full::new(Bytes::from(body)))
            .expect("a valid response")
    };
    let text = "text/plain; charset=utf-8";
    match (req.method(), req.uri().path()) {
        (&Method::GET, "/metrics") => {
            let shards = latest.borrow_mut().take();
            reply(StatusCode::OK, CONTENT_TYPE, render(shards))
        }
        (_, "/metrics") => reply(
            StatusCode::METHOD_NOT_ALLOWED,
            text,
            format!("{} /metrics: only GET is served\n", req.method()),
        ),
        (_, path) => reply(
            StatusCode::NOT_FOUND,
            text,
            format!("no {path} here: metrics are at /metrics\n"),
        ),
    }
}
