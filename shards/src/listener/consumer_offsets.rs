//! Offsets (spec §4.7): QUERY_CONSUMER_OFFSET (14), UPDATE_CONSUMER_OFFSET (15),
//! SEARCH_OFFSET_BY_TIMESTAMP (29), GET_MAX_OFFSET (30), GET_MIN_OFFSET (31),
//! GET_EARLIEST_MSG_STORETIME (32), and INVOKE_BROKER_TO_RESET_OFFSET (222).

use super::consume_stats::mq_key;
use crate::broker::Shard;
use crate::consume_queue::Boundary;
use crate::remarks;
use crate::remoting::headers::{Fields, HeaderError};
use crate::remoting::{response, RemotingCommand};

fn ok(cmd: &RemotingCommand) -> RemotingCommand {
    RemotingCommand::response(response::SUCCESS, cmd.opaque)
}

fn bad(cmd: &RemotingCommand, e: HeaderError) -> RemotingCommand {
    RemotingCommand::response(response::SYSTEM_ERROR, cmd.opaque).with_remark(e.to_string())
}

fn topic_queue(cmd: &RemotingCommand) -> Result<(&str, i32), HeaderError> {
    let f = Fields(&cmd.ext_fields);
    Ok((f.str("topic")?, f.i32("queueId")?))
}

pub fn query(shard: &Shard, cmd: &RemotingCommand) -> RemotingCommand {
    let f = Fields(&cmd.ext_fields);
    let parsed =
        (|| Ok::<_, HeaderError>((f.str("consumerGroup")?, f.str("topic")?, f.i32("queueId")?)))();
    let (group, topic, queue_id) = match parsed {
        Ok(p) => p,
        Err(e) => return bad(cmd, e),
    };
    if let Some(offset) = shard.store.offsets.borrow().get(topic, group, queue_id) {
        return ok(cmd).with_field("offset", offset);
    }
    let set_zero = f
        .opt_str("setZeroIfNotFound")
        .is_none_or(|v| !v.eq_ignore_ascii_case("false"));
    // RocketMQ answers 0 when the queue was never truncated and its first message is still in
    // memory; "in memory" here is "within the newest 40 % of RAM worth of log".
    let first_in_memory = {
        let queues = shard.store.queues();
        queues
            .get(topic, queue_id)
            .and_then(|q| q.get(q.min_offset()))
            .is_some_and(|first| {
                shard
                    .store
                    .log()
                    .durable()
                    .get()
                    .saturating_sub(first.commit_log_offset)
                    <= shard.in_memory_window_bytes
            })
    };
    if set_zero && shard.store.min_offset(topic, queue_id) == 0 && first_in_memory {
        return ok(cmd).with_field("offset", 0);
    }
    RemotingCommand::response(response::QUERY_NOT_FOUND, cmd.opaque)
        .with_remark("Not found, V3_0_6_SNAPSHOT maybe this group consumer boot first")
}

pub fn update(shard: &Shard, cmd: &RemotingCommand) -> RemotingCommand {
    let f = Fields(&cmd.ext_fields);
    let parsed = (|| {
        Ok::<_, HeaderError>((
            f.str("consumerGroup")?,
            f.str("topic")?,
            f.i32("queueId")?,
            f.i64("commitOffset")?,
        ))
    })();
    match parsed {
        Ok((group, topic, queue_id, offset)) => {
            shard
                .store
                .offsets
                .borrow_mut()
                .commit(topic, group, queue_id, offset);
            ok(cmd)
        }
        Err(e) => bad(cmd, e),
    }
}

pub fn max_offset(shard: &Shard, cmd: &RemotingCommand) -> RemotingCommand {
    match topic_queue(cmd) {
        Ok((topic, queue_id)) => {
            ok(cmd).with_field("offset", shard.store.max_offset(topic, queue_id))
        }
        Err(e) => bad(cmd, e),
    }
}

pub fn min_offset(shard: &Shard, cmd: &RemotingCommand) -> RemotingCommand {
    match topic_queue(cmd) {
        Ok((topic, queue_id)) => {
            ok(cmd).with_field("offset", shard.store.min_offset(topic, queue_id))
        }
        Err(e) => bad(cmd, e),
    }
}

