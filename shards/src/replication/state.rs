//! The shard state a slave takes from its master besides the log: topic and group tables,
//! committed consumer offsets, delay and transaction progress. Sent whole, whenever it
//! changed, so that a slave that takes over re-reads nothing and loses no delayed or half
//! message.

use serde::{Deserialize, Serialize};

use crate::broker::metadata::{GroupTable, TopicTable};
use crate::broker::Shard;

#[derive(Serialize)]
struct Outgoing<'a> {
    topics: &'a TopicTable,
    groups: &'a GroupTable,
    offsets: serde_json::Value,
    delay: serde_json::Value,
    transactions: serde_json::Value,
}

#[derive(Deserialize)]
struct Incoming {
    topics: TopicTable,
    groups: GroupTable,
    offsets: serde_json::Value,
    delay: serde_json::Value,
    transactions: serde_json::Value,
}

/// The master shard's state, as sent.
pub fn snapshot(shard: &Shard) -> Vec<u8> {
    let meta = shard.meta.borrow();
    let offsets = shard.store.offsets.borrow().to_json();
    let offsets: serde_json::Value = serde_json::from_slice(&offsets).expect("offsets are JSON");
    serde_json::to_vec(&Outgoing {
        topics: &meta.topics,
        groups: &meta.groups,
        offsets,
        delay: shard.delay.to_json_value(),
        transactions: shard.transactions.to_json_value(),
    })
    .expect("state serializes")
}

/// Takes the master's state on a slave shard; it is persisted as the slave's own.
pub fn adopt(shard: &Shard, json: &[u8]) -> Result<(), String> {
    let state: Incoming = serde_json::from_slice(json).map_err(|e| format!("master state: {e}"))?;
    shard
        .store
        .offsets
        .borrow_mut()
        .adopt(state.offsets)
        .map_err(|e| format!("master offsets: {e}"))?;
    shard.delay.replace_from(state.delay)?;
    shard.transactions.replace_from(state.transactions)?;
    shard.replace_tables(state.topics, state.groups);
    Ok(())
}
