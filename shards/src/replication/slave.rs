//! The slave's side: one shard follows the same shard of its master.

use std::rc::Rc;
use std::time::Duration;

use glommio::net::TcpStream;

use super::frame::Frame;
use super::{write_frame, FrameReader};
use crate::broker::Shard;
use crate::net::connection::dup_stream;

/// Wait before connecting again after the stream ended.
const RETRY: Duration = Duration::from_secs(1);
/// A slave with no master to follow registers this often, to hear of one sooner.
const ASK_MASTER_EVERY: Duration = Duration::from_secs(2);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Acknowledgements are sent as the log becomes durable, and at least this often.
const ACK_INTERVAL: Duration = Duration::from_secs(1);

/// Follows the master for as long as the shard runs.
pub async fn run(shard: Rc<Shard>) {
    let id = shard.config.shard_id;
    let mut last_error = String::new();
    loop {
        let Some(master) = shard.master_ha_addr() else {
            // Registration (every registerNameServerPeriod) tells it once a master registered.
            if last_error.is_empty() {
                log::info!("shard {id}: waiting for the name server to name the master");
                last_error = "waiting".into();
            }
            glommio::timer::sleep(ASK_MASTER_EVERY).await;
            shard.request_registration();
            continue;
        };
        match follow_once(&shard, &master).await {
            Ok(()) => last_error.clear(),
            Err(e) => {
                // One line per distinct failure, not one per retry.
                if e != last_error {
                    log::warn!("shard {id}: following {master}: {e}; retrying every {RETRY:?}");
                    last_error = e;
                }
            }
        }
        glommio::timer::sleep(RETRY).await;
    }
}

async fn follow_once(shard: &Rc<Shard>, master: &str) -> Result<(), String> {
    let id = shard.config.shard_id;
    let addr: std::net::SocketAddr = master
        .parse()
        .map_err(|_| format!("haMasterAddress {master:?} is not ip:port"))?;
    let mut stream = glommio::timer::timeout(CONNECT_TIMEOUT, async {
        Ok(TcpStream::connect(addr).await)
    })
    .await
    .map_err(|_| format!("no connection within {CONNECT_TIMEOUT:?}"))?
    .map_err(|e| format!("connect: {e}"))?;
    let _ = stream.set_nodelay(true);
    let log = shard.store.log().clone();
    // The hello claims the slave's log is durable to its end: let pending bytes land first.
    let log_end = log.reserved_end();
    log.durable()
        .wait_for(log_end)
        .await
        .map_err(|_| "the slave's own log failed".to_string())?;
    let hello = Frame::Hello {
        broker_name: shard.config.process_broker_name.clone(),
        shard: id as u16,
        shard_count: shard.config.shard_count as u16,
        segment_bytes: shard.config.segment_bytes,
        log_end,
    };
    write_frame(&mut stream, &hello)
        .await
        .map_err(|e| format!("hello: {e}"))?;
    let acks = dup_stream(&stream).map_err(|e| e.to_string())?;
    let mut reader = FrameReader::new(stream);
    match reader.next().await.map_err(|e| e.to_string())? {
        Frame::Welcome { master_end } => {
            shard.store.replicated.note_master_end(master_end);
            log::info!("shard {id}: following {master} from {log_end} (master at {master_end})")
        }
        Frame::Refuse { reason } => return Err(format!("the master refused: {reason}")),
        other => return Err(format!("expected a welcome, got {other:?}")),
    }
    let acker = glommio::spawn_local_into(send_acks(log.clone(), acks), shard.background)
        .expect("the background queue exists");
    let result = apply(shard, &mut reader).await;
    drop(acker);
    result
}

/// Applies the master's frames until the stream ends or one cannot be applied.
async fn apply(shard: &Shard, reader: &mut FrameReader) -> Result<(), String> {
    loop {
        let frame = reader.next().await.map_err(|e| {
            format!(
                "{e}; fetching again from {}",
                shard.store.log().reserved_end()
            )
        })?;
        match frame {
            Frame::Data {
                start,
                master_end,
                bytes,
            } => {
                shard.store.replicated.note_master_end(master_end);
                if !bytes.is_empty() {
                    shard.store.append_replica(start, &bytes)?;
                    shard.note_replicated_topics();
                }
            }
            Frame::Seal { start } => {
                shard.store.seal_replica(start)?;
            }
            Frame::State { json } => super::state::adopt(shard, &json)?,
            other => return Err(format!("unexpected {other:?}")),
        }
    }
}

async fn send_acks(log: Rc<crate::commitlog::CommitLog>, mut stream: TcpStream) {
    let mut sent = None;
    loop {
        let durable = log.durable().get();
        if sent != Some(durable) {
            if write_frame(&mut stream, &Frame::Ack { durable })
                .await
                .is_err()
            {
                return;
            }
            sent = Some(durable);
        }
        let _ = futures_lite::future::or(
            async {
                let _ = log.durable().wait_for(durable + 1).await;
            },
            glommio::timer::sleep(ACK_INTERVAL),
        )
        .await;
    }
}
