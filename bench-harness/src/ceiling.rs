//! This machine's limits, measured the same day as the runs they sit beside: sequential
//! append to the store's filesystem (no fsync, and fdatasync per 256 KiB group) and loopback
//! TCP (one stream's throughput; ping-pong round trips per message size). Rates in messages
//! per second count the bytes each message really costs: its stored record for the disk, its
//! SEND_MESSAGE_V2 request frame for the network.

use std::fmt::Write as _;
use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use petrel::client::pipeline::SendTemplate;
use petrel_shards::record::{self, MessageToStore};
use serde::Serialize;

use crate::collect::latency_histogram;
use crate::report::{git_commit, host, Host};

const CHUNK: usize = 256 << 10;
const FILE_BYTES: u64 = 256 << 20;
/// The ack a broker sends back, roughly.
const PONG_BYTES: usize = 200;

#[derive(Debug, Serialize)]
pub struct Throughput {
    pub mib_per_sec: f64,
}

#[derive(Debug, Serialize)]
pub struct PerSize {
    pub message_size: usize,
    pub record_bytes: usize,
    pub request_bytes: usize,
    pub disk_no_fsync_msgs_per_sec: f64,
    pub disk_group_fsync_msgs_per_sec: f64,
    pub tcp_stream_msgs_per_sec: f64,
    pub ping_pong_p50_ms: f64,
    pub ping_pong_p99_ms: f64,
    pub ping_pong_round_trips_per_sec: f64,
}

#[derive(Debug, Serialize)]
pub struct Ceiling {
    pub dir: String,
    pub host: Host,
    pub git_commit: String,
    pub seconds_per_measurement: f64,
    pub disk_no_fsync: Throughput,
    pub disk_group_fsync: Throughput,
    pub group_bytes: usize,
    pub tcp_stream: Throughput,
    pub sizes: Vec<PerSize>,
}

pub fn measure(dir: &Path, sizes: &[usize], seconds: f64) -> anyhow::Result<Ceiling> {
    anyhow::ensure!(seconds > 0.0, "--seconds must be more than 0");
    anyhow::ensure!(!sizes.is_empty(), "--sizes needs at least one size");
    let span = Duration::from_secs_f64(seconds);
    let path = dir.join(format!("petrel-bench-ceiling-{}.tmp", std::process::id()));
    let disk = (|| {
        let no_fsync = append(&path, span, false)?;
        let group_fsync = append(&path, span, true)?;
        anyhow::Ok((no_fsync, group_fsync))
    })();
    let _ = std::fs::remove_file(&path);
    let (no_fsync, group_fsync) =
        disk.with_context(|| format!("appending to {}", path.display()))?;
    let tcp = stream(span).context("loopback TCP streaming")?;
    let mut per_size = Vec::new();
    for &size in sizes {
        let (p50, p99, rate) = ping_pong(size, span).context("loopback TCP ping-pong")?;
        let record_bytes = record_bytes(size);
        let request_bytes = request_bytes(size);
        let msgs = |mib: f64, each: usize| mib * (1 << 20) as f64 / each as f64;
        per_size.push(PerSize {
            message_size: size,
            record_bytes,
            request_bytes,
            disk_no_fsync_msgs_per_sec: msgs(no_fsync, record_bytes),
            disk_group_fsync_msgs_per_sec: msgs(group_fsync, record_bytes),
            tcp_stream_msgs_per_sec: msgs(tcp, request_bytes),
            ping_pong_p50_ms: p50,
            ping_pong_p99_ms: p99,
            ping_pong_round_trips_per_sec: rate,
        });
    }
    Ok(Ceiling {
        dir: dir.display().to_string(),
        host: host(),
        git_commit: git_commit(),
        seconds_per_measurement: seconds,
        disk_no_fsync: Throughput {
            mib_per_sec: no_fsync,
        },
        disk_group_fsync: Throughput {
            mib_per_sec: group_fsync,
        },
        group_bytes: CHUNK,
        tcp_stream: Throughput { mib_per_sec: tcp },
        sizes: per_size,
    })
}

/// The stored size of one of this harness's messages (topic and properties as it sends them).
fn record_bytes(size: usize) -> usize {
    let body = vec![0u8; size];
    let host: SocketAddr = "127.0.0.1:1".parse().expect("an address");
    let props = format!("UNIQ_KEY\u{1}{}\u{2}WAIT\u{1}true\u{2}", "0".repeat(32));
    record::encoded_len(&MessageToStore {
        topic: "pb00000000000000-max-rate-1-topic-16-partitions-1kb-0",
        queue_id: 0,
        flag: 0,
        sys_flag: 0,
        born_timestamp: 0,
        born_host: host,
        store_timestamp: 0,
        store_host: host,
        reconsume_times: 0,
        prepared_transaction_offset: 0,
        body: &body,
        properties: &props,
    })
}

fn request_bytes(size: usize) -> usize {
    let mut out = Vec::new();
    let topic = "pb00000000000000-max-rate-1-topic-16-partitions-1kb-0";
    SendTemplate::new("pb00000000000000-producer", topic, 0, false, 1).encode(
        &mut out,
        1_000_000,
        1_700_000_000_000,
        1,
        1,
        &vec![0u8; size],
    );
    out.len()
}

