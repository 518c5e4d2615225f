//! A producer: one sending thread over one connection per broker, and one reading thread per
//! connection. The sender paces requests at their intended send times (constant-rate mode)
//! or keeps `inFlight` outstanding (max-rate mode); a request's latency runs from its
//! intended send time to its ack, so a stall shows up in the histogram however long it lasts
//! (no coordinated omission). Requests due at the same moment share one write.

use std::io::{ErrorKind, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::thread::{self, JoinHandle, Thread};
use std::time::Duration;

use petrel::client::pipeline::{FrameReader, SendTemplate};

use crate::collect::{Clock, Interval, Phase, Recorder};

pub struct ProducerSpec {
    pub id: u64,
    pub group: String,
    pub topic: String,
    /// Broker addresses; `queues` index into it.
    pub brokers: Vec<String>,
    /// (broker index, queue id), in the order requests go round-robin.
    pub queues: Vec<(usize, i32)>,
    /// Messages per second for this producer; 0 for as fast as acks come back.
    pub rate: f64,
    pub window: usize,
    pub batch: usize,
    pub message_size: usize,
}

/// State a connection's sender and reader share: send times by opaque, the count in flight.
struct Shared {
    intended_ns: Vec<AtomicU64>,
    in_flight: Arc<AtomicUsize>,
    sender: Thread,
    sender_waits: Arc<AtomicBool>,
}

const MAX_REQUESTS_PER_WRITE: usize = 64;

pub fn spawn(spec: ProducerSpec, clock: Arc<Clock>, tx: Sender<Interval>) -> JoinHandle<()> {
    thread::Builder::new()
        .name(format!("producer-{}", spec.id))
        .spawn(move || run(spec, clock, tx))
        .expect("spawning a producer thread")
}

fn run(spec: ProducerSpec, clock: Arc<Clock>, tx: Sender<Interval>) {
    let mut rec = Recorder::new(clock.clone(), tx.clone());
    let in_flight = Arc::new(AtomicUsize::new(0));
    let sender_waits = Arc::new(AtomicBool::new(false));
    let slots = (spec.window * 2).next_power_of_two();
    let mut conns = Vec::new();
    let mut readers = Vec::new();
    for addr in &spec.brokers {
        let stream = match TcpStream::connect(addr) {
            Ok(s) => s,
            Err(e) => {
                log::error!("producer {}: connecting to {addr}: {e}", spec.id);
                rec.error("connect", 1);
                rec.finish();
                return;
            }
        };
        let _ = stream.set_nodelay(true);
        let shared = Arc::new(Shared {
            intended_ns: (0..slots).map(|_| AtomicU64::new(0)).collect(),
            in_flight: in_flight.clone(),
            sender: thread::current(),
            sender_waits: sender_waits.clone(),
        });
        let read_half = stream.try_clone().expect("cloning a socket");
        let (clock, tx, shared2) = (clock.clone(), tx.clone(), shared.clone());
        let batch = spec.batch as u64;
        let bytes = (spec.message_size * spec.batch) as u64;
        readers.push(
            thread::Builder::new()
                .name(format!("acks-{}", spec.id))
                .spawn(move || read_acks(read_half, shared2, clock, tx, batch, bytes))
                .expect("spawning a reader thread"),
        );
        conns.push((stream, shared, Vec::<u8>::with_capacity(256 << 10), 0i32));
    }
    drop(tx);
    let mut templates: Vec<SendTemplate> = spec
        .queues
        .iter()
        .map(|(_, q)| SendTemplate::new(&spec.group, &spec.topic, *q, spec.batch > 1, spec.id))
        .collect();
    let mut body = vec![0u8; spec.message_size];
    fill_random(&mut body, spec.id);
    let request_interval_ns = if spec.rate > 0.0 {
        (1e9 * spec.batch as f64 / spec.rate) as u64
    } else {
        0
    };
    let start_ns = clock.now_ns();
    let mut next = 0u64; // requests issued
    let mut seq = 0u64;
    loop {
        if rec.tick() >= Phase::Drain {
            break;
        }
        let now = clock.now_ns();
        // Requests whose intended send time has come (all of them in max-rate mode).
        let due = (now - start_ns)
            .checked_div(request_interval_ns)
            .map_or(u64::MAX, |k| (k + 1).saturating_sub(next));
        let room = spec
            .window
            .saturating_sub(in_flight.load(Ordering::Acquire)) as u64;
        let n = due.min(room).min(MAX_REQUESTS_PER_WRITE as u64);
        if n == 0 {
            if due == 0 {
                let wake = start_ns + next * request_interval_ns;
                thread::sleep(Duration::from_nanos(wake.saturating_sub(now)));
            } else {
                // SeqCst pairs with the reader's decrement-then-check: one of the two sees
                // the other, so a wake-up is never lost.
                sender_waits.store(true, Ordering::SeqCst);
                if in_flight.load(Ordering::SeqCst) >= spec.window {
                    thread::park_timeout(Duration::from_millis(10));
                }
                sender_waits.store(false, Ordering::Release);
            }
            continue;
        }
        for _ in 0..n {
            let intended = if request_interval_ns == 0 {
                now
            } else {
                start_ns + next * request_interval_ns
            };
            let qi = (next % spec.queues.len() as u64) as usize;
            let (stream_idx, _) = spec.queues[qi];
            let (_, shared, buf, opaque) = &mut conns[stream_idx];
            let stamp = clock.unix_us(intended).to_be_bytes();
            let k = stamp.len().min(body.len());
            body[..k].copy_from_slice(&stamp[..k]);
            let born_ms = (clock.unix_us(now) / 1000) as i64;
            shared.intended_ns[*opaque as usize & (slots - 1)].store(intended, Ordering::Release);
            templates[qi].encode(buf, *opaque, born_ms, seq, spec.batch, &body);
            *opaque = opaque.wrapping_add(1) & i32::MAX;
            seq += spec.batch as u64;
            next += 1;
        }
        in_flight.fetch_add(n as usize, Ordering::AcqRel);
        rec.sent(n);
        for (stream, _, buf, _) in &mut conns {
            if buf.is_empty() {
                continue;
            }
            if let Err(e) = stream.write_all(buf) {
                log::error!("producer {}: write: {e}", spec.id);
                rec.error("io", 1);
                rec.finish();
                return finish(conns, readers);
            }
            buf.clear();
        }
    }
    rec.finish();
    finish(conns, readers);
}

/// Waits for the readers, which stop once nothing is in flight or the run is done.
fn finish(conns: Vec<(TcpStream, Arc<Shared>, Vec<u8>, i32)>, readers: Vec<JoinHandle<()>>) {
    for r in readers {
        let _ = r.join();
    }
    drop(conns);
}

fn read_acks(
    stream: TcpStream,
    shared: Arc<Shared>,
    clock: Arc<Clock>,
    tx: Sender<Interval>,
    messages_per_request: u64,
    bytes_per_request: u64,
) {
    let _ = stream.set_read_timeout(Some(Duration::from_millis(50)));
    let mut rec = Recorder::new(clock.clone(), tx);
    let mask = shared.intended_ns.len() - 1;
    let mut reader = FrameReader::new(stream);
    loop {
        let phase = rec.tick();
        if phase == Phase::Done
            || (phase == Phase::Drain && shared.in_flight.load(Ordering::Acquire) == 0)
        {
            break;
        }
        let frame = match reader.next_frame() {
            Ok(f) => f,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(e) => {
                if phase < Phase::Drain {
                    log::error!("reading acks: {e}");
                    rec.error("io", 1);
                }
                break;
            }
        };
        if !frame.is_response {
            continue;
        }
        let intended = shared.intended_ns[frame.opaque as usize & mask].load(Ordering::Acquire);
        let latency_us = clock.now_ns().saturating_sub(intended) / 1000;
        if frame.code == 0 {
            rec.acked(latency_us, messages_per_request, bytes_per_request);
        } else {
            rec.error(&format!("code {}", frame.code), messages_per_request);
        }
        shared.in_flight.fetch_sub(1, Ordering::SeqCst);
        if shared.sender_waits.load(Ordering::SeqCst) {
            shared.sender.unpark();
        }
    }
    rec.finish();
}

/// Incompressible bodies: a xorshift stream seeded per producer.
fn fill_random(buf: &mut [u8], seed: u64) {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for b in buf {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
}
