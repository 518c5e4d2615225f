//! Topic and group administration served by a shard (spec §4.13): UPDATE_AND_CREATE_TOPIC (17),
//! GET_ALL_TOPIC_CONFIG (21), UPDATE_AND_CREATE_SUBSCRIPTIONGROUP (200), DELETE_TOPIC_IN_BROKER
//! (215), DELETE_SUBSCRIPTIONGROUP (207), and the connection lists (203, 204).

use bytes::Bytes;

use crate::broker::attributes::{self, Owner};
use crate::broker::metadata::{self, SubscriptionGroupConfig, TopicConfig};
use crate::broker::Shard;
use crate::remoting::headers::{Fields, HeaderError};
use crate::remoting::{response, RemotingCommand};

/// Queues one topic may have on one shard.
pub const QUEUES_PER_TOPIC_MAX: i32 = 1024;

fn fail(cmd: &RemotingCommand, code: i32, remark: impl Into<String>) -> RemotingCommand {
    RemotingCommand::response(code, cmd.opaque).with_remark(remark)
}

/// Parses and validates the topic of an UPDATE_AND_CREATE_TOPIC request.
pub fn parse_topic(cmd: &RemotingCommand) -> Result<TopicConfig, RemotingCommand> {
    let f = Fields(&cmd.ext_fields);
    let parsed = (|| {
        Ok::<_, HeaderError>(TopicConfig {
            topic_name: f.str("topic")?.to_string(),
            read_queue_nums: f.i32("readQueueNums")?,
            write_queue_nums: f.i32("writeQueueNums")?,
            perm: f.i32("perm")?,
            topic_filter_type: f
                .opt_str("topicFilterType")
                .unwrap_or("SINGLE_TAG")
                .to_string(),
            topic_sys_flag: f.opt_i32("topicSysFlag")?.unwrap_or(0),
            order: f.bool("order"),
            ..TopicConfig::default()
        })
    })();
    let topic = parsed.map_err(|e| fail(cmd, response::SYSTEM_ERROR, e.to_string()))?;
    metadata::validate_name("topic", &topic.topic_name, metadata::TOPIC_NAME_MAX)
        .map_err(|e| fail(cmd, response::INVALID_PARAMETER, e.to_string()))?;
    for (key, n) in [
        ("readQueueNums", topic.read_queue_nums),
        ("writeQueueNums", topic.write_queue_nums),
    ] {
        if !(0..=QUEUES_PER_TOPIC_MAX).contains(&n) {
            return Err(fail(
                cmd,
                response::INVALID_PARAMETER,
                format!("{key} {n} is outside 0..={QUEUES_PER_TOPIC_MAX}"),
            ));
        }
    }
    if !(0..8).contains(&topic.perm) {
        return Err(fail(
            cmd,
            response::INVALID_PARAMETER,
            format!("perm {} is not a valid permission (0..7)", topic.perm),
        ));
    }
    Ok(topic)
}

pub fn update_and_create_topic(shard: &Shard, cmd: &RemotingCommand) -> RemotingCommand {
    match parse_topic(cmd).and_then(|topic| with_attributes(shard, cmd, topic)) {
        Ok(topic) => {
            log::info!(
                "shard {}: topic {} now has {}/{} queues, perm {}",
                shard.config.shard_id,
                topic.topic_name,
                topic.read_queue_nums,
                topic.write_queue_nums,
                topic.perm
            );
            match shard.create_topic(topic) {
                Ok(()) => RemotingCommand::response(response::SUCCESS, cmd.opaque),
                Err(remark) => fail(cmd, response::SYSTEM_ERROR, remark),
            }
        }
        Err(reply) => reply,
    }
}

/// The topic with the request's attribute changes (`attributes`, `+k=v,-k2`) applied to
/// the ones it has.
fn with_attributes(
    shard: &Shard,
    cmd: &RemotingCommand,
    mut topic: TopicConfig,
) -> Result<TopicConfig, RemotingCommand> {
    let current = shard.meta.borrow().topic(&topic.topic_name).cloned();
    let modification = cmd.field("attributes").unwrap_or("");
    let altered = attributes::parse_modification(modification).and_then(|pairs| {
        let now = current.as_ref().map(|t| &t.attributes);
        let empty = Default::default();
        attributes::alter(
            Owner::Topic,
            now.unwrap_or(&empty),
            &pairs,
            current.is_none(),
        )
    });
    topic.attributes = altered.map_err(|e| fail(cmd, response::INVALID_PARAMETER, e))?;
    Ok(topic)
}

pub fn all_topic_config(shard: &Shard, cmd: &RemotingCommand) -> RemotingCommand {
    let body = serde_json::to_vec(&shard.meta.borrow().topics).expect("topics serialize");
    RemotingCommand::response(response::SUCCESS, cmd.opaque).with_body(Bytes::from(body))
}

