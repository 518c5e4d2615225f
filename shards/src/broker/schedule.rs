//! Delay levels (spec §6.8). A message sent with `DELAY=n` is stored in `SCHEDULE_TOPIC_XXXX`,
//! queue `n − 1`, with its real topic and queue in `REAL_TOPIC`/`REAL_QID`. Every level's queue
//! holds messages in the order they are due (one delay per level), so delivery walks each queue
//! from its progress offset and stops at the first message not yet due: it is written again,
//! to its real queue, without `DELAY`. Progress is persisted in `delayOffset.json`
//! (`{"offsetTable":{"1":12,…}}`, levels from 1) with the other periodic files; after a crash a
//! message delivered since the last write is delivered again (at least once, as RocketMQ).

use std::collections::BTreeMap;
use std::path::Path;
use std::rc::Rc;
use std::time::Duration;

use crate::broker::Shard;
use crate::record::{self, decode_properties, encode_properties, property, MessageToStore};
use crate::store::atomic_file::JsonState;

pub const SCHEDULE_TOPIC: &str = "SCHEDULE_TOPIC_XXXX";
/// The largest body a delayed message may have.
pub const DELAY_BODY_MAX: usize = 64 << 10;
/// RocketMQ's default `messageDelayLevel`.
pub const DEFAULT_LEVELS: &str = "1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h";
const TICK: Duration = Duration::from_millis(100);

/// Parses `messageDelayLevel`: space-separated durations with a unit `s`, `m`, `h` or `d`.
pub fn parse_levels(text: &str) -> Result<Vec<Duration>, String> {
    let levels: Vec<Duration> = text
        .split_whitespace()
        .map(|level| {
            let unit_at = level.len().saturating_sub(1);
            let (number, unit) = level.split_at(unit_at);
            let seconds = match unit {
                "s" => 1,
                "m" => 60,
                "h" => 3600,
                "d" => 86_400,
                _ => return Err(format!("`{level}` needs a unit s, m, h or d")),
            };
            let n: u64 = number
                .parse()
                .map_err(|_| format!("`{level}` is not a whole number of {unit}"))?;
            Ok(Duration::from_secs(n * seconds))
        })
        .collect::<Result<_, _>>()?;
    if levels.is_empty() {
        return Err("no levels".into());
    }
    Ok(levels)
}

/// How far delivery got in each level's queue.
pub type DelayProgress = JsonState<OnDisk>;

/// `delayOffset.json`: level → next offset of its queue.
#[derive(Debug, Default, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct OnDisk {
    #[serde(rename = "offsetTable")]
    offset_table: BTreeMap<i32, u64>,
}

/// Loads `delayOffset.json` of the shard at `dir`.
pub fn load_progress(dir: &Path) -> std::io::Result<DelayProgress> {
    JsonState::load(dir.join("delayOffset.json"))
}

/// Delivers due messages every tick until the executor ends.
pub async fn run(shard: Rc<Shard>) {
    loop {
        if shard.ha.is_master() {
            deliver_due(&shard, crate::broker::metadata::now_ms());
        }
        glommio::timer::sleep(TICK).await;
    }
}

/// Writes every message due at `now_ms` to its real queue.
pub fn deliver_due(shard: &Shard, now_ms: i64) {
    for (index, delay) in shard.config.delay_levels.iter().enumerate() {
        let level = index as i32 + 1;
        loop {
            // A full disk holds delivery back; what is due goes out once space is back.
            if !shard.store.writable() {
                return;
            }
            let mut progress = shard.delay.borrow_mut();
            let offsets = &mut progress.offset_table;
            let min = shard.store.min_offset(SCHEDULE_TOPIC, index as i32);
            let next = offsets.entry(level).or_insert(min);
            *next = (*next).max(min);
            let entry = {
                let queues = shard.store.queues();
                queues
                    .get(SCHEDULE_TOPIC, index as i32)
                    .and_then(|q| q.get(*next).copied())
            };
            let Some(entry) = entry else { break };
            if entry.store_timestamp + delay.as_millis() as i64 > now_ms {
                break;
            }
            *next += 1;
            drop(progress);
            let mut bytes = Vec::with_capacity(entry.size as usize);
            if !shard
                .store
                .copy_record(entry.commit_log_offset, entry.size, &mut bytes)
            {
                log::warn!(
                    "shard {}: delayed message at {} is not readable; skipped",
                    shard.config.shard_id,
                    entry.commit_log_offset
                );
                continue;
            }
            if let Err(e) = redeliver(shard, &bytes, now_ms) {
                log::warn!(
                    "shard {}: delayed message at {}: {e}; skipped",
                    shard.config.shard_id,
                    entry.commit_log_offset
                );
            }
        }
    }
}

/// Stores the scheduled record `bytes` again in its real topic and queue, without `DELAY`.
fn redeliver(shard: &Shard, bytes: &[u8], now_ms: i64) -> Result<(), String> {
    let view = record::decode(bytes).map_err(|e| e.to_string())?;
    let mut props = decode_properties(view.properties);
    let (topic, queue_id) = shard.real_queue(&props)?;
    props.remove(property::DELAY);
    let properties = encode_properties(&props);
    shard.store.append(&MessageToStore::again(
        &view,
        &topic,
        queue_id,
        &properties,
        now_ms,
        view.store_host,
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_levels_parse_and_bad_ones_are_named() {
        let levels = parse_levels(DEFAULT_LEVELS).unwrap();
        assert_eq!(levels.len(), 18);
        assert_eq!(levels[2], Duration::from_secs(10));
        assert_eq!(levels[17], Duration::from_secs(7200));
        assert!(parse_levels("1s 2x").unwrap_err().contains("`2x`"));
        assert!(parse_levels("s").unwrap_err().contains("`s`"));
        assert!(parse_levels("").is_err());
    }
}
