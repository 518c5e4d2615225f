//! Read-only questions RocketMQ's tools ask a broker (spec §4.13): GET_TOPIC_CONFIG (351),
//! GET_TOPIC_STATS_INFO (202), QUERY_TOPIC_CONSUME_BY_WHO (300), QUERY_TOPICS_BY_CONSUMER
//! (343), GET_ALL_SUBSCRIPTIONGROUP_CONFIG (201), GET_SUBSCRIPTIONGROUP_CONFIG (352) and
//! VIEW_BROKER_STATS_DATA (315). Bodies are fastjson's shapes; MessageQueue-keyed maps are
//! written with raw JSON object keys as fastjson writes them.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::time::Instant;

use bytes::Bytes;

use super::consume_stats::mq_key;
use crate::broker::stats::{Snapshot, StatsName};
use crate::broker::Shard;
use crate::remoting::headers::Fields;
use crate::remoting::{response, RemotingCommand};

fn fail(cmd: &RemotingCommand, code: i32, remark: impl Into<String>) -> RemotingCommand {
    RemotingCommand::response(code, cmd.opaque).with_remark(remark)
}

fn ok(cmd: &RemotingCommand, body: String) -> RemotingCommand {
    RemotingCommand::response(response::SUCCESS, cmd.opaque).with_body(Bytes::from(body))
}

/// The header field `key`, or the reply that names it missing.
fn field<'a>(cmd: &'a RemotingCommand, key: &'static str) -> Result<&'a str, RemotingCommand> {
    Fields(&cmd.ext_fields)
        .str(key)
        .map_err(|e| fail(cmd, response::SYSTEM_ERROR, e.to_string()))
}

/// 351: one topic's config (TopicConfigAndQueueMapping without a static-topic mapping).
pub fn topic_config(shard: &Shard, cmd: &RemotingCommand) -> RemotingCommand {
    let topic = match field(cmd, "topic") {
        Ok(t) => t,
        Err(reply) => return reply,
    };
    match shard.meta.borrow().topic(topic) {
        Some(config) => ok(
            cmd,
            serde_json::to_string(config).expect("a topic serializes"),
        ),
        None => fail(
            cmd,
            response::TOPIC_NOT_EXIST,
            format!("No topic in this broker. topic: {topic}"),
        ),
    }
}

/// 202: per queue its first and next offset and when its last message was stored, and the
/// topic's put rate over the last minute.
pub fn topic_stats(shard: &Shard, cmd: &RemotingCommand) -> RemotingCommand {
    let topic = match field(cmd, "topic") {
        Ok(t) => t,
        Err(reply) => return reply,
    };
    let Some(queue_count) = shard.meta.borrow().topic(topic).map(|t| t.queue_count()) else {
        return fail(
            cmd,
            response::TOPIC_NOT_EXIST,
            format!("topic[{topic}] not exist"),
        );
    };
    let queues = shard.store.queues();
    let mut table = String::new();
    for queue_id in 0..queue_count {
        let max = shard.store.max_offset(topic, queue_id);
        let min = shard.store.min_offset(topic, queue_id).min(max);
        let last = (max > 0)
            .then(|| queues.get(topic, queue_id))
            .flatten()
            .and_then(|q| q.get(max - 1))
            .map_or(0, |e| e.store_timestamp);
        if !table.is_empty() {
            table.push(',');
        }
        let _ = write!(
            table,
            "{}:{{\"lastUpdateTimestamp\":{last},\"maxOffset\":{max},\"minOffset\":{min}}}",
            mq_key(&shard.config.broker_name, topic, queue_id),
        );
    }
    let tps = shard.stats.borrow().topic_put_tps(topic, Instant::now());
    ok(
        cmd,
        format!("{{\"offsetTable\":{{{table}}},\"topicPutTps\":{tps}}}"),
    )
}

/// 300: the groups that consume `topic` here: online subscribers and groups with offsets.
pub fn topic_consumed_by(shard: &Shard, cmd: &RemotingCommand) -> RemotingCommand {
    let topic = match field(cmd, "topic") {
        Ok(t) => t,
        Err(reply) => return reply,
    };
    let mut groups: BTreeSet<String> = shard.clients.borrow().groups_subscribed_to(topic);
    groups.extend(shard.store.offsets.borrow().groups_of(topic));
    ok(cmd, serde_json::json!({ "groupList": groups }).to_string())
}

/// 343: the topics `group` has offsets on here, and this broker's address.
pub fn topics_of_group(shard: &Shard, cmd: &RemotingCommand) -> RemotingCommand {
    let group = match field(cmd, "group") {
        Ok(g) => g,
        Err(reply) => return reply,
    };
    let topics: BTreeSet<String> = shard
        .store
        .offsets
        .borrow()
        .topics_of(group)
        .into_iter()
        .collect();
    let body = serde_json::json!({
        "topicList": topics,
        "brokerAddr": shard.config.advertised_addr.to_string(),
    });
    ok(cmd, body.to_string())
}

/// 201: every subscription group's config (SubscriptionGroupWrapper).
pub fn all_group_config(shard: &Shard, cmd: &RemotingCommand) -> RemotingCommand {
    let meta = shard.meta.borrow();
    let body = serde_json::json!({
        "subscriptionGroupTable": meta.groups.subscription_group_table,
        "forbiddenTable": {},
        "dataVersion": meta.groups.data_version,
    });
    ok(cmd, body.to_string())
}

/// 352: one group's config.
pub fn group_config(shard: &Shard, cmd: &RemotingCommand) -> RemotingCommand {
    let group = match field(cmd, "group") {
        Ok(g) => g,
        Err(reply) => return reply,
    };
    match shard.meta.borrow().group(group) {
        Some(config) => ok(
            cmd,
            serde_json::to_string(config).expect("a group serializes"),
        ),
        None => fail(
            cmd,
            response::SUBSCRIPTION_GROUP_NOT_EXIST,
            format!("subscription group [{group}] does not exist"),
        ),
    }
}

/// 315: a statistic's last minute, hour and day (BrokerStatsData).
pub fn view_stats(shard: &Shard, cmd: &RemotingCommand) -> RemotingCommand {
    let (name, key) = match (field(cmd, "statsName"), field(cmd, "statsKey")) {
        (Ok(n), Ok(k)) => (n, k),
        (Err(reply), _) | (_, Err(reply)) => return reply,
    };
    let not_there = || format!("The stats <{name}> <{key}> not exist");
    let Some(stats_name) = StatsName::parse(name) else {
        return fail(cmd, response::SYSTEM_ERROR, not_there());
    };
    let Some([minute, hour, day]) = shard.stats.borrow().view(stats_name, key, Instant::now())
    else {
        return fail(cmd, response::SYSTEM_ERROR, not_there());
    };
    let item = |s: Snapshot| serde_json::json!({ "sum": s.sum, "tps": s.tps, "avgpt": s.avgpt });
    let body = serde_json::json!({
        "statsMinute": item(minute),
        "statsHour": item(hour),
        "statsDay": item(day),
    });
    ok(cmd, body.to_string())
}
