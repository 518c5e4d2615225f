//! PULL_MESSAGE (11) and LITE_PULL_MESSAGE (361), spec §4.3–4.4: checks, offset commit
//! piggy-back, the read table, and parking for long polling.

use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::broker::holds::{HeldPull, HOLD_MAX};
use crate::broker::metadata::{self, perm, SubscriptionGroupConfig};
use crate::broker::throttle::{self, Allowance};
use crate::broker::Shard;
use crate::consume_queue::{PullLimits, TagFilter};
use crate::net::Connection;
use crate::remarks;
use crate::remoting::headers::{pull_flag, PullMessageHeader};
use crate::remoting::{response, RemotingCommand};

/// Transfer caps per pull (RocketMQ's in-memory defaults raised for throughput).
const PULL_MESSAGES_MAX: usize = 64;
const PULL_BYTES_MAX: usize = 256 << 10;
/// Entries a pull may scan past a non-matching tag before answering.
const PULL_SCAN_MAX: usize = 4096;

/// Whether this execution may park the pull.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suspend {
    Allowed,
    Forbidden,
}

pub fn handle(shard: &Shard, conn: &Rc<Connection>, cmd: &RemotingCommand) {
    let since = std::time::Instant::now();
    if let Some(reply) = execute(shard, conn, cmd, Suspend::Allowed) {
        conn.send(&reply);
        shard.pull_latency.record(since);
    }
}

fn fail(cmd: &RemotingCommand, code: i32, remark: impl Into<String>) -> RemotingCommand {
    RemotingCommand::response(code, cmd.opaque).with_remark(remark)
}

/// Runs a pull. `None` means it was parked and will be answered later.
pub fn execute(
    shard: &Shard,
    conn: &Rc<Connection>,
    cmd: &RemotingCommand,
    suspend: Suspend,
) -> Option<RemotingCommand> {
    let header = match PullMessageHeader::parse(&cmd.ext_fields) {
        Ok(h) => h,
        Err(e) => return Some(fail(cmd, response::SYSTEM_ERROR, e.to_string())),
    };
    let (filter, group) = match checks(shard, cmd, &header) {
        Ok(checked) => checked,
        Err(reply) => return Some(reply),
    };
    // An offset reset waits for this pull: the consumer is told where to go on (OFFSET_MOVED,
    // and the Java client then restarts the queue from the committed offset).
    let reset = shard.store.offsets.borrow_mut().take_reset(
        &header.topic,
        &header.consumer_group,
        header.queue_id,
    );
    if let Some(offset) = reset {
        return Some(
            fail(
                cmd,
                response::PULL_OFFSET_MOVED,
                "the consumer offset was reset",
            )
            .with_field("suggestWhichBrokerId", 0)
            .with_field("nextBeginOffset", offset)
            .with_field(
                "minOffset",
                shard.store.min_offset(&header.topic, header.queue_id),
            )
            .with_field(
                "maxOffset",
                shard.store.max_offset(&header.topic, header.queue_id),
            ),
        );
    }
    if suspend == Suspend::Allowed
        && header.sys_flag & pull_flag::COMMIT_OFFSET != 0
        && header.commit_offset >= 0
    {
        shard.store.offsets.borrow_mut().commit(
            &header.topic,
            &header.consumer_group,
            header.queue_id,
            header.commit_offset,
        );
    }
    let allowance = shard.throttle.consume_allowance(
        &header.topic,
        &header.consumer_group,
        || shard.topic_attribute(&header.topic, throttle::CONSUME_ATTRIBUTE),
        || group.attributes.get(throttle::CONSUME_ATTRIBUTE).cloned(),
    );
    let (mut hold_max, mut cap) = (HOLD_MAX, usize::MAX);
    let (reply, last_read) = match allowance {
        Allowance::Wait(wait, by) => {
            // Held (if the client lets it be) until a message may go, then answered.
            hold_max = wait.max(Duration::from_millis(1));
            (throttled(shard, cmd, &header, by), None)
        }
        allowance => {
            if let Allowance::Messages(n) = allowance {
                cap = n;
            }
            read(shard, cmd, &header, &filter, cap)
        }
    };
    let reply = redirect(shard, &group, reply, last_read);
    if reply.code == response::SUCCESS {
        if let Some(next) = reply.field("nextBeginOffset").and_then(|v| v.parse().ok()) {
            shard.store.offsets.borrow_mut().record_pull(
                &header.topic,
                &header.consumer_group,
                header.queue_id,
                next,
                Instant::now(),
            );
        }
    }
    if reply.code == response::PULL_NOT_FOUND
        && suspend == Suspend::Allowed
        && header.sys_flag & pull_flag::SUSPEND != 0
    {
        let hold = if shard.config.long_polling_enable {
            Duration::from_millis(header.suspend_timeout_millis.max(0) as u64).min(HOLD_MAX)
        } else {
            shard.config.short_polling_time
        }
        .min(hold_max);
        let held = HeldPull {
            conn: Rc::downgrade(conn),
            request: cmd.clone(),
            deadline: Instant::now() + hold,
        };
        shard
            .holds
            .borrow_mut()
            .park(&header.topic, header.queue_id, held);
        return None;
    }
    Some(reply)
}

