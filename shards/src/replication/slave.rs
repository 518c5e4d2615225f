//! The slave's side: one shard follows the same shard of its master.

use std::rc::Rc;
use std::time::Duration;

use glommio::net::TcpStream;

use super::epochs::{Epoch, Epochs};
use super::frame::Frame;
use super::{write_frame, ControllerLink, FrameReader};
use crate::broker::{Shard, ShardConfig};
use crate::net::connection::dup_stream;
use crate::net::rpc_client::RpcClient;

/// Wait before connecting again after the stream ended.
const RETRY: Duration = Duration::from_secs(1);
/// A slave with no master to follow registers this often, to hear of one sooner.
const ASK_MASTER_EVERY: Duration = Duration::from_secs(2);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// At start, the elected master is asked this many times, this far apart, whether this log
/// parts from its own.
const START_PROBES: u32 = 10;
const START_PROBE_INTERVAL: Duration = Duration::from_millis(500);
/// Acknowledgements are sent as the log becomes durable, and at least this often.
const ACK_INTERVAL: Duration = Duration::from_secs(1);

/// Follows the master for as long as the shard runs.
pub async fn run(shard: Rc<Shard>) {
    let id = shard.config.shard_id;
    let mut last_error = String::new();
    loop {
        let generation = shard.ha.generation();
        if !shard.ha.is_slave() {
            shard.ha.changed_since(generation).await;
            continue;
        }
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
        // A promotion (or a new master named) ends the stream at once.
        let followed = futures_lite::future::or(follow_once(&shard, &master), async {
            shard.ha.changed_since(generation).await;
            Ok(())
        });
        match followed.await {
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

/// The hello a slave shard opens its stream with.
pub fn hello(config: &ShardConfig, replica_id: i64, log_end: u64, epochs: Vec<Epoch>) -> Frame {
    Frame::Hello {
        broker_name: config.process_broker_name.clone(),
        shard: config.shard_id as u16,
        shard_count: config.shard_count as u16,
        segment_bytes: config.segment_bytes,
        log_end,
        replica_id: replica_id as u64,
        epochs,
    }
}

/// Connects to the master's HA port and says `hello`: the stream, and the master's answer.
async fn greet(master: &str, hello: &Frame) -> Result<(FrameReader, Frame), String> {
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
    write_frame(&mut stream, hello)
        .await
        .map_err(|e| format!("hello: {e}"))?;
    let mut reader = FrameReader::new(stream);
    let answer = glommio::timer::timeout(CONNECT_TIMEOUT, async { Ok(reader.next().await) })
        .await
        .map_err(|_| format!("no answer to the hello within {CONNECT_TIMEOUT:?}"))?
        .map_err(|e| e.to_string())?;
    Ok((reader, answer))
}

/// Where a log ending at `log_end` with `epochs` parts from its master's, if it does: asked
/// at start, under a controller, so that a replica that wrote past the epoch that replaced
/// it (an old master killed with records its slave never got) cuts its log before it opens
/// it for good. `None` also when the controller or the master cannot be asked.
pub async fn divergence_at_start(
    config: &ShardConfig,
    link: &ControllerLink,
    epochs: &Epochs,
    log_end: u64,
) -> Option<u64> {
    let id = config.shard_id;
    let replica_id = config.replication.broker_id;
    // Asked without a heartbeat: a probe's connection closing must not count as this
    // replica dying, nor may the probe get it elected before it serves.
    let mut ext = crate::remoting::ExtFields::new();
    ext.insert("brokerName", &config.broker_name);
    let ask = crate::remoting::RemotingCommand::request(
        crate::remoting::request::CONTROLLER_GET_REPLICA_INFO,
        ext,
        bytes::Bytes::new(),
    );
    let view = match super::controller::ask(
        &RpcClient::signing(config.inner_credentials.clone()),
        link,
        ask,
    )
    .await
    {
        Ok(view) => view,
        Err(e) => {
            log::warn!("shard {id}: at start: controller: {e}; the log is checked against the master once it is reached");
            return None;
        }
    };
    if view.master.is_none_or(|m| m == replica_id) || view.master_ha_addr.is_empty() {
        return None;
    }
    let hello = hello(config, replica_id, log_end, epochs.held(log_end));
    // A replica elected a moment ago may not have begun its epoch yet: ask it a few times.
    let mut last = String::new();
    for _ in 0..START_PROBES {
        match greet(&view.master_ha_addr, &hello).await {
            Ok((_, Frame::Diverged { agreed })) => return Some(agreed),
            Ok((_, Frame::Welcome { .. } | Frame::StartAt { .. })) => return None,
            Ok((_, Frame::Refuse { reason })) => last = reason,
            Ok((_, other)) => last = format!("answered {other:?}"),
            Err(e) => last = e,
        }
        glommio::timer::sleep(START_PROBE_INTERVAL).await;
    }
    log::warn!(
        "shard {id}: at start: master {}: {last}; the log is checked against it once it follows",
        view.master_ha_addr
    );
    None
}

async fn follow_once(shard: &Rc<Shard>, master: &str) -> Result<(), String> {
    let id = shard.config.shard_id;
    let log = shard.store.log().clone();
    // The hello claims the slave's log is durable to its end: let pending bytes land first.
    let log_end = log.reserved_end();
    log.durable()
        .wait_for(log_end)
        .await
        .map_err(|_| "the slave's own log failed".to_string())?;
    let epochs = shard.ha.epochs.borrow().held(log_end);
    let hello = hello(&shard.config, shard.ha.replica_id, log_end, epochs);
    let (mut reader, answer) = greet(master, &hello).await?;
    let acks = dup_stream(reader.stream()).map_err(|e| e.to_string())?;
    match answer {
        Frame::Welcome { master_end, epochs } => {
            shard.store.replicated.note_master_end(master_end);
            if shard.ha.epochs.borrow().entries() != epochs.as_slice() {
                let mut adopted = shard.ha.epochs.borrow().clone();
                adopted.adopt(&epochs);
                shard.persist_epochs(adopted).await?;
            }
            log::info!("shard {id}: following {master} from {log_end} (master at {master_end})")
        }
        Frame::StartAt { first, epochs } => {
            log::warn!(
                "shard {id}: this log ends at {log_end}, below {master}'s first offset {first} (its retention deleted the rest): starting again at {first}"
            );
            let mut adopted = shard.ha.epochs.borrow().clone();
            adopted.adopt(&epochs);
            shard.persist_epochs(adopted).await?;
            shard.store.restart_replica_at(first).await?;
            return Ok(()); // and says hello again from `first`
        }
        Frame::Refuse { reason } => return Err(format!("the master refused: {reason}")),
        Frame::Diverged { agreed } => {
            return Err(format!(
                "the master refused: this log holds records past {agreed} that the master's does not (written before this replica was fenced); restart this broker and it cuts its log at {agreed} and follows"
            ))
        }
        other => return Err(format!("expected a welcome, got {other:?}")),
    }
    let acker = glommio::spawn_local_into(send_acks(log.clone(), acks), shard.background)
        .expect("the background queue exists");
    let _following = Following::start(&shard.ha);
    let result = apply(shard, &mut reader).await;
    drop(acker);
    result
}

/// Marks the slave following for as long as it lives (the stream is dropped mid-way when
/// the role changes).
struct Following<'a>(&'a super::role::Ha);

impl<'a> Following<'a> {
    fn start(ha: &'a super::role::Ha) -> Following<'a> {
        ha.set_following(true);
        Following(ha)
    }
}

impl Drop for Following<'_> {
    fn drop(&mut self) {
        self.0.set_following(false);
    }
}

/// Applies the master's frames until the stream ends or one cannot be applied.
async fn apply(shard: &Shard, reader: &mut FrameReader) -> Result<(), String> {
    let generation = shard.ha.generation();
    let silent = shard.config.replication.housekeeping;
    loop {
        let read = glommio::timer::timeout(silent, async { Ok(reader.next().await) }).await;
        let frame = read
            .map_err(|_| format!("the master was silent for {silent:?} (haHousekeepingInterval)"))
            .and_then(|r| r.map_err(|e| e.to_string()))
            .map_err(|e| {
                format!(
                    "{e}; fetching again from {}",
                    shard.store.log().reserved_end()
                )
            })?;
        if shard.ha.generation() != generation {
            return Ok(()); // promoted or fenced: nothing more from this master is applied
        }
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

/// Acknowledges as the log becomes durable, and every `ACK_INTERVAL` regardless, so the
/// master can tell an idle slave from one behind a partition.
async fn send_acks(log: Rc<crate::commitlog::CommitLog>, mut stream: TcpStream) {
    loop {
        let durable = log.durable().get();
        if write_frame(&mut stream, &Frame::Ack { durable })
            .await
            .is_err()
        {
            return;
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
