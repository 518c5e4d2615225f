//! A push-style consumer's work on one broker: one long-polling PULL_MESSAGE outstanding per
//! queue on one connection, as RocketMQ's push consumers do, committing progress with each
//! pull. End-to-end latency runs from the intended send time the producer wrote into the
//! first 8 bytes of the body (microseconds; same host, same clock) to the delivery; bodies
//! shorter than that fall back to the born timestamp (milliseconds).

use std::io::{ErrorKind, Write};
use std::net::TcpStream;
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use petrel::client::pipeline::FrameReader;
use petrel_shards::record;
use petrel_shards::remoting::headers::{pull_flag, PullMessageHeader};
use petrel_shards::remoting::{self, request, response, RemotingCommand, SerializeType};

use crate::collect::{Clock, Interval, Phase, Recorder};

pub struct ConsumerSpec {
    pub id: u64,
    pub group: String,
    pub topic: String,
    pub addr: String,
    /// (queue id, offset to start from).
    pub queues: Vec<(i32, i64)>,
}

const PULL_BATCH: i32 = 32;
const SUSPEND: Duration = Duration::from_secs(15);

struct QueueState {
    id: i32,
    offset: i64,
    pulling: bool,
}

pub fn spawn(spec: ConsumerSpec, clock: Arc<Clock>, tx: Sender<Interval>) -> JoinHandle<()> {
    thread::Builder::new()
        .name(format!("consumer-{}", spec.id))
        .spawn(move || run(spec, clock, tx))
        .expect("spawning a consumer thread")
}

fn run(spec: ConsumerSpec, clock: Arc<Clock>, tx: Sender<Interval>) {
    let mut rec = Recorder::new(clock.clone(), tx);
    let mut stream = match TcpStream::connect(&spec.addr) {
        Ok(s) => s,
        Err(e) => {
            log::error!("consumer {}: connecting to {}: {e}", spec.id, spec.addr);
            rec.error("connect", 1);
            rec.finish();
            return;
        }
    };
    let _ = stream.set_nodelay(true);
    let read_half = stream.try_clone().expect("cloning a socket");
    let _ = read_half.set_read_timeout(Some(Duration::from_millis(50)));
    let mut reader = FrameReader::new(read_half);
    let mut queues: Vec<QueueState> = spec
        .queues
        .iter()
        .map(|&(id, offset)| QueueState {
            id,
            offset,
            pulling: false,
        })
        .collect();
    let mut out = BytesMut::new();
    loop {
        let phase = rec.tick();
        if phase == Phase::Done {
            break;
        }
        if phase != Phase::Backlog {
            for (i, q) in queues.iter_mut().enumerate().filter(|(_, q)| !q.pulling) {
                encode_pull(&spec, q, i as i32, &mut out);
                q.pulling = true;
            }
            if !out.is_empty() {
                if let Err(e) = stream.write_all(&out) {
                    log::error!("consumer {}: write: {e}", spec.id);
                    rec.error("io", 1);
                    break;
                }
                out.clear();
            }
        }
        let frame = match reader.next_frame() {
            Ok(f) => f,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(e) => {
                log::error!("consumer {}: read: {e}", spec.id);
                rec.error("io", 1);
                break;
            }
        };
        if !frame.is_response {
            continue;
        }
        let Some(q) = queues.get_mut(frame.opaque as usize) else {
            continue;
        };
        q.pulling = false;
        match frame.code {
            response::SUCCESS => {
                let now_us = clock.now_unix_us();
                let mut body = frame.body;
                while !body.is_empty() {
                    let Ok(view) = record::decode(body) else {
                        rec.error("undecodable record", 1);
                        break;
                    };
                    rec.received(e2e_us(now_us, view.body, view.born_timestamp));
                    body = &body[view.total_size..];
                }
            }
            response::PULL_NOT_FOUND
            | response::PULL_RETRY_IMMEDIATELY
            | response::PULL_OFFSET_MOVED => {}
            code => {
                rec.error(&format!("pull code {code}"), 1);
                thread::sleep(Duration::from_millis(100));
            }
        }
        if let Some(next) = frame.next_begin_offset {
            q.offset = next;
        }
    }
    rec.finish();
}

fn e2e_us(now_us: u64, body: &[u8], born_ms: i64) -> u64 {
    match body.get(..8) {
        Some(stamp) => now_us.saturating_sub(u64::from_be_bytes(stamp.try_into().unwrap())),
        None => now_us.saturating_sub(born_ms.max(0) as u64 * 1000),
    }
}

fn encode_pull(spec: &ConsumerSpec, q: &QueueState, opaque: i32, out: &mut BytesMut) {
    let header = PullMessageHeader {
        consumer_group: spec.group.clone(),
        topic: spec.topic.clone(),
        queue_id: q.id,
        queue_offset: q.offset,
        max_msg_nums: PULL_BATCH,
        sys_flag: pull_flag::COMMIT_OFFSET | pull_flag::SUSPEND | pull_flag::SUBSCRIPTION,
        commit_offset: q.offset,
        suspend_timeout_millis: SUSPEND.as_millis() as i64,
        subscription: Some("*".into()),
        sub_version: 0,
        expression_type: Some("TAG".into()),
        max_msg_bytes: None,
    };
    let mut cmd = RemotingCommand::request(request::PULL_MESSAGE, header.to_fields(), Bytes::new());
    cmd.opaque = opaque;
    remoting::encode(&cmd, SerializeType::Json, out);
}