/// The checks before a read, in the Java broker's order; returns the tag filter to apply
/// and the group's config.
fn checks(
    shard: &Shard,
    cmd: &RemotingCommand,
    header: &PullMessageHeader,
) -> Result<(TagFilter, SubscriptionGroupConfig), RemotingCommand> {
    metadata::validate_name("group", &header.consumer_group, metadata::GROUP_NAME_MAX)
        .map_err(|e| fail(cmd, response::INVALID_PARAMETER, e.to_string()))?;
    let group = ensure_group(shard, &header.consumer_group).ok_or_else(|| {
        fail(
            cmd,
            response::SUBSCRIPTION_GROUP_NOT_EXIST,
            remarks::subscription_group_not_exist(&header.consumer_group),
        )
    })?;
    if !group.consume_enable {
        return Err(fail(
            cmd,
            response::NO_PERMISSION,
            format!(
                "subscription group no permission, {}",
                header.consumer_group
            ),
        ));
    }
    let topic = shard.meta.borrow().topic(&header.topic).cloned();
    let topic = topic.ok_or_else(|| {
        fail(
            cmd,
            response::TOPIC_NOT_EXIST,
            remarks::topic_not_exist(&header.topic),
        )
    })?;
    if topic.perm & perm::READ == 0 {
        return Err(fail(
            cmd,
            response::NO_PERMISSION,
            remarks::NO_PERMISSION_READ,
        ));
    }
    if header.queue_id < 0 || header.queue_id >= topic.read_queue_nums.max(topic.write_queue_nums) {
        return Err(fail(
            cmd,
            response::INVALID_PARAMETER,
            format!(
                "queueId[{}] is illegal, topic:[{}] topicConfig.readQueueNums:[{}]",
                header.queue_id, header.topic, topic.read_queue_nums
            ),
        ));
    }
    let expression_type = header.expression_type.as_deref().unwrap_or("TAG");
    if !expression_type.is_empty() && !expression_type.eq_ignore_ascii_case("TAG") {
        return Err(fail(
            cmd,
            response::SYSTEM_ERROR,
            remarks::SQL92_NOT_SUPPORTED,
        ));
    }
    if header.sys_flag & pull_flag::SUBSCRIPTION != 0 {
        let filter = TagFilter::parse(header.subscription.as_deref().unwrap_or("*"));
        return Ok((filter, group));
    }
    let clients = shard.clients.borrow();
    let group_info = clients
        .consumer_group(&header.consumer_group)
        .ok_or_else(|| {
            fail(
                cmd,
                response::SUBSCRIPTION_NOT_EXIST,
                remarks::CONSUMER_GROUP_INFO_NOT_EXIST,
            )
        })?;
    let sub = group_info.subscriptions.get(&header.topic).ok_or_else(|| {
        fail(
            cmd,
            response::SUBSCRIPTION_NOT_EXIST,
            remarks::SUBSCRIPTION_NOT_EXIST,
        )
    })?;
    let filter = if sub.sub_string.trim() == "*" || sub.sub_string.trim().is_empty() {
        TagFilter::All
    } else if sub.code_set.is_empty() {
        TagFilter::parse(&sub.sub_string)
    } else {
        TagFilter::from_codes(&sub.code_set)
    };
    Ok((filter, group))
}

/// Where the consumer pulls next (`suggestWhichBrokerId`), by RocketMQ's rules: with
/// `slaveReadEnable`, a pull that read further behind the log's end than the in-memory
/// window goes to the group's `whichBrokerWhenConsumeSlowly`, else to its `brokerId`;
/// without it, to the master. A slave following a live master sends a consumer that is not
/// behind back to it. (RocketMQ's slave also turns what it did not find into
/// PULL_RETRY_IMMEDIATELY; Petrel's answers it as it is, so that tools reading a slave see
/// the end of a queue.)
fn redirect(
    shard: &Shard,
    group: &SubscriptionGroupConfig,
    reply: RemotingCommand,
    last_read: Option<u64>,
) -> RemotingCommand {
    let log_end = shard.store.log().durable().get();
    let behind =
        last_read.is_some_and(|at| log_end.saturating_sub(at) > shard.in_memory_window_bytes);
    let mut suggest = match (shard.broker_config.slave_read.get(), behind) {
        (false, _) => 0,
        (true, true) => group.which_broker_when_consume_slowly,
        (true, false) => group.broker_id,
    };
    if !shard.ha.is_master() && !behind && shard.ha.following() {
        suggest = 0;
    }
    reply.with_field("suggestWhichBrokerId", suggest)
}

