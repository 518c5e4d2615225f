//! petrel: the product around the shards: `broker.conf` loading, the name server, process
//! wiring, the admin CLI and Petrel's own RocketMQ client.

pub mod admin;
pub mod client;
pub mod config;
pub mod metrics;
pub mod namesrv;
pub mod process;
