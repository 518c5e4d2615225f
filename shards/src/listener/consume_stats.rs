//! GET_CONSUME_STATS (208): a group's progress per queue on this broker (spec §4.13), what
//! `consumerProgress` and the dashboard show. The body is fastjson's ConsumeStats with its
//! MessageQueue-keyed map written as fastjson writes it: keys are raw JSON objects (spec §5).

use std::fmt::Write as _;

use bytes::Bytes;

use crate::broker::Shard;
use crate::remoting::headers::Fields;
use crate::remoting::{response, RemotingCommand};

pub fn consume_stats(shard: &Shard, cmd: &RemotingCommand) -> RemotingCommand {
    let f = Fields(&cmd.ext_fields);
    let group = match f.str("consumerGroup") {
        Ok(g) => g,
        Err(e) => {
            return RemotingCommand::response(response::SYSTEM_ERROR, cmd.opaque)
                .with_remark(e.to_string())
        }
    };
    let topics = match f.opt_str("topic").filter(|t| !t.is_empty()) {
        Some(topic) => vec![topic.to_string()],
        None => shard.store.offsets.borrow().topics_of(group),
    };
    let meta = shard.meta.borrow();
    let offsets = shard.store.offsets.borrow();
    let queues = shard.store.queues();
    let mut table = String::new();
    let mut tps = 0.0;
    for topic in &topics {
        tps += offsets.pull_rate(topic, group, std::time::Instant::now());
        let Some(config) = meta.topic(topic) else {
            continue;
        };
        for queue_id in 0..config.read_queue_nums {
            let broker_offset = shard.store.max_offset(topic, queue_id) as i64;
            let consumer_offset = offsets.get(topic, group, queue_id).unwrap_or(0).max(0);
            let pull_offset = offsets
                .pulled(topic, group, queue_id)
                .unwrap_or(-1)
                .max(consumer_offset);
            let last_timestamp = (consumer_offset > 0)
                .then(|| queues.get(topic, queue_id))
                .flatten()
                .and_then(|q| q.get(consumer_offset as u64 - 1))
                .map_or(0, |e| e.store_timestamp);
            if !table.is_empty() {
                table.push(',');
            }
            let _ = write!(
                table,
                "{}:{{\"brokerOffset\":{broker_offset},\"consumerOffset\":{consumer_offset},\
                 \"lastTimestamp\":{last_timestamp},\"pullOffset\":{pull_offset}}}",
                mq_key(&shard.config.broker_name, topic, queue_id),
            );
        }
    }
    // `consumeTps` is what the group pulled per second (RocketMQ counts the same).
    let body = format!("{{\"consumeTps\":{tps:.1},\"offsetTable\":{{{table}}}}}");
    RemotingCommand::response(response::SUCCESS, cmd.opaque).with_body(Bytes::from(body))
}

/// A MessageQueue as fastjson writes it when it keys a map: a raw JSON object, members in
/// alphabetical order (spec §5).
pub(crate) fn mq_key(broker_name: &str, topic: &str, queue_id: i32) -> String {
    let quoted = |s: &str| serde_json::to_string(s).expect("a string serializes");
    format!(
        "{{\"brokerName\":{},\"queueId\":{queue_id},\"topic\":{}}}",
        quoted(broker_name),
        quoted(topic)
    )
}