/// The group's config, auto-created when `autoCreateSubscriptionGroup` is on.
pub fn ensure_group(shard: &Shard, group: &str) -> Option<SubscriptionGroupConfig> {
    if let Some(g) = shard.meta.borrow().group(group) {
        return Some(g.clone());
    }
    if !shard.broker_config.auto_create_group.get()
        || metadata::validate_name("group", group, metadata::GROUP_NAME_MAX).is_err()
    {
        return None;
    }
    let config = SubscriptionGroupConfig {
        group_name: group.to_string(),
        ..Default::default()
    };
    shard.put_group(config.clone());
    Some(config)
}

/// A pull over a TPS limit: nothing now, and where to go on from.
fn throttled(
    shard: &Shard,
    cmd: &RemotingCommand,
    header: &PullMessageHeader,
    by: &str,
) -> RemotingCommand {
    let (topic, queue_id) = (&header.topic, header.queue_id);
    RemotingCommand::response(response::PULL_NOT_FOUND, cmd.opaque)
        .with_remark(format!(
            "[TPSLIMIT] the {by}'s consume TPS limit is reached, try again later"
        ))
        .with_field("nextBeginOffset", header.queue_offset.max(0))
        .with_field("minOffset", shard.store.min_offset(topic, queue_id))
        .with_field("maxOffset", shard.store.max_offset(topic, queue_id))
}

/// The read table of spec §4.4; with the log offset of the last record read, if any.
fn read(
    shard: &Shard,
    cmd: &RemotingCommand,
    header: &PullMessageHeader,
    filter: &TagFilter,
    cap: usize,
) -> (RemotingCommand, Option<u64>) {
    let requested = header.queue_offset.max(0) as u64;
    let queues = shard.store.queues();
    let queue = queues.get(&header.topic, header.queue_id);
    let (min, max) = queue.map_or((0, 0), |q| (q.min_offset(), q.max_offset()));
    let answer = |code: i32, status: &str, next: u64| {
        RemotingCommand::response(code, cmd.opaque)
            .with_remark(status)
            .with_field("suggestWhichBrokerId", 0)
            .with_field("nextBeginOffset", next)
            .with_field("minOffset", min)
            .with_field("maxOffset", max)
    };
    let queue = match queue {
        Some(q) if max > 0 => q,
        _ if header.queue_offset == 0 => {
            return (
                answer(response::PULL_NOT_FOUND, "NO_MESSAGE_IN_QUEUE", 0),
                None,
            )
        }
        _ => {
            return (
                answer(response::PULL_OFFSET_MOVED, "NO_MESSAGE_IN_QUEUE", 0),
                None,
            )
        }
    };
    if header.queue_offset < min as i64 {
        return (
            answer(response::PULL_OFFSET_MOVED, "OFFSET_TOO_SMALL", min),
            None,
        );
    }
    if requested == max {
        return (
            answer(response::PULL_NOT_FOUND, "OFFSET_OVERFLOW_ONE", requested),
            None,
        );
    }
    if requested > max {
        return (
            answer(response::PULL_OFFSET_MOVED, "OFFSET_OVERFLOW_BADLY", max),
            None,
        );
    }
    let limits = PullLimits {
        messages_max: (header.max_msg_nums.max(1) as usize)
            .min(PULL_MESSAGES_MAX)
            .min(cap),
        bytes_max: header
            .max_msg_bytes
            .map_or(PULL_BYTES_MAX, |b| (b.max(1) as usize).min(PULL_BYTES_MAX)),
        scan_max: PULL_SCAN_MAX,
    };
    let selection = queue.select(requested, filter, limits);
    drop(queues);
    if selection.found.is_empty() {
        let retry = answer(
            response::PULL_RETRY_IMMEDIATELY,
            "NO_MATCHED_MESSAGE",
            selection.next_offset,
        );
        return (retry, None);
    }
    let total: usize = selection.found.iter().map(|(_, e)| e.size as usize).sum();
    let mut body = Vec::with_capacity(total);
    let mut next = selection.next_offset;
    let mut last_read = None;
    for (offset, entry) in &selection.found {
        if !shard
            .store
            .copy_record(entry.commit_log_offset, entry.size, &mut body)
        {
            // Never answer FOUND with records missing: stop before this one, so the client
            // asks for it again.
            log::error!(
                "consume queue {}:{} offset {offset} points past the durable log at {}",
                header.topic,
                header.queue_id,
                entry.commit_log_offset
            );
            next = *offset;
            break;
        }
        last_read = Some(entry.commit_log_offset);
    }
    if body.is_empty() {
        return (
            answer(response::PULL_RETRY_IMMEDIATELY, "NO_MATCHED_MESSAGE", next),
            None,
        );
    }
    let served = selection
        .found
        .iter()
        .take_while(|(o, _)| *o < next)
        .count() as u64;
    shard.messages_got.set(shard.messages_got.get() + served);
    shard.stats.borrow_mut().got(
        &header.topic,
        &header.consumer_group,
        served,
        body.len() as u64,
    );
    shard
        .throttle
        .consumed(&header.topic, &header.consumer_group, served as usize);
    let found = answer(response::SUCCESS, "FOUND", next).with_body(body.into());
    (found, last_read)
}
