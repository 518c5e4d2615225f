//! One client connection on one shard. A reader task decodes frames and hands each command to
//! the shard's [`Handler`]; a writer task drains the connection's outbound queue, batching every
//! ready frame into one socket write. Responses to sends wait in the queue until the commit log
//! is durable past their record (`Outbound::AfterDurable`), so a connection can have many sends
//! in flight without a task per message.
//!
//! Bad input (F35): a frame whose length cannot be trusted closes the connection with a log
//! line; a delimited frame whose header is malformed is answered with an error and skipped.
//! Nothing is allocated from an unchecked length: the read buffer grows only up to a frame the
//! limit allows. A frame still incomplete `frame_read_timeout` after its first byte, and a
//! connection silent for `idle_timeout` with nothing owed to it, are closed.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd};
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;

use crate::remoting::{self, response, Decoded, RemotingCommand};
use crate::runtime::watermark::{Signal, Watermark};

/// A frame waiting to be written.
pub enum Outbound {
    Now(Bytes),
    /// A send response: written once the commit log is durable up to `end`; if the log fails
    /// first, the client gets SERVICE_NOT_AVAILABLE for `opaque` instead.
    AfterDurable {
        end: u64,
        response: Bytes,
        opaque: i32,
        /// When the request arrived: its latency is counted as the answer leaves.
        since: std::time::Instant,
    },
}

/// On a broker shard: the commit log's durable end, which send answers wait for, and where
/// their latency is counted.
pub type Durability = (Rc<Watermark>, Rc<crate::runtime::latency::Latency>);

pub struct Connection {
    pub id: u64,
    pub peer: SocketAddr,
    /// This end's address: the one the peer reached us on.
    pub local: SocketAddr,
    outbound: RefCell<VecDeque<Outbound>>,
    wake_writer: Signal,
    /// Raised by the writer when the queue fell below half of `OUTBOUND_FRAMES_MAX`.
    drained: Signal,
    closed: Cell<bool>,
    next_opaque: Cell<i32>,
    /// Set by the reader once the connection has been idle `IDLE_SHRINK_AFTER`, so the
    /// writer gives its buffer back as well.
    idle: Cell<bool>,
    /// Broker-initiated requests waiting for the client's answer, by opaque (a few at most).
    awaiting: RefCell<Vec<(i32, Rc<AwaitedReply>)>>,
}

/// Where a client's answer to a broker-initiated request lands.
#[derive(Default)]
struct AwaitedReply {
    reply: RefCell<Option<RemotingCommand>>,
    arrived: Signal,
}

impl Connection {
    /// A connection without a socket, for requests that arrive over the mesh: the handler's
    /// answer is taken with `take_reply`.
    pub fn detached(id: u64) -> Rc<Connection> {
        let none = SocketAddr::from(([0, 0, 0, 0], 0));
        Connection::new(id, none, none)
    }

    fn new(id: u64, peer: SocketAddr, local: SocketAddr) -> Rc<Connection> {
        Rc::new(Connection {
            id,
            peer,
            local,
            outbound: RefCell::new(VecDeque::new()),
            wake_writer: Signal::default(),
            drained: Signal::default(),
            closed: Cell::new(false),
            idle: Cell::new(false),
            // Broker-initiated requests number from 2^30, away from the client's own.
            next_opaque: Cell::new(1 << 30),
            awaiting: RefCell::default(),
        })
    }

    /// The first frame queued on a detached connection, once it may leave. A handler that
    /// answers from a task of its own (UPDATE_BROKER_CONFIG) is waited for, up to
    /// `DETACHED_REPLY_WAIT`.
    pub async fn take_reply(&self, durable: &Watermark) -> Option<Bytes> {
        let deadline = std::time::Instant::now() + DETACHED_REPLY_WAIT;
        let item = loop {
            if let Some(item) = self.outbound.borrow_mut().pop_front() {
                break item;
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return None;
            }
            futures_lite::future::or(self.wake_writer.wait(), glommio::timer::sleep(left)).await;
        };
        match item {
            Outbound::Now(frame) => Some(frame),
            Outbound::AfterDurable {
                end,
                response,
                opaque,
                ..
            } => match durable.wait_for(end).await {
                Ok(()) => Some(response),
                Err(_) => Some(remoting::encode_to_bytes(
                    &RemotingCommand::response(response::SERVICE_NOT_AVAILABLE, opaque)
                        .with_remark("service not available now: commit log write failed"),
                )),
            },
        }
    }

    pub fn is_closed(&self) -> bool {
        self.closed.get()
    }

