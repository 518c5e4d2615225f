//! Transactional messages (spec §4.9, §6.9). A half message waits, invisible, in
//! `RMQ_SYS_TRANS_HALF_TOPIC` queue 0 of the shard that received it; END_TRANSACTION commits
//! it (a copy goes to its real queue) or rolls it back, and either way an op record naming its
//! half-queue offset goes to `RMQ_SYS_TRANS_OP_HALF_TOPIC`. A half message without an op record
//! is pending: every `transactionCheckInterval`, those older than `transactionTimeOut` are
//! checked back with the producer group (CHECK_TRANSACTION_STATE), at most
//! `transactionCheckMax` times, then discarded to `TRANS_CHECK_MAX_TIME_TOPIC`.
//!
//! The pending set is derived from the two queues: `catch_up` adds every half offset past
//! `half_scanned` and removes every offset an op record past `op_scanned` names, so it is
//! exact whenever it is used. It is persisted in `transaction.json` with the check counts;
//! after a crash the scan restarts from the saved offsets, so nothing is lost, and at worst a
//! transaction is checked again (check-back is at least once, as in RocketMQ).
//!
//! Unlike RocketMQ, a check does not re-append the half message: the count lives here, and
//! CHECK_TRANSACTION_STATE names the original offsets, which END_TRANSACTION then finds. And
//! only checks that reached a producer count: while no producer of the group is connected
//! (say, during a redeploy) nothing is discarded, where RocketMQ would give up after
//! `transactionCheckMax` intervals and drop committed work.

use std::collections::BTreeMap;
use std::path::Path;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::broker::Shard;
use crate::record::{self, decode_properties, encode_properties, property, MessageToStore};
use crate::remoting::{request, RemotingCommand};
use crate::store::atomic_file::JsonState;

pub const HALF_TOPIC: &str = "RMQ_SYS_TRANS_HALF_TOPIC";
pub const OP_TOPIC: &str = "RMQ_SYS_TRANS_OP_HALF_TOPIC";
pub const DISCARD_TOPIC: &str = "TRANS_CHECK_MAX_TIME_TOPIC";
/// The tag of op records.
const OP_TAG: &str = "d";

/// `transactionTimeOut`, `transactionCheckMax`, `transactionCheckInterval`.
#[derive(Debug, Clone, Copy)]
pub struct TransactionConfig {
    pub timeout: Duration,
    pub check_max: u32,
    pub check_interval: Duration,
    pub reject: bool,
}

impl Default for TransactionConfig {
    fn default() -> Self {
        TransactionConfig {
            timeout: Duration::from_millis(6000),
            check_max: 15,
            check_interval: Duration::from_millis(30_000),
            reject: false,
        }
    }
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct State {
    half_scanned: u64,
    op_scanned: u64,
    /// Half-queue offset → check-backs sent so far.
    pending: BTreeMap<u64, u32>,
}

pub struct Transactions {
    state: JsonState<State>,
}

/// How END_TRANSACTION asked to end a half message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Commit,
    Rollback,
}

impl Transactions {
    /// Loads `transaction.json` of the shard at `dir`.
    pub fn load(dir: &Path) -> std::io::Result<Transactions> {
        Ok(Transactions {
            state: JsonState::load(dir.join("transaction.json"))?,
        })
    }

    pub async fn persist(&self) -> std::io::Result<()> {
        self.state.persist().await
    }

    /// The persisted state as JSON, for a slave.
    pub fn to_json_value(&self) -> serde_json::Value {
        self.state.to_json_value()
    }

    /// Takes the state a master sent.
    pub fn replace_from(&self, value: serde_json::Value) -> Result<(), String> {
        self.state.replace_from(value)
    }

    /// True if the half message at `offset` is still waiting for its outcome.
    pub fn is_pending(&self, shard: &Shard, offset: u64) -> bool {
        catch_up(shard);
        self.state.borrow().pending.contains_key(&offset)
    }
}

/// Brings the pending set up to date with the half and op queues.
fn catch_up(shard: &Shard) {
    let tx = &shard.transactions;
    let half_max = shard.store.max_offset(HALF_TOPIC, 0);
    let op_max = shard.store.max_offset(OP_TOPIC, 0);
    // Half messages retention deleted can no longer be committed or checked.
    let half_min = shard.store.min_offset(HALF_TOPIC, 0);
    let op_min = shard.store.min_offset(OP_TOPIC, 0);
    let mut state = tx.state.borrow_mut();
    while state
        .pending
        .first_key_value()
        .is_some_and(|(o, _)| *o < half_min)
    {
        state.pending.pop_first();
    }
    for offset in state.half_scanned.max(half_min)..half_max {
        state.pending.insert(offset, 0);
    }
    state.half_scanned = state.half_scanned.max(half_max);
    for offset in state.op_scanned.max(op_min)..op_max {
        let entry = shard
            .store
            .queues()
            .get(OP_TOPIC, 0)
            .and_then(|q| q.get(offset).copied());
        let Some(entry) = entry else { continue };
        let ended = shard
            .store
            .with_record(entry.commit_log_offset, entry.size, |view| {
                op_offsets(view.body)
            })
            .unwrap_or_default();
        for half in ended {
            state.pending.remove(&half);
        }
    }
    state.op_scanned = state.op_scanned.max(op_max);
}

