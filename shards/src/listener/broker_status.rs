//! GET_BROKER_RUNTIME_INFO (28): a shard's state as RocketMQ's `KVTable` (`{"table":{…}}`),
//! with RocketMQ's key names where one exists, and the shard's replication state: its role,
//! connected slaves, the slave's acknowledged offset and how far behind the other side is.

use std::collections::BTreeMap;

use bytes::Bytes;

use crate::broker::Shard;
use crate::remoting::{response, RemotingCommand};

pub fn runtime_info(shard: &Shard, cmd: &RemotingCommand) -> RemotingCommand {
    let log = shard.store.log();
    let durable = log.durable().get();
    let replicated = &shard.store.replicated;
    let mut table: BTreeMap<&str, String> = BTreeMap::new();
    table.insert("brokerVersionDesc", "V5_3_3".into());
    table.insert("brokerActive", "true".into());
    table.insert("commitLogMinOffset", "0".into());
    table.insert("commitLogMaxOffset", durable.to_string());
    table.insert("msgGetTotalTodayNow", shard.messages_got.get().to_string());
    // Rates over about 10 s, 1 min and 10 min; clusterList shows the first as InTPS / OutTPS.
    let now = std::time::Instant::now();
    let stats = shard.stats.borrow();
    for (key, puts) in [("putTps", true), ("getTransferredTps", false)] {
        let [a, b, c] = stats.broker_tps(puts, now);
        table.insert(key, format!("{a:.2} {b:.2} {c:.2}"));
    }
    if let Some(used) = shard.store.disk.used_percent() {
        table.insert("commitLogDiskRatio", format!("{:.4}", used / 100.0));
    }
    let slave = !shard.ha.is_master();
    let role = match shard.config.replication.role {
        _ if slave => "SLAVE",
        crate::replication::BrokerRole::SyncMaster => "SYNC_MASTER",
        _ => "ASYNC_MASTER",
    };
    table.insert("brokerRole", role.into());
    if shard.ha.controller {
        table.insert("controllerEpoch", shard.ha.epoch().to_string());
    }
    if slave {
        let master_end = replicated.master_end();
        table.insert(
            "haMasterAddress",
            shard.master_ha_addr().unwrap_or_default(),
        );
        table.insert("haMasterMaxOffset", master_end.to_string());
        table.insert(
            "haReplicationLagBytes",
            master_end.saturating_sub(durable).to_string(),
        );
    } else {
        let slaves = replicated.slaves();
        table.insert("haSlavesConnected", slaves.to_string());
        table.insert("haSlaveInSync", replicated.in_sync(durable).to_string());
        if slaves > 0 {
            table.insert("haSlaveAckOffset", replicated.acked().to_string());
            table.insert(
                "haReplicationLagBytes",
                durable.saturating_sub(replicated.acked()).to_string(),
            );
        }
    }
    let body = serde_json::json!({ "table": table });
    RemotingCommand::response(response::SUCCESS, cmd.opaque)
        .with_body(Bytes::from(body.to_string()))
}