    fn push(&self, item: Outbound) {
        if self.closed.get() {
            return;
        }
        self.outbound.borrow_mut().push_back(item);
        self.wake_writer.raise();
    }

    /// Queues a response (or a broker-initiated request) for writing.
    pub fn send(&self, cmd: &RemotingCommand) {
        self.push(Outbound::Now(remoting::encode_to_bytes(cmd)));
    }

    /// Queues a response that may leave only when the log is durable past `end`.
    pub fn send_after_durable(&self, end: u64, cmd: &RemotingCommand, since: std::time::Instant) {
        let response = remoting::encode_to_bytes(cmd);
        self.push(Outbound::AfterDurable {
            end,
            response,
            opaque: cmd.opaque,
            since,
        });
    }

    /// Numbers a broker-initiated request and sends it as JAVA: every client's language enum
    /// knows it (spec §1.8).
    fn send_request(&self, mut cmd: RemotingCommand) -> i32 {
        let opaque = self.next_opaque.get();
        self.next_opaque.set(opaque.wrapping_add(1));
        cmd.opaque = opaque;
        cmd.language = remoting::LanguageCode::JAVA;
        self.send(&cmd);
        opaque
    }

    /// Sends a oneway request from the broker to this client (e.g. NOTIFY_CONSUMER_IDS_CHANGED).
    pub fn send_oneway_request(&self, mut cmd: RemotingCommand) {
        cmd.flag |= remoting::codes::FLAG_ONEWAY;
        self.send_request(cmd);
    }

    /// Sends a request from the broker to this client and waits up to `timeout` for its
    /// answer (GET_CONSUMER_RUNNING_INFO relayed for an admin); None if none came.
    pub async fn call_client(
        &self,
        cmd: RemotingCommand,
        timeout: Duration,
    ) -> Option<RemotingCommand> {
        let waiter = Rc::new(AwaitedReply::default());
        let opaque = self.next_opaque.get();
        self.awaiting.borrow_mut().push((opaque, waiter.clone()));
        self.send_request(cmd);
        futures_lite::future::or(waiter.arrived.wait(), glommio::timer::sleep(timeout)).await;
        self.awaiting.borrow_mut().retain(|(o, _)| *o != opaque);
        let reply = waiter.reply.borrow_mut().take();
        reply
    }

    /// Hands a client's response to the broker request that waits for it; false if none
    /// does (an answer to a oneway request, or one that came after its wait ended).
    pub fn deliver(&self, response: RemotingCommand) -> bool {
        let waiter = {
            let mut awaiting = self.awaiting.borrow_mut();
            let Some(i) = awaiting.iter().position(|(o, _)| *o == response.opaque) else {
                return false;
            };
            awaiting.swap_remove(i).1
        };
        *waiter.reply.borrow_mut() = Some(response);
        waiter.arrived.raise();
        true
    }
}

/// What a server does with commands and closed connections.
#[allow(
    async_fn_in_trait,
    reason = "handlers run on one shard; no Send bound is wanted"
)]
pub trait Handler {
    async fn handle(&self, conn: &Rc<Connection>, cmd: RemotingCommand);
    fn on_close(&self, conn: &Rc<Connection>);
}

/// Bytes one socket read takes at most.
const READ_CHUNK_BYTES: usize = 64 << 10;
/// A connection's read buffer while it is idle or sends little.
const SMALL_READ_BYTES: usize = 4 << 10;
/// An idle connection gives its buffers back after this long.
const IDLE_SHRINK_AFTER: Duration = Duration::from_secs(1);
/// Frames queued for a client before its connection stops reading requests: a client that
/// sends without reading its answers is held back instead of growing the queue without end.
/// 4096 covers a producer's in-flight window many times over.
const OUTBOUND_FRAMES_MAX: usize = 4096;

/// Limits of one connection.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub frame_bytes_max: u32,
    /// A frame whose first byte arrived this long ago and is still incomplete closes the
    /// connection (`frameReadTimeoutMillis`): a stalled client does not keep its partial
    /// bytes, or the connection, forever.
    pub frame_read_timeout: Duration,
    /// A connection that sent nothing for this long and has nothing queued for it is closed
    /// (RocketMQ's `serverChannelMaxIdleTimeSeconds`; clients heartbeat every 30 s).
    pub idle_timeout: Duration,
    /// Connections a shard serves at once: its share of `clientConnectionsMax`; more are
    /// closed as they are accepted.
    pub shard_connections_max: usize,
}

