//! Networking on a shard: the connection loop shared by broker shards and the name server,
//! listeners that fail fast on a taken port, and a small request/response client.

pub mod connection;
pub mod listener;
pub mod open_files;
pub mod rpc_client;

pub use connection::{serve_connection, Connection, Handler};
