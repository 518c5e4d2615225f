//! CONSUMER_SEND_MSG_BACK (36), spec §4.8 and §6.5: a consumer gives a message back. It goes
//! to `%RETRY%<group>` after the delay of level `3 + reconsumeTimes` (or the level asked for),
//! with `reconsumeTimes + 1`, or, once it was consumed `maxReconsumeTimes` times (or when the
//! level is negative), to `%DLQ%<group>`, which nothing consumes on its own. Answered once
//! the retry record is durable (and, on a SYNC_MASTER, on the slave): a consumer moves past
//! the message it gave back only when the retry cannot be lost.

use std::rc::Rc;

use crate::broker::metadata;
use crate::broker::{schedule, Shard};
use crate::listener::pull_message::ensure_group;
use crate::listener::query_message::record_at;
use crate::listener::send_message::answer_stored;
use crate::net::Connection;
use crate::record::{self, decode_properties, encode_properties, property, MessageToStore};
use crate::remarks;
use crate::remoting::headers::{Fields, HeaderError};
use crate::remoting::{response, RemotingCommand};

/// RocketMQ's default `maxReconsumeTimes`.
const MAX_RECONSUME_TIMES: i32 = 16;

pub fn handle(shard: &Shard, conn: &Rc<Connection>, cmd: &RemotingCommand) {
    let since = std::time::Instant::now();
    let (reply, stored) = send_back(shard, cmd);
    match stored {
        _ if cmd.is_oneway() => {}
        Some(end) => answer_stored(shard, conn, reply, end, since),
        None => conn.send(&reply),
    }
}

/// The answer, and where the log must be durable (and replicated) before it is given.
fn send_back(shard: &Shard, cmd: &RemotingCommand) -> (RemotingCommand, Option<u64>) {
    let reply = |code: i32| RemotingCommand::response(code, cmd.opaque);
    let f = Fields(&cmd.ext_fields);
    let parsed = (|| {
        Ok::<_, HeaderError>((
            f.i64("offset")?,
            f.str("group")?,
            f.opt_i32("delayLevel")?.unwrap_or(0),
            f.opt_i32("maxReconsumeTimes")?,
        ))
    })();
    let (offset, group, level, max_times) = match parsed {
        Ok(p) => p,
        Err(e) => {
            return (
                reply(response::SYSTEM_ERROR).with_remark(e.to_string()),
                None,
            )
        }
    };
    let Some(group_config) = ensure_group(shard, group) else {
        let remark = remarks::subscription_group_not_exist(group);
        return (
            reply(response::SUBSCRIPTION_GROUP_NOT_EXIST).with_remark(remark),
            None,
        );
    };
    if group_config.retry_queue_nums <= 0 {
        return (reply(response::SUCCESS), None);
    }
    let Some(bytes) = record_at(shard, offset) else {
        let remark = format!("look message by offset failed, {offset}");
        return (reply(response::SYSTEM_ERROR).with_remark(remark), None);
    };
    let view = record::decode(&bytes).expect("record_at checked it decodes");
    let max = max_times
        .filter(|m| *m >= 0)
        .unwrap_or(if group_config.retry_max_times > 0 {
            group_config.retry_max_times
        } else {
            MAX_RECONSUME_TIMES
        });
    let mut props = decode_properties(view.properties);
    if props.get(property::RETRY_TOPIC).is_none() {
        props.insert(property::RETRY_TOPIC, view.topic);
    }
    if props.get(property::ORIGIN_MESSAGE_ID).is_none() {
        let id = record::offset_msg_id(view.store_host, view.physical_offset);
        props.insert(property::ORIGIN_MESSAGE_ID, &id);
    }
    props.remove(property::DELAY);
    props.remove(property::REAL_TOPIC);
    props.remove(property::REAL_QID);
    let to_dlq = view.reconsume_times >= max || level < 0;
    let (topic, queue_id) = if to_dlq {
        let dlq = format!("%DLQ%{group}");
        shard.ensure_topic(&dlq);
        (dlq, 0)
    } else {
        let retry = format!("%RETRY%{group}");
        shard.ensure_topic(&retry);
        let levels = shard.config.delay_levels.len() as i32;
        let level = if level > 0 {
            level
        } else {
            3 + view.reconsume_times
        }
        .min(levels);
        props.insert(property::DELAY, &level.to_string());
        props.insert(property::REAL_TOPIC, &retry);
        props.insert(property::REAL_QID, "0");
        (schedule::SCHEDULE_TOPIC.to_string(), level - 1)
    };
    let properties = encode_properties(&props);
    let store_timestamp = metadata::now_ms();
    let appended = shard.store.append(&MessageToStore {
        reconsume_times: view.reconsume_times + 1,
        ..MessageToStore::again(
            &view,
            &topic,
            queue_id,
            &properties,
            store_timestamp,
            shard.config.advertised_addr,
        )
    });
    (reply(response::SUCCESS), Some(appended.end))
}
