//! `petrel-bench connections`: what an idle connection costs a broker. Some connections carry
//! a load first (pipelined sends of large bodies fill their buffers), then they and many more
//! sit idle; the broker's resident memory (VmRSS of its process, on this host) is read before
//! and once it has settled, and an honest client's sends are timed among the idle crowd.

use std::io::Write;
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use hdrhistogram::Histogram;
use petrel::client::pipeline::{FrameReader, SendTemplate};
use petrel_shards::remoting::response;
use serde::Serialize;

pub struct Plan<'a> {
    /// The broker (a shard's client port) the connections go to.
    pub broker: &'a str,
    /// The broker's process id, whose VmRSS is read.
    pub pid: u32,
    /// An existing topic with queue 0 on `broker`.
    pub topic: &'a str,
    pub loaded: usize,
    pub idle: usize,
    /// Pipelined sends per loaded connection, and their body size.
    pub sends: usize,
    pub body_bytes: usize,
    /// How long to wait at most for the broker to give idle buffers back.
    pub settle: Duration,
}

#[derive(Serialize)]
pub struct Report {
    pub connections: usize,
    pub loaded: usize,
    /// Of `connections`, those the broker still held after the settle time; the others it
    /// closed (its connection cap, an idle timeout shorter than the settle time).
    pub held: usize,
    pub rss_before_kib: u64,
    pub rss_idle_kib: u64,
    /// (idle RSS − RSS before) / held connections.
    pub bytes_per_connection: u64,
    /// An honest client's send latency among the idle connections, in ms.
    pub honest_send_p50_ms: f64,
    pub honest_send_max_ms: f64,
}

impl Report {
    pub fn markdown(&self) -> String {
        format!(
            "| connections | of which loaded | held by the broker | RSS before | RSS idle | bytes per held connection | honest send p50 / max |\n|---|---|---|---|---|---|---|\n| {} | {} | {} | {} KiB | {} KiB | {} | {:.2} / {:.2} ms |",
            self.connections,
            self.loaded,
            self.held,
            self.rss_before_kib,
            self.rss_idle_kib,
            self.bytes_per_connection,
            self.honest_send_p50_ms,
            self.honest_send_max_ms
        )
    }

    pub fn write(&self, out: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
        let json = serde_json::to_vec_pretty(self).expect("report serializes");
        std::fs::write(out.join("connections.json"), json)?;
        std::fs::write(out.join("connections.md"), self.markdown() + "\n")?;
        Ok(())
    }
}

fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status (is the broker on this host?)"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no VmRSS in /proc/{pid}/status"))
}

/// Sends `count` messages of `body` pipelined on `stream` and waits for every answer.
fn load(stream: TcpStream, plan: &Plan<'_>, id: u64, body: &[u8]) -> anyhow::Result<TcpStream> {
    let mut writer = stream.try_clone()?;
    let mut template = SendTemplate::new("petrel_bench_idle", plan.topic, 0, false, id);
    let mut out = Vec::new();
    for seq in 0..plan.sends as u64 {
        template.encode(&mut out, seq as i32, 0, seq, 1, body);
    }
    writer.write_all(&out)?;
    let mut reader = FrameReader::new(stream);
    for _ in 0..plan.sends {
        let code = reader.next_frame()?.code;
        if code != response::SUCCESS {
            bail!("a loading send was answered code {code}");
        }
    }
    Ok(writer)
}

/// Whether the broker still holds `stream`: a read would wait, not see the end or a reset.
fn still_open(stream: &TcpStream) -> bool {
    if stream.set_nonblocking(true).is_err() {
        return false;
    }
    let open = matches!(
        stream.peek(&mut [0u8; 1]),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock
    );
    let _ = stream.set_nonblocking(false);
    open
}

/// Times one send on a connection of its own.
fn honest_send(plan: &Plan<'_>, seq: u64) -> anyhow::Result<Duration> {
    let stream = TcpStream::connect(plan.broker)?;
    let mut writer = stream.try_clone()?;
    let mut template = SendTemplate::new("petrel_bench_honest", plan.topic, 0, false, seq);
    let mut out = Vec::new();
    template.encode(&mut out, 0, 0, seq, 1, b"honest");
    let started = Instant::now();
    writer.write_all(&out)?;
    let code = FrameReader::new(stream).next_frame()?.code;
    if code != response::SUCCESS {
        bail!("an honest send was answered code {code}");
    }
    Ok(started.elapsed())
}

pub fn measure(plan: &Plan<'_>) -> anyhow::Result<Report> {
    honest_send(plan, u64::MAX)?;
    std::thread::sleep(Duration::from_millis(500));
    let before = rss_kib(plan.pid)?;
    let body = vec![b'l'; plan.body_bytes];
    let mut open = Vec::with_capacity(plan.loaded + plan.idle);
    for i in 0..plan.loaded {
        let stream = TcpStream::connect(plan.broker).context("connecting")?;
        open.push(load(stream, plan, i as u64, &body)?);
    }
    for _ in 0..plan.idle {
        open.push(TcpStream::connect(plan.broker).context("connecting")?);
    }
    let connections = open.len();
    // The lowest reading within the settle time: buffers go back after a second idle.
    let deadline = Instant::now() + plan.settle;
    let mut idle = rss_kib(plan.pid)?;
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        idle = idle.min(rss_kib(plan.pid)?);
    }
    let held = open.iter().filter(|s| still_open(s)).count();
    let mut latency = Histogram::<u64>::new(3).expect("histogram bounds");
    for seq in 0..20 {
        let took = honest_send(plan, seq).with_context(|| {
            format!("an honest send, with {held} of the {connections} connections held by the broker (past its connection cap a new one is closed)")
        })?;
        latency.record(took.as_micros() as u64).expect("in range");
    }
    drop(open);
    Ok(Report {
        connections,
        loaded: plan.loaded,
        held,
        rss_before_kib: before,
        rss_idle_kib: idle,
        bytes_per_connection: idle.saturating_sub(before) * 1024 / held.max(1) as u64,
        honest_send_p50_ms: latency.value_at_quantile(0.5) as f64 / 1000.0,
        honest_send_max_ms: latency.max() as f64 / 1000.0,
    })
}