pub fn search_by_timestamp(shard: &Shard, cmd: &RemotingCommand) -> RemotingCommand {
    let f = Fields(&cmd.ext_fields);
    let parsed = (|| Ok::<_, HeaderError>((topic_queue(cmd)?, f.i64("timestamp")?)))();
    let ((topic, queue_id), timestamp) = match parsed {
        Ok(p) => p,
        Err(e) => return bad(cmd, e),
    };
    let boundary = match f.opt_str("boundaryType") {
        Some(b) if b.eq_ignore_ascii_case("upper") => Boundary::Upper,
        _ => Boundary::Lower,
    };
    let queues = shard.store.queues();
    let offset = queues
        .get(topic, queue_id)
        .map_or(0, |q| q.search_by_time(timestamp, boundary));
    ok(cmd).with_field("offset", offset)
}

pub fn earliest_store_time(shard: &Shard, cmd: &RemotingCommand) -> RemotingCommand {
    let (topic, queue_id) = match topic_queue(cmd) {
        Ok(p) => p,
        Err(e) => return bad(cmd, e),
    };
    let queues = shard.store.queues();
    let timestamp = queues
        .get(topic, queue_id)
        .and_then(|q| q.get(q.min_offset()))
        .map_or(-1, |e| e.store_timestamp);
    ok(cmd).with_field("timestamp", timestamp)
}

/// INVOKE_BROKER_TO_RESET_OFFSET (222), RocketMQ 5's server-side reset: every queue of the
/// topic on this broker (or the one `queueId` names) gets the offset of the first message
/// stored at or after `timestamp` (−1: the end; an explicit `offset` wins), committed at once
/// and held against older commits until the group's next pull of the queue, which answers
/// OFFSET_MOVED so the consumer restarts there. Without `isForce` an offset only moves back.
pub fn reset(shard: &Shard, cmd: &RemotingCommand) -> RemotingCommand {
    let f = Fields(&cmd.ext_fields);
    let parsed = (|| {
        Ok::<_, HeaderError>((
            f.str("group")?,
            f.str("topic")?,
            f.i64("timestamp")?,
            f.opt_i32("queueId")?.unwrap_or(-1),
            f.opt_i64("offset")?,
        ))
    })();
    let (group, topic, timestamp, only_queue, explicit) = match parsed {
        Ok(p) => p,
        Err(e) => return bad(cmd, e),
    };
    let force = f.opt_str("isForce").is_none_or(|v| v != "false");
    let Some(queues) = shard.meta.borrow().topic(topic).map(|t| t.read_queue_nums) else {
        return RemotingCommand::response(response::TOPIC_NOT_EXIST, cmd.opaque)
            .with_remark(remarks::topic_not_exist(topic));
    };
    if shard.meta.borrow().group(group).is_none() {
        return RemotingCommand::response(response::SUBSCRIPTION_GROUP_NOT_EXIST, cmd.opaque)
            .with_remark(remarks::subscription_group_not_exist(group));
    }
    let mut table = String::new();
    for queue_id in (0..queues).filter(|q| only_queue < 0 || *q == only_queue) {
        let (min, max) = (
            shard.store.min_offset(topic, queue_id) as i64,
            shard.store.max_offset(topic, queue_id) as i64,
        );
        let target = match explicit.filter(|o| *o >= 0 && only_queue >= 0) {
            Some(offset) => offset.clamp(min, max),
            None if timestamp < 0 => max,
            None => shard
                .store
                .queues()
                .get(topic, queue_id)
                .map_or(0, |q| q.search_by_time(timestamp, Boundary::Lower))
                as i64,
        };
        let mut offsets = shard.store.offsets.borrow_mut();
        let committed = offsets.get(topic, group, queue_id);
        let target = match committed {
            Some(c) if !force && target > c => c,
            _ => target,
        };
        offsets.reset(topic, group, queue_id, target);
        drop(offsets);
        // A pull parked on the queue learns of the reset now, not when its hold ends.
        crate::broker::holds::wake_queue(shard, topic, queue_id);
        if !table.is_empty() {
            table.push(',');
        }
        table.push_str(&mq_key(&shard.config.broker_name, topic, queue_id));
        table.push(':');
        table.push_str(&target.to_string());
    }
    log::info!(
        "shard {}: reset {group} on {topic} to {{{table}}}",
        shard.config.shard_id
    );
    let body = format!("{{\"offsetTable\":{{{table}}}}}");
    ok(cmd).with_body(bytes::Bytes::from(body))
}
