//! The master's side: the HA port's accept loop (shard 0) and one shard's stream to a slave.

use std::cell::Cell;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd};
use std::rc::Rc;
use std::time::Duration;

use glommio::net::TcpStream;

use super::frame::Frame;
use super::{write_frame, FrameReader};
use crate::broker::Shard;
use crate::net::connection::dup_stream;
use crate::runtime::watermark::Signal;

/// A data frame is cut after this many bytes of whole entries.
const CHUNK_TARGET_BYTES: u64 = 1 << 20;
/// Bytes sent but not yet acknowledged, at most, before the stream waits for the slave.
const WINDOW_BYTES: u64 = 16 << 20;
/// An idle stream sends an empty data frame this often, so the slave knows the master's end.
const HEARTBEAT: Duration = Duration::from_secs(1);
/// The shard's tables are sent at most this often, when they changed.
const STATE_INTERVAL: Duration = Duration::from_secs(1);
/// A connection that has not said hello within this is closed.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

/// Accepts slaves on the HA port (shard 0): reads each hello and hands the connection to the
/// shard it names.
pub async fn accept_loop(shard: Rc<Shard>, listener: glommio::net::TcpListener) {
    let mut failures = crate::net::listener::AcceptFailures::new("haListenPort");
    loop {
        match listener.accept().await {
            Ok(stream) => {
                glommio::spawn_local_into(route(shard.clone(), stream), shard.background)
                    .expect("the background queue exists")
                    .detach();
            }
            Err(e) => failures.pause(&e).await,
        }
    }
}

async fn route(shard: Rc<Shard>, stream: TcpStream) {
    let peer = stream
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let mut reader = FrameReader::new(stream);
    let hello =
        match glommio::timer::timeout(HELLO_TIMEOUT, async { Ok(reader.next().await) }).await {
            Ok(Ok(hello @ Frame::Hello { .. })) => hello,
            Ok(Ok(other)) => {
                return log::warn!("HA connection from {peer}: expected a hello, got {other:?}")
            }
            Ok(Err(e)) => return log::warn!("HA connection from {peer}: {e}"),
            Err(_) => {
                return log::warn!("HA connection from {peer}: no hello within {HELLO_TIMEOUT:?}")
            }
        };
    let Frame::Hello { shard: target, .. } = &hello else {
        unreachable!()
    };
    let target = *target as usize;
    let stream = reader.into_stream();
    match &shard.mesh {
        Some(mesh) if target != shard.config.shard_id && target < shard.config.shard_count => {
            // The other shard gets its own descriptor of the socket; ours closes with `stream`.
            let fd = match dup_fd(&stream) {
                Ok(fd) => fd,
                Err(e) => return log::warn!("HA connection from {peer}: {e}"),
            };
            drop(stream);
            if let Err(e) = mesh.hand_over(target, fd, hello.encode()).await {
                log::warn!("HA connection from {peer}: {e}");
            }
        }
        _ => serve_slave(shard, stream, hello).await,
    }
}

