//! Executor start-up, shard-local synchronisation and shutdown.

pub mod latency;
pub mod shard;
pub mod watermark;