/// The half offsets an op record names: `12` (4.x) or `12,13,` (5.x).
fn op_offsets(body: &[u8]) -> Vec<u64> {
    std::str::from_utf8(body)
        .unwrap_or("")
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect()
}

/// Appends the op record that ends the half message at `half_offset`; returns its end.
fn append_op(shard: &Shard, half_offset: u64, now_ms: i64) -> u64 {
    let body = format!("{half_offset},");
    let properties = format!("{}\u{1}{OP_TAG}\u{2}", property::TAGS);
    let host = shard.config.advertised_addr;
    let appended = shard.store.append(&MessageToStore {
        topic: OP_TOPIC,
        queue_id: 0,
        flag: 0,
        sys_flag: 0,
        born_timestamp: now_ms,
        born_host: host,
        store_timestamp: now_ms,
        store_host: host,
        reconsume_times: 0,
        prepared_transaction_offset: 0,
        body: body.as_bytes(),
        properties: &properties,
    });
    shard
        .transactions
        .state
        .borrow_mut()
        .pending
        .remove(&half_offset);
    appended.end
}

/// The stored half message at half-queue `offset`.
fn half_record(shard: &Shard, offset: u64) -> Option<Vec<u8>> {
    let entry = shard
        .store
        .queues()
        .get(HALF_TOPIC, 0)
        .and_then(|q| q.get(offset).copied())?;
    let mut bytes = Vec::with_capacity(entry.size as usize);
    shard
        .store
        .copy_record(entry.commit_log_offset, entry.size, &mut bytes)
        .then_some(bytes)
}

/// Ends the pending half message stored at `commit_log_offset` / half-queue `half_offset`,
/// sent by `producer_group`. Returns the end of what was appended (`None` when it had ended
/// before), or why nothing was done.
pub fn end(
    shard: &Shard,
    producer_group: &str,
    half_offset: u64,
    commit_log_offset: i64,
    outcome: Outcome,
    now_ms: i64,
) -> Result<Option<u64>, String> {
    let Some(bytes) = crate::listener::query_message::record_at(shard, commit_log_offset) else {
        return Err(format!(
            "Find prepared transaction message failed: no message at offset {commit_log_offset}"
        ));
    };
    let view = record::decode(&bytes).expect("record_at checked it decodes");
    if view.topic != HALF_TOPIC {
        return Err(format!(
            "the message at offset {commit_log_offset} is not a half message (topic {})",
            view.topic
        ));
    }
    let props = decode_properties(view.properties);
    if props.get(property::PRODUCER_GROUP) != Some(producer_group) {
        return Err(format!(
            "The producer group wrong: the half message belongs to {:?}, not {producer_group}",
            props.get(property::PRODUCER_GROUP).unwrap_or("")
        ));
    }
    if view.queue_offset != half_offset as i64 {
        return Err(format!(
            "The transaction state table offset wrong: {half_offset}, the half message is at {}",
            view.queue_offset
        ));
    }
    if !shard.transactions.is_pending(shard, half_offset) {
        // Ended before (the producer's answer and a check-back's can both arrive): once only.
        return Ok(None);
    }
    if outcome == Outcome::Commit {
        let (topic, queue_id) = shard
            .real_queue(&props)
            .map_err(|e| format!("cannot commit the half message: {e}"))?;
        let mut props = props.clone();
        props.remove(property::REAL_TOPIC);
        props.remove(property::REAL_QID);
        props.remove(property::TRANSACTION_CHECK_TIMES);
        let properties = encode_properties(&props);
        shard.store.append(&MessageToStore {
            sys_flag: (view.sys_flag & !0xC) | record::sys_flag::TRANSACTION_COMMIT,
            prepared_transaction_offset: commit_log_offset,
            ..MessageToStore::again(
                &view,
                &topic,
                queue_id,
                &properties,
                now_ms,
                shard.config.advertised_addr,
            )
        });
    }
    Ok(Some(append_op(shard, half_offset, now_ms)))
}

/// Checks back every pending half message that is old enough, every check interval.
pub async fn run(shard: Rc<Shard>) {
    loop {
        glommio::timer::sleep(shard.config.transactions.check_interval).await;
        if shard.ha.is_master() {
            check(&shard, crate::broker::metadata::now_ms());
        }
    }
}