/// MiB/s of 256 KiB appends for `span`, into a preallocated file (as store segments are),
/// wrapping to the start when full; with `fsync`, fdatasync after each append.
fn append(path: &Path, span: Duration, fsync: bool) -> anyhow::Result<f64> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(path)?;
    let chunk = vec![0x5Au8; CHUNK];
    let mut offset = 0u64;
    while offset < FILE_BYTES {
        file.write_all_at(&chunk, offset)?;
        offset += CHUNK as u64;
    }
    file.sync_all()?;
    let start = Instant::now();
    let mut written = 0u64;
    offset = 0;
    while start.elapsed() < span {
        file.write_all_at(&chunk, offset)?;
        if fsync {
            file.sync_data()?;
        }
        written += CHUNK as u64;
        offset = (offset + CHUNK as u64) % FILE_BYTES;
    }
    if !fsync {
        // The page cache takes writes faster than the disk; count the flush at the end too.
        file.sync_data()?;
    }
    Ok(written as f64 / (1 << 20) as f64 / start.elapsed().as_secs_f64())
}

fn stream(span: Duration) -> anyhow::Result<f64> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let sink = std::thread::spawn(move || -> std::io::Result<u64> {
        let (mut s, _) = listener.accept()?;
        let mut buf = vec![0u8; CHUNK];
        let mut total = 0u64;
        loop {
            match s.read(&mut buf)? {
                0 => return Ok(total),
                n => total += n as u64,
            }
        }
    });
    let mut s = TcpStream::connect(addr)?;
    let chunk = vec![0xA5u8; CHUNK];
    let start = Instant::now();
    while start.elapsed() < span {
        s.write_all(&chunk)?;
    }
    drop(s);
    let total = sink.join().expect("sink thread")?;
    Ok(total as f64 / (1 << 20) as f64 / start.elapsed().as_secs_f64())
}

/// One connection, one request of `size` bytes and one small answer at a time: the round
/// trip's p50 and p99 in ms, and round trips per second.
fn ping_pong(size: usize, span: Duration) -> anyhow::Result<(f64, f64, f64)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let echo = std::thread::spawn(move || -> std::io::Result<()> {
        let (mut s, _) = listener.accept()?;
        s.set_nodelay(true)?;
        let mut req = vec![0u8; size];
        let pong = [0u8; PONG_BYTES];
        loop {
            if s.read_exact(&mut req).is_err() {
                return Ok(());
            }
            s.write_all(&pong)?;
        }
    });
    let mut s = TcpStream::connect(addr)?;
    s.set_nodelay(true)?;
    let req = vec![0x33u8; size];
    let mut pong = [0u8; PONG_BYTES];
    let mut h = latency_histogram();
    let start = Instant::now();
    let mut trips = 0u64;
    while start.elapsed() < span {
        let t = Instant::now();
        s.write_all(&req)?;
        s.read_exact(&mut pong)?;
        h.saturating_record((t.elapsed().as_nanos() as u64 / 1000).max(1));
        trips += 1;
    }
    drop(s);
    echo.join().expect("echo thread")?;
    let ms = |q| h.value_at_quantile(q) as f64 / 1000.0;
    Ok((
        ms(0.5),
        ms(0.99),
        trips as f64 / start.elapsed().as_secs_f64(),
    ))
}

impl Ceiling {
    pub fn write(&self, out: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
        std::fs::write(
            out.join("ceiling.json"),
            serde_json::to_string_pretty(self)? + "\n",
        )?;
        std::fs::write(out.join("ceiling.md"), self.markdown())?;
        Ok(())
    }

    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "# Ceiling of this host ({}, {} CPUs), store dir {}\n",
            self.host.cpu_model, self.host.cpus, self.dir
        );
        let _ = writeln!(
            s,
            "Sequential append: {:.0} MiB/s without fsync, {:.0} MiB/s with fdatasync per {} KiB. \
             Loopback TCP stream: {:.0} MiB/s.\n",
            self.disk_no_fsync.mib_per_sec,
            self.disk_group_fsync.mib_per_sec,
            self.group_bytes >> 10,
            self.tcp_stream.mib_per_sec
        );
        let _ = writeln!(
            s,
            "| message | disk msg/s (no fsync) | disk msg/s (group fsync) | TCP msg/s | ping-pong p50 ms | p99 ms | round trips/s |\n|---:|---:|---:|---:|---:|---:|---:|"
        );
        for p in &self.sizes {
            let _ = writeln!(
                s,
                "| {} B | {:.0} | {:.0} | {:.0} | {:.3} | {:.3} | {:.0} |",
                p.message_size,
                p.disk_no_fsync_msgs_per_sec,
                p.disk_group_fsync_msgs_per_sec,
                p.tcp_stream_msgs_per_sec,
                p.ping_pong_p50_ms,
                p.ping_pong_p99_ms,
                p.ping_pong_round_trips_per_sec
            );
        }
        s
    }
}
