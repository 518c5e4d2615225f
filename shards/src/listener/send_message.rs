//! SEND_MESSAGE (10), SEND_MESSAGE_V2 (310) and SEND_BATCH_MESSAGE (320), spec §4.1–4.2.
//! The record is appended at once; the response waits in the connection's queue until the log
//! is durable past it.

use std::fmt::Write as _;
use std::rc::Rc;

use crate::broker::metadata::{self, perm, TopicConfig, AUTO_CREATE_TOPIC_KEY};
use crate::broker::Shard;
use crate::broker::{schedule, throttle, transaction};
use crate::net::Connection;
use crate::record::{self, find_property, property, sys_flag, BatchIter, MessageToStore};
use crate::remarks;
use crate::remoting::headers::{SendHeaderNames, SendMessageHeader};
use crate::remoting::{request, response, RemotingCommand};
use crate::store::replicated::SyncOutcome;
use crate::store::Appended;

pub fn handle(shard: &Shard, conn: &Rc<Connection>, cmd: &RemotingCommand) {
    let since = std::time::Instant::now();
    match prepare(shard, conn, cmd) {
        Ok((reply, end)) => {
            if !cmd.is_oneway() {
                answer_stored(shard, conn, reply, end, since)
            }
        }
        Err(reply) => {
            if !cmd.is_oneway() {
                conn.send(&reply)
            }
        }
    }
}

/// Answers a stored write (a send, a send-back, a transaction's end) once it is durable; on a
/// SYNC_MASTER, once its slave holds it too,
/// or with SLAVE_NOT_AVAILABLE (no slave in sync: stored on the master alone) or
/// FLUSH_SLAVE_TIMEOUT (the slave did not confirm within `syncFlushTimeout`), the statuses
/// stock clients map to their SendStatus. `since`: when the request arrived.
pub fn answer_stored(
    shard: &Shard,
    conn: &Rc<Connection>,
    mut reply: RemotingCommand,
    end: u64,
    since: std::time::Instant,
) {
    let replicated = &shard.store.replicated;
    if !replicated.sync {
        return conn.send_after_durable(end, &reply, since);
    }
    if !replicated.in_sync(end) && !replicated.controlled() {
        reply.code = response::SLAVE_NOT_AVAILABLE;
        return conn.send_after_durable(end, &reply, since);
    }
    let (store, conn) = (shard.store.clone(), conn.clone());
    let timeout = shard.config.replication.sync_flush_timeout;
    glommio::spawn_local(async move {
        reply.code = match store.replicated.wait(end, timeout).await {
            SyncOutcome::Replicated => reply.code,
            SyncOutcome::SlaveNotAvailable => response::SLAVE_NOT_AVAILABLE,
            SyncOutcome::Timeout => response::FLUSH_SLAVE_TIMEOUT,
        };
        conn.send_after_durable(end, &reply, since);
    })
    .detach();
}

fn fail(cmd: &RemotingCommand, code: i32, remark: impl Into<String>) -> RemotingCommand {
    RemotingCommand::response(code, cmd.opaque).with_remark(remark)
}

