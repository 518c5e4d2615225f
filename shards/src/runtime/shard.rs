//! Starting and stopping a broker shard: one glommio `LocalExecutor` per shard, pinned to its
//! CPU when there is one for it, named `shard-<i>`. The process binds every listener before
//! any shard starts (so a taken port fails fast), hands each shard its sockets, and waits for
//! each to report ready or failed.
//!
//! Order inside the shard: join the mesh first (a peer that fails later still lets the others
//! join), then open the store and metadata, start background tasks and accept loops, report
//! ready, and wait for the shutdown socket. Shutdown stops accepting, flushes the log, persists
//! offsets and metadata and leaves the name servers.

use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};
use std::rc::Rc;
use std::sync::mpsc::Sender;

use futures_lite::AsyncReadExt;
use glommio::{LocalExecutorBuilder, Placement};

use crate::broker::metadata::Metadata;
use crate::broker::{Shard, ShardConfig};
use crate::listener::front_door::FrontDoor;
use crate::listener::{accept_loop, dispatch, ShardHandler};
use crate::mesh::{Mesh, MeshBuilder, MeshMessage};
use crate::net::listener::into_glommio;
use crate::net::Connection;
use crate::remoting::{self, Decoded};
use crate::store::{Store, StoreConfig};

pub struct ShardStart {
    pub config: ShardConfig,
    /// The shard's own port.
    pub listener: OwnedFd,
    /// The process's front door, on shard 0 only.
    pub front_door: Option<OwnedFd>,
    /// The HA port (`haListenPort`) of a master, on shard 0 only.
    pub ha_listener: Option<OwnedFd>,
    pub mesh: Option<MeshBuilder>,
    /// Readable (or closed) when the shard must stop.
    pub shutdown: OwnedFd,
    pub cpu: Option<usize>,
    pub io_memory_bytes: usize,
    pub ready: Sender<(usize, Result<(), String>)>,
}

/// Spawns the shard's executor thread.
pub fn spawn(start: ShardStart) -> std::io::Result<glommio::ExecutorJoinHandle<()>> {
    let placement = match start.cpu {
        Some(cpu) => Placement::Fixed(cpu),
        None => Placement::Unbound,
    };
    let name = format!("shard-{}", start.config.shard_id);
    LocalExecutorBuilder::new(placement)
        .name(&name)
        .io_memory(start.io_memory_bytes)
        .preempt_timer(std::time::Duration::from_millis(2))
        .spawn(move || run(start))
        .map_err(|e| std::io::Error::other(e.to_string()))
}

async fn run(start: ShardStart) {
    let id = start.config.shard_id;
    let ready = start.ready.clone();
    match serve(start).await {
        Ok(()) => log::info!("shard {id}: stopped"),
        Err(e) => {
            log::error!("shard {id}: {e}");
            let _ = ready.send((id, Err(e)));
        }
    }
}

async fn serve(start: ShardStart) -> Result<(), String> {
    let id = start.config.shard_id;
    let mesh = match start.mesh {
        Some(builder) => Some(join_mesh(builder).await?),
        None => None,
    };
    let store_config = StoreConfig {
        dir: start.config.store_dir.clone(),
        segment_bytes: start.config.segment_bytes,
        flush: start.config.flush,
        index: start.config.index,
        sync_replication: start.config.replication.role
            == crate::replication::BrokerRole::SyncMaster,
        retention: start.config.retention,
        flow: start.config.flow,
    };
    let mut store = Store::open(store_config.clone())
        .await
        .map_err(|e| e.to_string())?;
    let mut epochs = crate::replication::epochs::Epochs::load(&start.config.store_dir)?;
    if let Some(link) = &start.config.replication.controller {
        // An old master may hold records its successor never got: cut them before serving.
        let log_end = store.log().durable().get();
        let parted =
            crate::replication::slave::divergence_at_start(&start.config, link, &epochs, log_end)
                .await;
        if let Some(agreed) = parted.filter(|agreed| *agreed < log_end) {
            log::warn!(
                "shard {id}: the log holds {} bytes past {agreed} that the elected master's does not (never acknowledged as replicated); cutting it there and rebuilding its queues",
                log_end - agreed
            );
            drop(store);
            let dir = &start.config.store_dir;
            Store::truncate_closed(dir, start.config.segment_bytes, agreed)
                .map_err(|e| format!("cutting the log at {agreed}: {e}"))?;
            epochs = crate::replication::epochs::Epochs::new(epochs.held(agreed));
            let path = crate::replication::epochs::Epochs::path(dir);
            crate::store::atomic_file::write(&path, &epochs.to_json())
                .map_err(|e| format!("writing {}: {e}", path.display()))?;
            store = Store::open(store_config).await.map_err(|e| e.to_string())?;
        }
    }
    let meta = Metadata::load(
        &start.config.store_dir,
        start.config.auto_create_topic_enable,
        start.config.default_topic_queue_nums,
    )
    .map_err(|e| e.to_string())?;
    let delay = crate::broker::schedule::load_progress(&start.config.store_dir)
        .map_err(|e| e.to_string())?;
    let transactions = crate::broker::transaction::Transactions::load(&start.config.store_dir)
        .map_err(|e| e.to_string())?;
    let locks = crate::broker::locks::DurableLocks::load(
        &start.config.store_dir,
        start.config.lock_max_live,
    )
    .map_err(|e| e.to_string())?;
    let shard = Shard::new(
        start.config,
        store,
        meta,
        mesh.as_ref().map(|(m, _)| m.clone()),
        delay,
        transactions,
        locks,
        epochs,
    );
    shard.reconcile_topics_with_log();
    shard.spawn_background();
    if let Some((mesh, mut receivers)) = mesh {
        for (peer, receiver) in receivers.streams() {
            glommio::spawn_local(serve_mesh(shard.clone(), mesh.clone(), receiver, peer)).detach();
        }
    }
    let mut accepting = vec![glommio::spawn_local(accept_loop(
        shard.clone(),
        into_glommio(start.listener),
        Rc::new(ShardHandler(shard.clone())),
    ))];
    if let Some(fd) = start.front_door {
        accepting.push(glommio::spawn_local(accept_loop(
            shard.clone(),
            into_glommio(fd),
            Rc::new(FrontDoor(shard.clone())),
        )));
    }
    if let Some(fd) = start.ha_listener {
        let listener = into_glommio(fd);
        let background = shard.background;
        accepting.push(
            glommio::spawn_local_into(
                crate::replication::master::accept_loop(shard.clone(), listener),
                background,
            )
            .expect("the background queue exists"),
        );
    }
    let _ = start.ready.send((id, Ok(())));
    wait_for_shutdown(start.shutdown).await;
    log::info!("shard {id}: shutting down");
    drop(accepting);
    shard.shutdown().await;
    Ok(())
}

