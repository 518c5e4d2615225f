//! Master–slave replication (F26, DESIGN.md §6). A slave process (`brokerRole=SLAVE`, same
//! `brokerName` and shard count, `brokerId` ≥ 1) follows its master: each slave shard opens
//! one connection to the master's HA port (`haListenPort`), names its shard and its log end,
//! and receives the master shard's log from there, as the log's own bytes, at the same
//! physical offsets. The slave checks every entry (its crc32c trailer and offset) and every
//! frame (crc32c), appends the bytes, builds its consume queues and key index from them as a
//! send would, and acknowledges what is durable.
//!
//! On the master, the HA port is accepted by shard 0, which reads the hello and hands the
//! connection to the shard it names over the mesh; each shard streams its own log in a
//! low-share background task queue, so client work on that core keeps priority and the log's
//! bytes never cross cores. A slave that disconnects or restarts starts again from its own
//! log end; a frame that fails its check is dropped with the connection and fetched again.
//!
//! A slave serves pulls, offsets and queries from its copy, and refuses every write
//! (sends, send-backs, transaction ends) with SERVICE_NOT_AVAILABLE, as RocketMQ's does.
//!
//! Why a task queue on each shard and not a replication executor of its own: the bytes to
//! send are in the shard's log (its segments and its durable watermark are the shard's and
//! never leave it), so a separate executor would need every chunk copied across cores and
//! every watermark change sent over a channel, and on a 2-core host it would be one more
//! thread competing with the shards for the same cores. The background queue (250 shares
//! against the client queue's default 1000, `Latency::NotImportant`) lets glommio's scheduler
//! keep client work first under load while an idle shard streams at full speed. The HA port
//! is still one per process, as RocketMQ's is: shard 0 accepts and hands the socket over.
//!
//! On a SYNC_MASTER (`store::replicated`), a send's answer waits for the slave's
//! acknowledgement of its record (a watermark, like group commit: the shard never blocks),
//! and consumers see a message only once the slave holds it.
//!
//! Under a controller (`enableControllerMode`, `controller.rs` here and the name server's
//! `namesrv::controller`), roles change at run time (`role.rs`): every replica starts as a
//! slave, the controller elects a master per shard group, and a master that dies is replaced
//! by an in-sync slave. Epochs (`epochs.rs`) say which master wrote which part of a log, so a
//! master can tell whether a slave's log is a prefix of its own and, if not, where they part;
//! a replica whose log parted cuts it there when it starts (`slave::divergence_at_start`).
//! The controller is one state machine on one name server; replicating it with Raft is the
//! next step; its changes are few and deterministic, which is what a Raft log carries.

pub mod controller;
pub mod epochs;
pub mod frame;
pub mod master;
pub mod role;
pub mod slave;
pub mod state;

use bytes::BytesMut;
use futures_lite::AsyncReadExt;
use glommio::net::TcpStream;

use frame::{Frame, FrameError};

/// `brokerRole`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokerRole {
    AsyncMaster,
    SyncMaster,
    Slave,
}

impl BrokerRole {
    pub fn parse(s: &str) -> Option<BrokerRole> {
        match s {
            "ASYNC_MASTER" => Some(BrokerRole::AsyncMaster),
            "SYNC_MASTER" => Some(BrokerRole::SyncMaster),
            "SLAVE" => Some(BrokerRole::Slave),
            _ => None,
        }
    }

    pub fn is_slave(self) -> bool {
        self == BrokerRole::Slave
    }
}

/// What a shard knows of replication.
#[derive(Debug, Clone)]
pub struct ReplicationConfig {
    pub role: BrokerRole,
    /// `brokerId`: 0 for a master, ≥ 1 for a slave.
    pub broker_id: i64,
    /// The master's HA address a slave follows (`haMasterAddress`); without it, the one the
    /// name servers give at registration.
    pub master_ha_addr: Option<String>,
    /// This process's HA address as registered (`haServerAddr`), for a master.
    pub ha_addr: Option<String>,
    /// `syncFlushTimeout`: how long a SYNC_MASTER's send waits for its slave.
    pub sync_flush_timeout: std::time::Duration,
    /// `haHousekeepingInterval`: a master or slave that hears nothing from the other end
    /// for this long drops the connection (a partition leaves TCP connections open).
    pub housekeeping: std::time::Duration,
    /// `enableControllerMode`: the controller, not `brokerRole`, says who is master.
    pub controller: Option<ControllerLink>,
    /// `slaveReadEnable`: pulls far behind are sent to a slave.
    pub slave_read_enable: bool,
}

/// How a shard reaches the controller (`enableControllerMode=true`).
#[derive(Debug, Clone)]
pub struct ControllerLink {
    /// `controllerAddr`, else the name servers.
    pub addrs: Vec<String>,
    /// `brokerHeartbeatInterval`.
    pub heartbeat_interval: std::time::Duration,
    /// `controllerHeartBeatTimeoutMills`: silent this long, the replica counts as dead.
    pub heartbeat_timeout: std::time::Duration,
}

impl Default for ReplicationConfig {
    fn default() -> Self {
        ReplicationConfig {
            role: BrokerRole::AsyncMaster,
            broker_id: 0,
            master_ha_addr: None,
            ha_addr: None,
            sync_flush_timeout: std::time::Duration::from_secs(5),
            housekeeping: std::time::Duration::from_secs(20),
            controller: None,
            slave_read_enable: false,
        }
    }
}

/// Reads frames from one replication connection.
pub struct FrameReader {
    stream: TcpStream,
    buf: BytesMut,
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("connection closed")]
    Closed,
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Frame(#[from] FrameError),
}

impl FrameReader {
    pub fn new(stream: TcpStream) -> FrameReader {
        FrameReader {
            stream,
            buf: BytesMut::with_capacity(64 << 10),
        }
    }

    pub async fn next(&mut self) -> Result<Frame, ReadError> {
        loop {
            if let Some((frame, used)) = Frame::decode(&self.buf)? {
                let _ = self.buf.split_to(used);
                return Ok(frame);
            }
            let len = self.buf.len();
            self.buf.resize(len + (64 << 10), 0);
            let n = self.stream.read(&mut self.buf[len..]).await?;
            self.buf.truncate(len + n);
            if n == 0 {
                return Err(ReadError::Closed);
            }
        }
    }

    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    pub fn into_stream(self) -> TcpStream {
        self.stream
    }
}

/// Writes one frame.
pub async fn write_frame(stream: &mut TcpStream, frame: &Frame) -> std::io::Result<()> {
    use futures_lite::AsyncWriteExt;
    stream.write_all(&frame.encode()).await
}