/// Validates, stores and builds the response; `Err` is an error response to send at once.
fn prepare(
    shard: &Shard,
    conn: &Rc<Connection>,
    cmd: &RemotingCommand,
) -> Result<(RemotingCommand, u64), RemotingCommand> {
    let names = if cmd.code == request::SEND_MESSAGE {
        SendHeaderNames::Long
    } else {
        SendHeaderNames::Short
    };
    let header = SendMessageHeader::parse(&cmd.ext_fields, names)
        .map_err(|e| fail(cmd, response::SYSTEM_ERROR, e.to_string()))?;
    metadata::validate_name("topic", &header.topic, metadata::TOPIC_NAME_MAX)
        .map_err(|e| fail(cmd, response::INVALID_PARAMETER, e.to_string()))?;
    if metadata::send_forbidden(&header.topic) {
        return Err(fail(
            cmd,
            response::NO_PERMISSION,
            remarks::send_forbidden(&header.topic),
        ));
    }
    let topic = topic_for_send(shard, &header)
        .map_err(|remark| fail(cmd, response::TOPIC_NOT_EXIST, remark))?;
    shard.note_publisher(&header.topic, &header.producer_group);
    if topic.perm & perm::WRITE == 0 {
        return Err(fail(
            cmd,
            response::NO_PERMISSION,
            remarks::NO_PERMISSION_WRITE,
        ));
    }
    // A batch is counted only for a topic that has a limit.
    let messages = || {
        if cmd.code == request::SEND_BATCH_MESSAGE {
            BatchIter::new(&cmd.body).count()
        } else {
            1
        }
    };
    shard
        .throttle
        .admit_produce(&header.topic, messages, || {
            shard.topic_attribute(&header.topic, throttle::PRODUCE_ATTRIBUTE)
        })
        .map_err(|remark| fail(cmd, response::SYSTEM_BUSY, remark))?;
    let queue_id = if header.queue_id < 0 {
        shard.pick_queue(topic.write_queue_nums)
    } else {
        header.queue_id
    };
    if queue_id >= topic.queue_count {
        let remark =
            remarks::queue_id_illegal(queue_id, &header.topic, topic.write_queue_nums, conn.peer);
        return Err(fail(cmd, response::INVALID_PARAMETER, remark));
    }
    let max = shard.config.max_message_size;
    if cmd.body.len() > max {
        return Err(fail(
            cmd,
            response::MESSAGE_ILLEGAL,
            remarks::body_too_large(max),
        ));
    }
    // A half message waits in the half topic (spec §6.9); it takes precedence over a delay.
    let half = header.sys_flag & 0xC == sys_flag::TRANSACTION_PREPARED
        || find_property(&header.properties, property::TRAN_MSG) == Some("true");
    if half && shard.config.transactions.reject {
        let remark = remarks::transaction_forbidden(&shard.config.broker_name);
        return Err(fail(cmd, response::NO_PERMISSION, remark));
    }
    if half && cmd.code == request::SEND_BATCH_MESSAGE {
        return Err(fail(
            cmd,
            response::MESSAGE_ILLEGAL,
            remarks::TRANSACTION_IN_BATCH,
        ));
    }
    // A delayed message goes to its level's queue of the schedule topic (spec §6.8).
    let delay_level = delay_level(&header.properties).filter(|_| !half);
    if delay_level.is_some() && cmd.body.len() > schedule::DELAY_BODY_MAX {
        return Err(fail(
            cmd,
            response::MESSAGE_ILLEGAL,
            remarks::delay_body_too_large(cmd.body.len(), schedule::DELAY_BODY_MAX),
        ));
    }
    let store_timestamp = metadata::now_ms();
    let levels = shard.config.delay_levels.len() as i32;
    let base = Base {
        shard,
        conn,
        header: &header,
        queue_id,
        store_timestamp,
        parking: match delay_level {
            _ if half => Parking::Half,
            Some(level) => Parking::Delay(level.min(levels)),
            None => Parking::None,
        },
    };
    let (appended, uniq_keys, msg_ids) = if cmd.code == request::SEND_BATCH_MESSAGE {
        store_batch(&base, &cmd.body)
            .map_err(|remark| fail(cmd, response::MESSAGE_ILLEGAL, remark))?
    } else {
        let (appended, uniq, msg_id) = store_one(&base, header.flag, &cmd.body, &header.properties)
            .map_err(|r| fail(cmd, response::MESSAGE_ILLEGAL, r))?;
        (appended, uniq, msg_id)
    };
    let stored = if cmd.code == request::SEND_BATCH_MESSAGE {
        msg_ids.bytes().filter(|b| *b == b',').count() as u64 + 1
    } else {
        1
    };
    shard
        .stats
        .borrow_mut()
        .put(&header.topic, stored, cmd.body.len() as u64);
    let reply = RemotingCommand::response(response::SUCCESS, cmd.opaque)
        .with_field("msgId", msg_ids)
        .with_field("queueId", queue_id)
        .with_field("queueOffset", appended.queue_offset)
        .with_field("transactionId", uniq_keys)
        .with_field("MSG_REGION", &shard.config.region_id)
        .with_field("TRACE_ON", shard.config.trace_topic_enable);
    Ok((reply, appended.end))
}

/// What a send needs of its topic's config; copied out so that nothing is cloned per message.
#[derive(Clone, Copy)]
struct SendTarget {
    perm: i32,
    write_queue_nums: i32,
    queue_count: i32,
}