fn dup_fd(stream: &TcpStream) -> std::io::Result<OwnedFd> {
    // SAFETY: dup returns a new descriptor for the same socket or -1; we own the new one.
    let fd = unsafe { libc::dup(stream.as_raw_fd()) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` is fresh and ours.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Takes over a slave's connection handed over by shard 0 (`hello` is its encoded hello).
pub fn adopt(shard: Rc<Shard>, fd: OwnedFd, hello: bytes::Bytes) {
    let Ok(Some((hello, _))) = Frame::decode(&hello) else {
        return log::error!("HA hand-over carried no hello");
    };
    // SAFETY: `fd` is an owned, connected TCP socket handed over by shard 0.
    let stream = unsafe { TcpStream::from_raw_fd(fd.into_raw_fd()) };
    let background = shard.background;
    glommio::spawn_local_into(serve_slave(shard, stream, hello), background)
        .expect("the background queue exists")
        .detach();
}

/// Why a master will not stream to a slave.
enum Refusal {
    /// The slave's log is a prefix of the master's only below `agreed`.
    Diverged {
        agreed: u64,
        why: String,
    },
    /// The slave's log ends below `first`, where this log now starts.
    Behind {
        first: u64,
        why: String,
    },
    Other(String),
}

/// Why this shard will not stream to the slave that said `hello`.
fn refusal(shard: &Shard, hello: &Frame) -> Option<Refusal> {
    if let Some(reason) = mismatch(shard, hello) {
        return Some(Refusal::Other(reason));
    }
    let Frame::Hello {
        shard: id,
        log_end,
        epochs,
        ..
    } = hello
    else {
        unreachable!("mismatch checked it is a hello")
    };
    let durable = shard.store.log().durable().get();
    if let Err(d) = shard
        .ha
        .epochs
        .borrow()
        .check_follower(durable, epochs, *log_end)
    {
        return Some(Refusal::Diverged {
            agreed: d.agreed,
            why: format!(
                "slave log of shard {id} ends at {log_end} but parts from the master's at {} (its epoch {}): it holds records the master never had",
                d.agreed, d.epoch
            ),
        });
    }
    let first = shard.store.log().min_offset();
    if *log_end < first {
        return Some(Refusal::Behind {
            first,
            why: format!(
                "slave log of shard {id} ends at {log_end}, but the master's log now starts at {first} (retention deleted what the slave lacks)"
            ),
        });
    }
    misplaced(shard, *log_end).map(Refusal::Other)
}

/// A slave that is not this shard's replica: another broker, shard or segment size.
fn mismatch(shard: &Shard, hello: &Frame) -> Option<String> {
    let Frame::Hello {
        broker_name,
        shard: id,
        shard_count,
        segment_bytes,
        ..
    } = hello
    else {
        return Some("not a hello".into());
    };
    let config = &shard.config;
    if !shard.ha.is_master() {
        return Some(format!("{} is a slave, not a master", config.broker_name));
    }
    if *broker_name != config.process_broker_name {
        return Some(format!(
            "brokerName {broker_name} does not match the master's {}",
            config.process_broker_name
        ));
    }
    if *shard_count as usize != config.shard_count || *id as usize != config.shard_id {
        return Some(format!(
            "slave shard {id} of {shard_count} does not match master shard {} of {}",
            config.shard_id, config.shard_count
        ));
    }
    if *segment_bytes != config.segment_bytes {
        return Some(format!(
            "slave mappedFileSizeCommitLog {segment_bytes} is not the master's {}",
            config.segment_bytes
        ));
    }
    None
}

/// A slave log end that is not an entry boundary of this log (or is past its end).
fn misplaced(shard: &Shard, log_end: u64) -> Option<String> {
    let id = shard.config.shard_id;
    let log = shard.store.log();
    let durable = log.durable().get();
    if log_end > durable {
        return Some(format!(
            "slave log of shard {id} ends at {log_end}, beyond the master's {durable}"
        ));
    }
    let starts_a_record = || {
        let Some(Ok(len)) = log.entry_at(log_end) else {
            return false;
        };
        log.with_bytes(log_end, len as usize, |b| {
            crate::record::decode(b).is_ok_and(|v| v.physical_offset == log_end as i64)
        }) == Some(true)
    };
    let seals_a_segment = || log.entry_at(log_end) == Some(Err(()));
    if log_end < durable && !starts_a_record() && !seals_a_segment() {
        return Some(format!(
            "slave log of shard {id} ends at {log_end}, which is not an entry boundary of the master's log (the logs differ)"
        ));
    }
    None
}

/// Streams this shard's log to one slave from its log end until the connection ends.
pub async fn serve_slave(shard: Rc<Shard>, mut stream: TcpStream, hello: Frame) {
    let peer = stream
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let id = shard.config.shard_id;
    match refusal(&shard, &hello) {
        Some(Refusal::Other(reason)) => {
            log::warn!("shard {id}: refusing slave {peer}: {reason}");
            let _ = write_frame(&mut stream, &Frame::Refuse { reason }).await;
            return;
        }
        Some(Refusal::Diverged { agreed, why }) => {
            log::warn!("shard {id}: refusing slave {peer}: {why}; it must cut its log at {agreed}");
            let _ = write_frame(&mut stream, &Frame::Diverged { agreed }).await;
            return;
        }
        Some(Refusal::Behind { first, why }) => {
            log::warn!("shard {id}: slave {peer}: {why}; it starts its log again at {first}");
            let epochs = shard.ha.epochs.borrow().entries().to_vec();
            let _ = write_frame(&mut stream, &Frame::StartAt { first, epochs }).await;
            return;
        }
        None => {}
    }
    let Frame::Hello {
        log_end,
        replica_id,
        ..
    } = hello
    else {
        unreachable!()
    };
    let log = shard.store.log().clone();
    let master_end = log.durable().get();
    let welcome = Frame::Welcome {
        master_end,
        epochs: shard.ha.epochs.borrow().entries().to_vec(),
    };
    if write_frame(&mut stream, &welcome).await.is_err() {
        return;
    }
    log::info!("shard {id}: slave {peer} follows from {log_end} (master at {master_end})");
    let acks = match dup_stream(&stream) {
        Ok(s) => s,
        Err(e) => return log::warn!("shard {id}: slave {peer}: {e}"),
    };
    let follower = shard
        .store
        .replicated
        .slave_connected(replica_id as i64, log_end);
    shard.store.dispatch_visible();
    let state = Rc::new(Follower {
        id: follower,
        acked: Cell::new(log_end),
        closed: Cell::new(false),
        progress: Signal::default(),
    });
    let reader = glommio::spawn_local_into(
        read_acks(shard.clone(), state.clone(), acks),
        shard.background,
    )
    .expect("the background queue exists");
    // A write to a slave behind a partition blocks until TCP gives up (many minutes): the
    // stream ends as soon as the slave counts as gone.
    let result =
        futures_lite::future::or(stream_log(&shard, &mut stream, &state, log_end), async {
            while !state.closed.get() {
                state.progress.wait().await;
            }
            Ok(())
        })
        .await;
    drop(reader);
    state.close(&shard);
    match result {
        Ok(()) => log::info!("shard {id}: slave {peer} left at {}", state.acked.get()),
        Err(e) => log::warn!("shard {id}: slave {peer}: {e}"),
    }
}

struct Follower {
    id: crate::store::replicated::FollowerId,
    acked: Cell<u64>,
    closed: Cell<bool>,
    progress: Signal,
}

impl Follower {
    /// The slave is gone (its acks ended, or a write to it failed): sends waiting on it stop
    /// waiting at once.
    fn close(&self, shard: &Shard) {
        if self.closed.replace(true) {
            return;
        }
        shard.store.replicated.slave_lost(self.id);
        shard.store.dispatch_visible();
        self.progress.raise();
    }
}

async fn read_acks(shard: Rc<Shard>, state: Rc<Follower>, stream: TcpStream) {
    let mut reader = FrameReader::new(stream);
    let silent = shard.config.replication.housekeeping;
    loop {
        let Ok(read) = glommio::timer::timeout(silent, async { Ok(reader.next().await) }).await
        else {
            log::warn!(
                "shard {}: slave silent for {silent:?} (haHousekeepingInterval), acknowledged {}: dropping it",
                shard.config.shard_id,
                state.acked.get()
            );
            break;
        };
        match read {
            Ok(Frame::Ack { durable }) => {
                state.acked.set(state.acked.get().max(durable));
                shard.store.replicated.slave_acked(state.id, durable);
                shard.store.dispatch_visible();
            }
            Ok(other) => {
                log::warn!("slave sent {other:?} where acks were expected");
                break;
            }
            Err(_) => break,
        }
        state.progress.raise();
    }
    state.close(&shard);
}

async fn stream_log(
    shard: &Shard,
    stream: &mut TcpStream,
    state: &Follower,
    from: u64,
) -> Result<(), String> {
    let log = shard.store.log();
    let segment_bytes = shard.config.segment_bytes;
    let mut pos = from;
    let io = |e: std::io::Error| format!("write failed: {e}");
    let mut state_sent: Option<(std::time::Instant, Vec<u8>)> = None;
    loop {
        if !shard.ha.is_master() {
            return Err("this shard is no longer the master".into());
        }
        if state_sent
            .as_ref()
            .is_none_or(|(at, _)| at.elapsed() >= STATE_INTERVAL)
        {
            let json = super::state::snapshot(shard);
            if state_sent.as_ref().is_none_or(|(_, last)| *last != json) {
                let frame = Frame::State {
                    json: bytes::Bytes::copy_from_slice(&json),
                };
                write_frame(stream, &frame).await.map_err(io)?;
            }
            state_sent = Some((std::time::Instant::now(), json));
        }
        while !state.closed.get() && pos - state.acked.get() > WINDOW_BYTES {
            state.progress.wait().await;
        }
        if state.closed.get() {
            return Ok(());
        }
        if log.durable().get() <= pos {
            let arrived = futures_lite::future::or(
                async {
                    let _ = log.durable().wait_for(pos + 1).await;
                    true
                },
                futures_lite::future::or(
                    async {
                        glommio::timer::sleep(HEARTBEAT).await;
                        false
                    },
                    async {
                        state.progress.wait().await;
                        false
                    },
                ),
            )
            .await;
            if state.closed.get() {
                return Ok(());
            }
            if !arrived {
                let beat = Frame::Data {
                    start: pos,
                    master_end: log.durable().get(),
                    bytes: bytes::Bytes::new(),
                };
                write_frame(stream, &beat).await.map_err(io)?;
                continue;
            }
        }
        let durable = log.durable().get();
        let frame = match log.entry_at(pos) {
            Some(Err(())) => {
                let frame = Frame::Seal { start: pos };
                pos = pos - pos % segment_bytes + segment_bytes;
                frame
            }
            Some(Ok(_)) => {
                let segment_end = pos - pos % segment_bytes + segment_bytes;
                let limit = durable.min(segment_end);
                let mut end = pos;
                while let Some(Ok(len)) = log.entry_at(end) {
                    if end + len > limit || (end > pos && end + len - pos > CHUNK_TARGET_BYTES) {
                        break;
                    }
                    end += len;
                }
                let mut bytes = Vec::with_capacity((end - pos) as usize);
                log.with_bytes(pos, (end - pos) as usize, |b| bytes.extend_from_slice(b))
                    .ok_or_else(|| format!("log bytes {pos}..{end} are not readable"))?;
                let frame = Frame::Data {
                    start: pos,
                    master_end: durable,
                    bytes: bytes.into(),
                };
                pos = end;
                frame
            }
            None => {
                return Err(format!(
                    "no log entry at {pos} below the durable end {durable}"
                ))
            }
        };
        write_frame(stream, &frame).await.map_err(io)?;
    }
}