/// How a shard's start failure begins when its mesh did not form (the process starts again).
pub const MESH_NOT_FORMED: &str = "the cross-shard mesh did not form";

/// Joins the cross-shard mesh. Joining waits on wake-ups from the other executors, and on this
/// machine one such wake-up is occasionally lost while an executor is parked (14 of 450
/// starts with two shards hung: the first shard past the join, the second never waking).
/// Nothing else runs yet to wake the reactor, so a 10 ms ticker keeps it polling until the
/// mesh is formed. A wake-up lost by a task the join spawned is not helped by the ticker, so
/// the join still fails after 10 s, and the process starts again (`process.rs`).
async fn join_mesh(
    builder: MeshBuilder,
) -> Result<
    (
        Rc<Mesh>,
        glommio::channels::channel_mesh::Receivers<MeshMessage>,
    ),
    String,
> {
    const JOIN_LIMIT: std::time::Duration = std::time::Duration::from_secs(10);
    let ticker = async {
        let started = std::time::Instant::now();
        while started.elapsed() < JOIN_LIMIT {
            glommio::timer::sleep(std::time::Duration::from_millis(10)).await;
        }
        Err(format!(
            "{MESH_NOT_FORMED} within {} s",
            JOIN_LIMIT.as_secs()
        ))
    };
    let join = async { Mesh::join(builder).await.map_err(|e| e.to_string()) };
    futures_lite::future::or(join, ticker).await
}

async fn wait_for_shutdown(fd: OwnedFd) {
    // SAFETY: `fd` is an owned end of a Unix socket pair; ownership passes to the stream.
    let mut stream = unsafe { glommio::net::UnixStream::from_raw_fd(fd.into_raw_fd()) };
    let mut byte = [0u8; 1];
    let _ = stream.read(&mut byte).await;
}

/// Serves requests from `peer` over the mesh: each runs on this shard as if it had arrived on
/// its own port, and the answer goes back to `peer`. Replies to this shard's own calls to
/// `peer` arrive here too.
async fn serve_mesh(
    shard: Rc<Shard>,
    mesh: Rc<Mesh>,
    receiver: glommio::channels::shared_channel::ConnectedReceiver<MeshMessage>,
    peer: usize,
) {
    while let Some(message) = receiver.recv().await {
        match message {
            MeshMessage::Request { id, frame } => {
                let Ok(Decoded::Command { command, .. }) = remoting::decode(&frame, u32::MAX)
                else {
                    log::error!("mesh: undecodable request from shard {peer}");
                    continue;
                };
                // Requests run in arrival order; their answers leave when ready, so one that
                // waits (for durability, or for a handler's own mesh calls, whose replies
                // come through this loop) holds up neither the next request nor any reply.
                let conn = Connection::detached(shard.next_connection_id());
                dispatch(&shard, &conn, command);
                let (shard, mesh) = (shard.clone(), mesh.clone());
                glommio::spawn_local(async move {
                    if let Some(reply) = conn.take_reply(shard.store.log().durable()).await {
                        mesh.reply(peer, id, reply).await;
                    }
                })
                .detach();
            }
            MeshMessage::Reply { id, frame } => mesh.complete(id, frame),
            MeshMessage::HandOver { fd, hello } => {
                crate::replication::master::adopt(shard.clone(), fd, hello)
            }
        }
    }
}