impl SendTarget {
    fn of(topic: &TopicConfig) -> SendTarget {
        SendTarget {
            perm: topic.perm,
            write_queue_nums: topic.write_queue_nums,
            queue_count: topic.queue_count(),
        }
    }
}

/// The topic's config, auto-creating it from TBW102 or as a retry topic (spec §4.2 step 4).
fn topic_for_send(shard: &Shard, header: &SendMessageHeader) -> Result<SendTarget, String> {
    if let Some(topic) = shard.meta.borrow().topic(&header.topic) {
        return Ok(SendTarget::of(topic));
    }
    let created = if header.topic.starts_with("%RETRY%") {
        Some(TopicConfig::new(&header.topic, 1, perm::READ_WRITE))
    } else if shard.broker_config.auto_create_topic.get() {
        let meta = shard.meta.borrow();
        let template = meta
            .topic(&header.default_topic)
            .or_else(|| meta.topic(AUTO_CREATE_TOPIC_KEY));
        template.filter(|t| t.perm & perm::INHERIT != 0).map(|t| {
            let queues = header
                .default_topic_queue_nums
                .clamp(1, t.write_queue_nums.max(1));
            TopicConfig::new(&header.topic, queues, t.perm & !perm::INHERIT)
        })
    } else {
        None
    };
    let Some(topic) = created else {
        return Err(remarks::topic_not_exist(&header.topic));
    };
    log::info!(
        "shard {}: auto-created topic {} with {} queues",
        shard.config.shard_id,
        topic.topic_name,
        topic.write_queue_nums
    );
    let target = SendTarget::of(&topic);
    shard.create_topic(topic)?;
    Ok(target)
}

struct Base<'a> {
    shard: &'a Shard,
    conn: &'a Rc<Connection>,
    header: &'a SendMessageHeader,
    queue_id: i32,
    store_timestamp: i64,
    /// Where the message waits before its real queue, if anywhere.
    parking: Parking,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Parking {
    None,
    /// In the schedule topic's queue of this delay level.
    Delay(i32),
    /// In the transaction half topic until END_TRANSACTION.
    Half,
}

/// `DELAY` when it names a level (> 0).
fn delay_level(properties: &str) -> Option<i32> {
    find_property(properties, property::DELAY)
        .and_then(|d| d.trim().parse::<i32>().ok())
        .filter(|level| *level > 0)
}

/// One message checked and ready to append: its final property string and UNIQ_KEY.
struct Ready<'a> {
    flag: i32,
    body: &'a [u8],
    properties: String,
    uniq: String,
}

/// Builds the stored property string (UNIQ_KEY if missing, CLUSTER) and checks the record's
/// limits, without appending anything.
fn prepare_one<'a>(
    base: &Base<'_>,
    flag: i32,
    body: &'a [u8],
    properties: &str,
) -> Result<Ready<'a>, String> {
    let shard = base.shard;
    let mut props = String::with_capacity(properties.len() + 64);
    props.push_str(properties);
    if !props.is_empty() && !props.ends_with('\u{2}') {
        props.push('\u{2}');
    }
    let uniq = match find_property(properties, property::UNIQ_KEY) {
        Some(key) => key.to_string(),
        None => {
            let key = generate_uniq_key(shard);
            let _ = write!(props, "{}\u{1}{key}\u{2}", property::UNIQ_KEY);
            key
        }
    };
    let _ = write!(
        props,
        "{}\u{1}{}\u{2}",
        property::CLUSTER,
        shard.config.cluster_name
    );
    if base.parking != Parking::None {
        let _ = write!(
            props,
            "{}\u{1}{}\u{2}{}\u{1}{}\u{2}",
            property::REAL_TOPIC,
            base.header.topic,
            property::REAL_QID,
            base.queue_id
        );
    }
    let ready = Ready {
        flag,
        body,
        properties: props,
        uniq,
    };
    let msg = to_store(base, &ready);
    record::check(&msg).map_err(|e| e.to_string())?;
    if record::encoded_len(&msg) > shard.store.record_bytes_max() {
        return Err(remarks::body_too_large(shard.config.max_message_size));
    }
    Ok(ready)
}