pub fn update_and_create_group(shard: &Shard, cmd: &RemotingCommand) -> RemotingCommand {
    let mut config: SubscriptionGroupConfig = match serde_json::from_slice(&cmd.body) {
        Ok(c) => c,
        Err(e) => {
            return fail(
                cmd,
                response::SYSTEM_ERROR,
                format!("bad SubscriptionGroupConfig body: {e}"),
            )
        }
    };
    if let Err(e) = metadata::validate_name("group", &config.group_name, metadata::GROUP_NAME_MAX) {
        return fail(cmd, response::INVALID_PARAMETER, e.to_string());
    }
    // The body's attributes are changes (`+k`/`-k` keys) to the group's current ones.
    let current = shard.meta.borrow().group(&config.group_name).cloned();
    let pairs: Vec<(String, String)> = std::mem::take(&mut config.attributes).into_iter().collect();
    let now = current
        .as_ref()
        .map(|g| g.attributes.clone())
        .unwrap_or_default();
    match attributes::alter(Owner::Group, &now, &pairs, current.is_none()) {
        Ok(altered) => config.attributes = altered,
        Err(e) => return fail(cmd, response::INVALID_PARAMETER, e),
    }
    shard.put_group(config);
    RemotingCommand::response(response::SUCCESS, cmd.opaque)
}

/// Topics Petrel's own features need; they cannot be deleted.
fn is_system_topic(topic: &str) -> bool {
    topic == metadata::AUTO_CREATE_TOPIC_KEY
        || topic == crate::broker::schedule::SCHEDULE_TOPIC
        || topic.starts_with("RMQ_SYS_")
        || topic == crate::broker::transaction::DISCARD_TOPIC
}

/// DELETE_TOPIC_IN_BROKER (215): refused while a live consumer subscribes to the topic or a
/// live producer sends to it (F36, in the seed's words). With `checkOnly` nothing is deleted:
/// the admin asks every broker first, so a refusal anywhere deletes nothing anywhere. The
/// messages stay in the log; consumer offsets on the topic go.
pub fn delete_topic(shard: &Shard, cmd: &RemotingCommand) -> RemotingCommand {
    let f = Fields(&cmd.ext_fields);
    let topic = match f.str("topic") {
        Ok(t) => t,
        Err(e) => return fail(cmd, response::SYSTEM_ERROR, e.to_string()),
    };
    if is_system_topic(topic) {
        return fail(
            cmd,
            response::NO_PERMISSION,
            format!("topic {topic} is a system topic and cannot be deleted"),
        );
    }
    if let Some(why) = shard.topic_in_use(topic) {
        return fail(cmd, response::SYSTEM_ERROR, why);
    }
    if f.opt_str("checkOnly") != Some("true") && shard.delete_topic(topic) {
        log::info!("shard {}: deleted topic {topic}", shard.config.shard_id);
    }
    RemotingCommand::response(response::SUCCESS, cmd.opaque)
}

/// DELETE_SUBSCRIPTIONGROUP (207): the group's config, and with `cleanOffset` its offsets.
pub fn delete_group(shard: &Shard, cmd: &RemotingCommand) -> RemotingCommand {
    let f = Fields(&cmd.ext_fields);
    let group = match f.str("groupName") {
        Ok(g) => g,
        Err(e) => return fail(cmd, response::SYSTEM_ERROR, e.to_string()),
    };
    if shard.delete_group(group, f.bool("cleanOffset")) {
        log::info!("shard {}: deleted group {group}", shard.config.shard_id);
    }
    RemotingCommand::response(response::SUCCESS, cmd.opaque)
}

/// GET_CONSUMER_CONNECTION_LIST (203): the group's live members, their subscriptions and
/// settings, as ConsumerConnection.
pub fn consumer_connection(shard: &Shard, cmd: &RemotingCommand) -> RemotingCommand {
    let group = match Fields(&cmd.ext_fields).str("consumerGroup") {
        Ok(g) => g,
        Err(e) => return fail(cmd, response::SYSTEM_ERROR, e.to_string()),
    };
    let clients = shard.clients.borrow();
    let members = clients.consumer_clients(group);
    let Some(info) = clients
        .consumer_group(group)
        .filter(|_| !members.is_empty())
    else {
        return fail(
            cmd,
            response::CONSUMER_NOT_ONLINE,
            format!("the consumer group[{group}] not online"),
        );
    };
    let subscriptions: serde_json::Map<String, serde_json::Value> = info
        .subscriptions
        .iter()
        .map(|(topic, s)| {
            let value = serde_json::json!({
                "topic": s.topic, "subString": s.sub_string, "tagsSet": s.tags_set,
                "codeSet": s.code_set, "subVersion": s.sub_version,
                "expressionType": s.expression_type.as_deref().unwrap_or("TAG"),
            });
            (topic.clone(), value)
        })
        .collect();
    let body = serde_json::json!({
        "connectionSet": members,
        "consumeFromWhere": info.consume_from_where,
        "consumeType": info.consume_type,
        "messageModel": info.message_model,
        "subscriptionTable": subscriptions,
    });
    RemotingCommand::response(response::SUCCESS, cmd.opaque)
        .with_body(Bytes::from(body.to_string()))
}

/// GET_PRODUCER_CONNECTION_LIST (204): the live members of a producer group.
pub fn producer_connection(shard: &Shard, cmd: &RemotingCommand) -> RemotingCommand {
    let group = match Fields(&cmd.ext_fields).str("producerGroup") {
        Ok(g) => g,
        Err(e) => return fail(cmd, response::SYSTEM_ERROR, e.to_string()),
    };
    let members = shard.clients.borrow().producer_clients(group);
    if members.is_empty() {
        return fail(
            cmd,
            response::SYSTEM_ERROR,
            format!("the producer group[{group}] not exist"),
        );
    }
    let body = serde_json::json!({ "connectionSet": members });
    RemotingCommand::response(response::SUCCESS, cmd.opaque)
        .with_body(Bytes::from(body.to_string()))
}
