//! Looking messages up (spec §4.11): VIEW_MESSAGE_BY_ID (33) by commit-log offset, the lookup
//! behind `queryMsgById` and every client's `viewMessage`, and QUERY_MESSAGE (12) by key or
//! UNIQ_KEY through the key index. Clients decode the
//! offsetMsgId to (store host, offset) and ask that address, which is this shard's own port.

use bytes::Bytes;

use crate::broker::Shard;
use crate::record::{self, RECORD_FIXED_BYTES_V4};
use crate::remarks;
use crate::remoting::headers::Fields;
use crate::remoting::{response, RemotingCommand};

pub fn view_by_id(shard: &Shard, cmd: &RemotingCommand) -> RemotingCommand {
    let offset = match Fields(&cmd.ext_fields).i64("offset") {
        Ok(o) => o,
        Err(e) => {
            return RemotingCommand::response(response::SYSTEM_ERROR, cmd.opaque)
                .with_remark(e.to_string())
        }
    };
    match record_at(shard, offset) {
        Some(bytes) => RemotingCommand::response(response::SUCCESS, cmd.opaque).with_body(bytes),
        None => RemotingCommand::response(response::SYSTEM_ERROR, cmd.opaque)
            .with_remark(remarks::no_message_at_offset(offset)),
    }
}

/// The stored record that starts at `offset`, if one does: its size must be sane, it must
/// decode, and it must say it was written at `offset` (so an offset inside another record, or
/// in a segment's blank tail, finds nothing).
pub(crate) fn record_at(shard: &Shard, offset: i64) -> Option<Bytes> {
    let offset = u64::try_from(offset).ok()?;
    let log = shard.store.log();
    let size = log.with_bytes(offset, 4, |b| {
        i32::from_be_bytes(b.try_into().expect("4 bytes"))
    })?;
    let size = usize::try_from(size).ok()?;
    if size < RECORD_FIXED_BYTES_V4 || size > shard.store.record_bytes_max() {
        return None;
    }
    log.with_bytes(offset, size, |bytes| {
        let view = record::decode(bytes).ok()?;
        (view.physical_offset == offset as i64).then(|| Bytes::copy_from_slice(bytes))
    })?
}

/// The most messages one QUERY_MESSAGE returns (RocketMQ's `maxMsgsNumBatch`, F12).
pub const QUERY_MAX: usize = 64;
/// `defaultQueryMaxNum`, used for lookups by UNIQ_KEY.
const UNIQUE_QUERY_MAX: usize = 32;

/// QUERY_MESSAGE (12): messages of `topic` whose KEYS (or, with `_UNIQUE_KEY_QUERY`, whose
/// UNIQ_KEY) include `key`, stored within [beginTimestamp, endTimestamp], newest first.
pub fn query_by_key(shard: &Shard, cmd: &RemotingCommand) -> RemotingCommand {
    let f = Fields(&cmd.ext_fields);
    let parsed = (|| {
        Ok::<_, crate::remoting::headers::HeaderError>((
            f.str("topic")?,
            f.str("key")?,
            f.i32("maxNum")?,
            f.i64("beginTimestamp")?,
            f.i64("endTimestamp")?,
        ))
    })();
    let (topic, key, max_num, begin, end) = match parsed {
        Ok(p) => p,
        Err(e) => {
            return RemotingCommand::response(response::SYSTEM_ERROR, cmd.opaque)
                .with_remark(e.to_string())
        }
    };
    let unique = f.opt_str("_UNIQUE_KEY_QUERY") == Some("true");
    let max = if unique {
        UNIQUE_QUERY_MAX
    } else {
        (max_num.max(1) as usize).min(QUERY_MAX)
    };
    let candidates = shard
        .store
        .index()
        .lookup(topic, key, begin, end, max * 2 + 8);
    let mut seen = std::collections::HashSet::new();
    let mut body = Vec::new();
    let mut found = 0;
    for phy in candidates {
        if found == max {
            break;
        }
        if !seen.insert(phy) {
            continue;
        }
        let Some(bytes) = record_at(shard, phy as i64) else {
            continue;
        };
        let view = record::decode(&bytes).expect("record_at checked it decodes");
        let keyed = if unique {
            record::find_property(view.properties, record::property::UNIQ_KEY) == Some(key)
        } else {
            record::find_property(view.properties, record::property::KEYS)
                .is_some_and(|keys| keys.split(' ').any(|k| k == key))
        };
        if view.topic == topic
            && keyed
            && view.store_timestamp >= begin
            && view.store_timestamp <= end
        {
            body.extend_from_slice(&bytes);
            found += 1;
        }
    }
    let (last_ts, last_phy) = shard.store.index().last_update();
    let reply = if found == 0 {
        RemotingCommand::response(response::QUERY_NOT_FOUND, cmd.opaque)
            .with_remark("can not find message, maybe time range not correct")
    } else {
        RemotingCommand::response(response::SUCCESS, cmd.opaque).with_body(Bytes::from(body))
    };
    reply
        .with_field("indexLastUpdateTimestamp", last_ts)
        .with_field("indexLastUpdatePhyoffset", last_phy)
}
