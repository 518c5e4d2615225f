//! Executor start-up, shard-local synchronisation and shutdown.

pub mod watermark;