/// One check pass at `now_ms`.
pub fn check(shard: &Shard, now_ms: i64) {
    catch_up(shard);
    // A discard writes to the log: on a full disk the pass waits for the next interval.
    if !shard.store.writable() {
        return;
    }
    let pending: Vec<(u64, u32)> = shard
        .transactions
        .state
        .borrow()
        .pending
        .iter()
        .map(|(o, t)| (*o, *t))
        .collect();
    let config = shard.config.transactions;
    for (offset, times) in pending {
        let Some(bytes) = half_record(shard, offset) else {
            log::warn!(
                "shard {}: half message {offset} is not readable; dropped from checks",
                shard.config.shard_id
            );
            append_op(shard, offset, now_ms);
            continue;
        };
        let Ok(view) = record::decode(&bytes) else {
            append_op(shard, offset, now_ms);
            continue;
        };
        let props = decode_properties(view.properties);
        let immunity_ms = props
            .get(property::CHECK_IMMUNITY_TIME_IN_SECONDS)
            .and_then(|s| s.parse::<i64>().ok())
            .map_or(config.timeout.as_millis() as i64, |s| s * 1000);
        if now_ms - view.born_timestamp < immunity_ms {
            continue;
        }
        if times >= config.check_max {
            discard(shard, &view, offset, now_ms);
            continue;
        }
        if !send_check(shard, &view, &props, offset, times) {
            continue;
        }
        if let Some(t) = shard
            .transactions
            .state
            .borrow_mut()
            .pending
            .get_mut(&offset)
        {
            *t += 1;
        }
    }
}

/// Gives up on a half message: a copy goes to the discard topic, and it is no longer pending.
fn discard(shard: &Shard, view: &record::RecordView<'_>, offset: u64, now_ms: i64) {
    log::warn!(
        "shard {}: half message {} was checked {} times without an outcome; discarded to {DISCARD_TOPIC}",
        shard.config.shard_id,
        offset,
        shard.config.transactions.check_max
    );
    shard.ensure_topic(DISCARD_TOPIC);
    shard.store.append(&MessageToStore::again(
        view,
        DISCARD_TOPIC,
        0,
        view.properties,
        now_ms,
        shard.config.advertised_addr,
    ));
    append_op(shard, offset, now_ms);
}

/// Sends CHECK_TRANSACTION_STATE to one producer of the half message's group, if one is
/// connected (false if none is); the body is the message as the producer sent it (real topic
/// and queue).
fn send_check(
    shard: &Shard,
    view: &record::RecordView<'_>,
    props: &record::Properties,
    offset: u64,
    times: u32,
) -> bool {
    let group = props.get(property::PRODUCER_GROUP).unwrap_or("");
    let Some(conn) = shard
        .clients
        .borrow()
        .producer_connection(group, times as usize)
    else {
        log::info!(
            "shard {}: no producer of {group} is connected to check half message {offset}",
            shard.config.shard_id
        );
        return false;
    };
    let topic = props.get(property::REAL_TOPIC).unwrap_or(view.topic);
    let queue_id = props
        .get(property::REAL_QID)
        .and_then(|q| q.parse().ok())
        .unwrap_or(view.queue_id);
    let mut props = props.clone();
    props.insert(property::TRANSACTION_CHECK_TIMES, &(times + 1).to_string());
    let properties = encode_properties(&props);
    let msg = MessageToStore::again(
        view,
        topic,
        queue_id,
        &properties,
        view.store_timestamp,
        view.store_host,
    );
    let mut body = Vec::with_capacity(record::encoded_len(&msg));
    record::encode(&msg, view.queue_offset, view.physical_offset, &mut body);
    let uniq = props.get(property::UNIQ_KEY).unwrap_or("").to_string();
    let mut cmd = RemotingCommand::request(
        request::CHECK_TRANSACTION_STATE,
        Default::default(),
        Bytes::from(body),
    );
    cmd.ext_fields.insert("topic", topic);
    cmd.ext_fields
        .insert("tranStateTableOffset", offset.to_string());
    cmd.ext_fields
        .insert("commitLogOffset", view.physical_offset.to_string());
    cmd.ext_fields.insert("msgId", &uniq);
    cmd.ext_fields.insert("transactionId", &uniq);
    cmd.ext_fields.insert(
        "offsetMsgId",
        record::offset_msg_id(view.store_host, view.physical_offset),
    );
    cmd.ext_fields.insert("bname", &shard.config.broker_name);
    conn.send_oneway_request(cmd);
    true
}

#[cfg(test)]
mod tests {
    use super::op_offsets;

    #[test]
    fn op_bodies_of_both_generations_parse() {
        assert_eq!(op_offsets(b"12"), [12]);
        assert_eq!(op_offsets(b"12,13,"), [12, 13]);
        assert!(op_offsets(b"x").is_empty());
    }
}
