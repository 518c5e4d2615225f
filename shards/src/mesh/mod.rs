//! The cross-shard channel (glommio `channel_mesh`): typed messages with `Bytes` payloads and a
//! reply route. It carries the control plane only: requests that arrive at the process's front
//! door but belong to a shard (topic creation split across shards, config gathered from all),
//! each as an encoded remoting frame, answered by the owning shard with a frame.
//!
//! Only a (sender, receiver) pair is FIFO; nothing here relies on more.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::rc::Rc;

use bytes::Bytes;
use glommio::channels::channel_mesh::{Receivers, Senders};

use crate::remoting::{self, Decoded, RemotingCommand};
use crate::runtime::watermark::Signal;

/// Capacity of each (sender, receiver) channel; small capacities collapse throughput.
pub const MESH_CHANNEL_CAPACITY: usize = 1024;

pub enum MeshMessage {
    Request {
        id: u64,
        frame: Bytes,
    },
    Reply {
        id: u64,
        frame: Bytes,
    },
    /// A replication connection accepted on shard 0 for the shard its hello names.
    HandOver {
        fd: OwnedFd,
        hello: Bytes,
    },
}

pub type MeshBuilder = glommio::channels::channel_mesh::MeshBuilder<
    MeshMessage,
    glommio::channels::channel_mesh::Full,
>;

#[derive(Default)]
struct ReplySlot {
    frame: RefCell<Option<Bytes>>,
    ready: Signal,
}

/// One shard's end of the mesh.
pub struct Mesh {
    senders: Senders<MeshMessage>,
    next_id: Cell<u64>,
    waiting: RefCell<HashMap<u64, Rc<ReplySlot>>>,
}

#[derive(Debug, thiserror::Error)]
pub enum MeshError {
    #[error("shard {0} is not reachable over the mesh")]
    Unreachable(usize),
    #[error("shard {shard} answered with an undecodable frame")]
    BadReply { shard: usize },
}

impl Mesh {
    /// Joins the mesh; returns this shard's end and the receivers to serve.
    pub async fn join(
        builder: MeshBuilder,
    ) -> Result<(Rc<Mesh>, Receivers<MeshMessage>), MeshError> {
        let (senders, receivers) = builder
            .join()
            .await
            .map_err(|_| MeshError::Unreachable(usize::MAX))?;
        let mesh = Mesh {
            senders,
            next_id: Cell::new(0),
            waiting: RefCell::new(HashMap::new()),
        };
        Ok((Rc::new(mesh), receivers))
    }

    pub fn shard_id(&self) -> usize {
        self.senders.peer_id()
    }

    pub fn shard_count(&self) -> usize {
        self.senders.nr_consumers()
    }

    /// Sends `cmd` to `shard` and waits for its answer.
    pub async fn call(
        &self,
        shard: usize,
        cmd: &RemotingCommand,
    ) -> Result<RemotingCommand, MeshError> {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        let slot = Rc::new(ReplySlot::default());
        self.waiting.borrow_mut().insert(id, slot.clone());
        let frame = remoting::encode_to_bytes(cmd);
        if self
            .senders
            .send_to(shard, MeshMessage::Request { id, frame })
            .await
            .is_err()
        {
            self.waiting.borrow_mut().remove(&id);
            return Err(MeshError::Unreachable(shard));
        }
        loop {
            if let Some(frame) = slot.frame.borrow_mut().take() {
                return match remoting::decode(&frame, u32::MAX) {
                    Ok(Decoded::Command { command, .. }) => Ok(command),
                    _ => Err(MeshError::BadReply { shard }),
                };
            }
            slot.ready.wait().await;
        }
    }

    /// Gives a slave's replication connection (and its hello) to `shard`.
    pub async fn hand_over(
        &self,
        shard: usize,
        fd: OwnedFd,
        hello: Bytes,
    ) -> Result<(), MeshError> {
        self.senders
            .send_to(shard, MeshMessage::HandOver { fd, hello })
            .await
            .map_err(|_| MeshError::Unreachable(shard))
    }

    /// Answers the request `id` from `shard`.
    pub async fn reply(&self, shard: usize, id: u64, frame: Bytes) {
        if self
            .senders
            .send_to(shard, MeshMessage::Reply { id, frame })
            .await
            .is_err()
        {
            log::warn!("mesh: shard {shard} went away before its reply {id}");
        }
    }

    /// Delivers a reply to the waiting caller.
    pub fn complete(&self, id: u64, frame: Bytes) {
        if let Some(slot) = self.waiting.borrow_mut().remove(&id) {
            *slot.frame.borrow_mut() = Some(frame);
            slot.ready.raise();
        }
    }
}
