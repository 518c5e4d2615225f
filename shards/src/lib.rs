//! petrel-shards: everything that runs on one core. The remoting codec, the record format and
//! the recovery scan are pure; the commit log, consume queues, listener and mesh live on a
//! glommio executor pinned to their core and never leave it.

pub mod acl;
pub mod broker;
pub mod commitlog;
pub mod consume_queue;
pub mod index;
pub mod listener;
pub mod mesh;
pub mod net;
pub mod record;
pub mod remarks;
pub mod remoting;
pub mod replication;
pub mod runtime;
pub mod store;
#[cfg(test)]
mod testing;