/// How long `take_reply` waits for a handler that answers later.
const DETACHED_REPLY_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            frame_bytes_max: 16 << 20,
            frame_read_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(120),
            shard_connections_max: usize::MAX,
        }
    }
}

/// Serves one accepted connection until it closes. `durable` is the commit log's watermark on
/// a broker shard (None on the name server).
pub async fn serve_connection<H: Handler>(
    stream: TcpStream,
    id: u64,
    handler: Rc<H>,
    durable: Option<Durability>,
    limits: ConnectionLimits,
) {
    let none = SocketAddr::from(([0, 0, 0, 0], 0));
    let peer = stream.peer_addr().unwrap_or(none);
    let local = stream.local_addr().unwrap_or(none);
    let _ = stream.set_nodelay(true);
    let writer_stream = match dup_stream(&stream) {
        Ok(s) => s,
        Err(e) => {
            log::warn!("connection {peer}: cannot duplicate socket: {e}");
            return;
        }
    };
    let conn = Connection::new(id, peer, local);
    let writer = glommio::spawn_local(write_loop(writer_stream, conn.clone(), durable));
    if let Err(e) = read_loop(stream, &conn, &*handler, limits).await {
        log::debug!("connection {peer} closed: {e}");
    }
    conn.closed.set(true);
    conn.wake_writer.raise();
    handler.on_close(&conn);
    writer.await;
}