fn to_store<'a>(base: &'a Base<'_>, ready: &'a Ready<'_>) -> MessageToStore<'a> {
    let (topic, queue_id, sys_flag) = match base.parking {
        Parking::Delay(level) => (schedule::SCHEDULE_TOPIC, level - 1, base.header.sys_flag),
        Parking::Half => (transaction::HALF_TOPIC, 0, base.header.sys_flag & !0xC),
        Parking::None => (
            base.header.topic.as_str(),
            base.queue_id,
            base.header.sys_flag,
        ),
    };
    MessageToStore {
        topic,
        queue_id,
        flag: ready.flag,
        sys_flag,
        born_timestamp: base.header.born_timestamp,
        born_host: record::normalize_host(base.conn.peer),
        store_timestamp: base.store_timestamp,
        store_host: base.shard.config.advertised_addr,
        reconsume_times: base.header.reconsume_times,
        prepared_transaction_offset: 0,
        body: ready.body,
        properties: &ready.properties,
    }
}

/// Appends a prepared message; returns where it went and its offsetMsgId.
fn append(base: &Base<'_>, ready: &Ready<'_>) -> (Appended, String) {
    let appended = base.shard.store.append(&to_store(base, ready));
    let msg_id = record::offset_msg_id(
        base.shard.config.advertised_addr,
        appended.physical_offset as i64,
    );
    (appended, msg_id)
}

/// Stores one message; returns where it went, its UNIQ_KEY and its offsetMsgId.
fn store_one(
    base: &Base<'_>,
    flag: i32,
    body: &[u8],
    properties: &str,
) -> Result<(Appended, String, String), String> {
    let ready = prepare_one(base, flag, body, properties)?;
    let (appended, msg_id) = append(base, &ready);
    Ok((appended, ready.uniq, msg_id))
}

/// Stores every message of a batch body in order. Every message is checked before the first
/// is appended, so a bad one refuses the whole batch and nothing of it is stored.
fn store_batch(base: &Base<'_>, body: &[u8]) -> Result<(Appended, String, String), String> {
    if base.header.topic.starts_with("%RETRY%") {
        return Err("batch request does not support retry group".into());
    }
    let items: Vec<_> = BatchIter::new(body)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("bad batch body: {e}"))?;
    if items.is_empty() {
        return Err("bad batch body: no messages".into());
    }
    if base.parking != Parking::None || items.iter().any(|i| delay_level(i.properties).is_some()) {
        return Err(remarks::DELAY_IN_BATCH.into());
    }
    if items
        .iter()
        .any(|i| find_property(i.properties, property::TRAN_MSG) == Some("true"))
    {
        return Err(remarks::TRANSACTION_IN_BATCH.into());
    }
    let ready: Vec<Ready<'_>> = items
        .iter()
        .map(|item| prepare_one(base, item.flag, item.body, item.properties))
        .collect::<Result<_, _>>()?;
    let mut first: Option<Appended> = None;
    let mut last = None;
    let (mut uniq_keys, mut msg_ids) = (String::new(), String::new());
    for message in &ready {
        let (appended, msg_id) = append(base, message);
        first.get_or_insert(appended);
        last = Some(appended);
        for (list, value) in [
            (&mut uniq_keys, message.uniq.as_str()),
            (&mut msg_ids, msg_id.as_str()),
        ] {
            if !list.is_empty() {
                list.push(',');
            }
            list.push_str(value);
        }
    }
    let first = first.expect("batch has items");
    let end = last.expect("batch has items").end;
    Ok((Appended { end, ..first }, uniq_keys, msg_ids))
}

/// A UNIQ_KEY for a message that came without one: broker address, shard and a counter.
fn generate_uniq_key(shard: &Shard) -> String {
    let mut raw = Vec::with_capacity(16);
    if let std::net::IpAddr::V4(ip) = shard.config.advertised_addr.ip() {
        raw.extend_from_slice(&ip.octets());
    }
    raw.extend_from_slice(&(std::process::id() as u16).to_be_bytes());
    raw.extend_from_slice(&(shard.config.shard_id as u16).to_be_bytes());
    raw.extend_from_slice(&(metadata::now_ms() as u32).to_be_bytes());
    raw.extend_from_slice(&shard.next_uniq_sequence().to_be_bytes());
    record::hex_upper(&raw)
}
