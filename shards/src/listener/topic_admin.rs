//! Topic and group administration served by a shard (spec §4.13): UPDATE_AND_CREATE_TOPIC (17),
//! GET_ALL_TOPIC_CONFIG (21), UPDATE_AND_CREATE_SUBSCRIPTIONGROUP (200).

use bytes::Bytes;

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
    match parse_topic(cmd) {
        Ok(topic) => {
            log::info!(
                "shard {}: topic {} now has {}/{} queues, perm {}",
                shard.config.shard_id,
                topic.topic_name,
                topic.read_queue_nums,
                topic.write_queue_nums,
                topic.perm
            );
            shard.put_topic(topic);
            RemotingCommand::response(response::SUCCESS, cmd.opaque)
        }
        Err(reply) => reply,
    }
}

pub fn all_topic_config(shard: &Shard, cmd: &RemotingCommand) -> RemotingCommand {
    let body = serde_json::to_vec(&shard.meta.borrow().topics).expect("topics serialize");
    RemotingCommand::response(response::SUCCESS, cmd.opaque).with_body(Bytes::from(body))
}

pub fn update_and_create_group(shard: &Shard, cmd: &RemotingCommand) -> RemotingCommand {
    let config: SubscriptionGroupConfig = match serde_json::from_slice(&cmd.body) {
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
    shard.put_group(config);
    RemotingCommand::response(response::SUCCESS, cmd.opaque)
}