pub(crate) fn dup_stream(stream: &TcpStream) -> std::io::Result<TcpStream> {
    // SAFETY: dup returns a new descriptor for the same socket or -1; we own the new one.
    let fd = unsafe { libc::dup(stream.as_raw_fd()) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh, owned descriptor of a connected TCP socket.
    Ok(unsafe { TcpStream::from_raw_fd(fd) })
}

async fn read_loop<H: Handler>(
    mut stream: TcpStream,
    conn: &Rc<Connection>,
    handler: &H,
    limits: ConnectionLimits,
) -> Result<(), String> {
    let mut buf = BytesMut::new();
    // Reads land here, then move into `buf`: a copy of what arrived, instead of zeroing the
    // spare capacity of `buf` before every read. Small until a read fills it; small again,
    // with `buf` released, once the connection has been idle for `IDLE_SHRINK_AFTER`.
    let mut scratch = vec![0u8; SMALL_READ_BYTES];
    // Since when nothing was read, nothing is buffered and nothing is owed, if so; and
    // whether the buffers were given back since.
    let mut idle_since: Option<Instant> = None;
    let mut shrunk = false;
    // When the first byte of the incomplete frame at the head of `buf` arrived.
    let mut partial_since: Option<Instant> = None;
    loop {
        // Decode every complete frame in the buffer.
        let mut decoded = false;
        loop {
            if buf.len() < 4 {
                break;
            }
            let declared = u32::from_be_bytes(buf[..4].try_into().expect("4 bytes"));
            if declared > limits.frame_bytes_max || declared < 4 {
                let peek = Bytes::copy_from_slice(&buf[..4]);
                let error = match remoting::decode(&peek, limits.frame_bytes_max) {
                    Err(e) => e.to_string(),
                    Ok(_) => "bad length".to_string(),
                };
                log::warn!("connection {}: closing: {error}", conn.peer);
                return Err(error);
            }
            let frame_bytes = 4 + declared as usize;
            if buf.len() < frame_bytes {
                buf.reserve(frame_bytes - buf.len());
                break;
            }
            let frame = buf.split_to(frame_bytes).freeze();
            decoded = true;
            match remoting::decode(&frame, limits.frame_bytes_max) {
                Ok(Decoded::Command { command, .. }) => handler.handle(conn, command).await,
                Ok(Decoded::Malformed { error, .. }) => {
                    log::warn!("connection {}: malformed frame: {error}", conn.peer);
                    let reply = RemotingCommand::response(response::SYSTEM_ERROR, 0)
                        .with_remark(format!("decode error: {error}"));
                    conn.send(&reply);
                }
                Ok(Decoded::Incomplete { .. }) => unreachable!("a whole frame was present"),
                Err(e) => return Err(e.to_string()),
            }
            // A busy connection always has the next frame ready and would otherwise keep the
            // shard until its socket drains; once the preempt timer fired, the others (a
            // consumer's pull behind a producer's flood) get their turn.
            glommio::yield_if_needed().await;
        }
        let mut held_back = false;
        while conn.outbound.borrow().len() >= OUTBOUND_FRAMES_MAX {
            held_back = true;
            conn.drained.wait().await;
        }
        // The deadline counts the client's time only: not the time this side stopped reading.
        partial_since = match partial_since {
            _ if buf.is_empty() => None,
            Some(since) if !decoded && !held_back => Some(since),
            _ => Some(Instant::now()),
        };
        if buf.is_empty() && idle_since.is_none() {
            idle_since = Some(Instant::now());
        }
        let idle_for = idle_since.map_or(Duration::ZERO, |since| since.elapsed());
        let timeout = match partial_since {
            None if !shrunk => IDLE_SHRINK_AFTER
                .saturating_sub(idle_for)
                .max(Duration::from_millis(1)),
            None => limits
                .idle_timeout
                .saturating_sub(idle_for)
                .max(Duration::from_millis(1)),
            Some(since) => limits
                .frame_read_timeout
                .saturating_sub(since.elapsed())
                .max(Duration::from_millis(1)),
        };
        if stream.read_timeout() != Some(timeout) {
            let _ = stream.set_read_timeout(Some(timeout));
        }
        let n = match stream.read(&mut scratch).await {
            Ok(0) => return Err("peer closed".into()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                if let Some(since) = partial_since {
                    if since.elapsed() >= limits.frame_read_timeout {
                        let error = format!(
                            "frame incomplete after {} ms ({} bytes received)",
                            limits.frame_read_timeout.as_millis(),
                            buf.len()
                        );
                        log::warn!("connection {}: closing: {error}", conn.peer);
                        return Err(error);
                    }
                } else if conn.outbound.borrow().is_empty() {
                    let since = *idle_since.get_or_insert_with(Instant::now);
                    if !shrunk && buf.is_empty() {
                        buf = BytesMut::new();
                        scratch = vec![0u8; SMALL_READ_BYTES];
                        shrunk = true;
                        conn.idle.set(true);
                        conn.wake_writer.raise();
                    }
                    if since.elapsed() >= limits.idle_timeout {
                        let error = format!("idle for {} s", limits.idle_timeout.as_secs());
                        log::info!("connection {}: closing: {error}", conn.peer);
                        return Err(error);
                    }
                } else {
                    // Owed an answer: not idle; the clock starts again.
                    idle_since = Some(Instant::now());
                }
                continue;
            }
            Err(e) => return Err(e.to_string()),
        };
        buf.extend_from_slice(&scratch[..n]);
        if n == scratch.len() && scratch.len() < READ_CHUNK_BYTES {
            scratch = vec![0u8; READ_CHUNK_BYTES];
        }
        idle_since = None;
        shrunk = false;
        conn.idle.set(false);
    }
}

async fn write_loop(mut stream: TcpStream, conn: Rc<Connection>, durable: Option<Durability>) {
    let mut batch = Vec::new();
    loop {
        let (next, left) = {
            let mut queue = conn.outbound.borrow_mut();
            (queue.pop_front(), queue.len())
        };
        if left < OUTBOUND_FRAMES_MAX / 2 {
            conn.drained.raise();
        }
        let Some(item) = next else {
            if !batch.is_empty() {
                if let Err(e) = stream.write_all(&batch).await {
                    log::debug!("connection {}: write failed: {e}", conn.peer);
                    conn.closed.set(true);
                    return;
                }
                batch.clear();
                continue;
            }
            if conn.closed.get() {
                let _ = stream.close().await;
                return;
            }
            // The reader says when the connection went idle: the batch buffer goes back too,
            // and the next response allocates it again.
            if conn.idle.get() {
                batch = Vec::new();
            }
            conn.wake_writer.wait().await;
            continue;
        };
        match item {
            Outbound::Now(frame) => batch.extend_from_slice(&frame),
            Outbound::AfterDurable {
                end,
                response,
                opaque,
                since,
            } => {
                let (mark, latency) = durable
                    .as_ref()
                    .expect("durable responses only on broker shards");
                if mark.get() < end && !batch.is_empty() {
                    // Flush what is ready before waiting on the log.
                    if stream.write_all(&batch).await.is_err() {
                        conn.closed.set(true);
                        return;
                    }
                    batch.clear();
                }
                let waited = mark.wait_for(end).await;
                latency.record(since);
                match waited {
                    Ok(()) => batch.extend_from_slice(&response),
                    Err(_) => {
                        let failed =
                            RemotingCommand::response(response::SERVICE_NOT_AVAILABLE, opaque)
                                .with_remark("service not available now: commit log write failed");
                        batch.extend_from_slice(&remoting::encode_to_bytes(&failed));
                    }
                }
            }
        }
    }
}
