//! Committed consumer offsets of one shard: per (topic, group), per queue id. Persisted as
//! RocketMQ's `consumerOffset.json` shape: `{"offsetTable":{"topic@group":{"0":12}}}`.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

#[derive(Debug, Default, Clone)]
pub struct ConsumerOffsets {
    table: HashMap<String, BTreeMap<i32, i64>>,
    /// Where each group's last pull ended (not persisted; RocketMQ's pull offsets): what a
    /// consumer holds but has not committed yet is `pulled - committed`.
    pulled: HashMap<String, BTreeMap<i32, i64>>,
    /// Server-side resets not yet seen by the group's next pull of the queue: until then the
    /// group's commits for the queue (made from positions before the reset) are ignored.
    resets: HashMap<String, BTreeMap<i32, i64>>,
    /// Messages each `topic@group` pulled, over windows of `RATE_WINDOW`.
    rates: HashMap<String, PullRate>,
}

/// How long a pull-rate window lasts.
const RATE_WINDOW: std::time::Duration = std::time::Duration::from_secs(10);

/// Messages pulled in the current window, and the rate of the last full one.
#[derive(Debug, Clone, Copy)]
struct PullRate {
    since: std::time::Instant,
    count: u64,
    last_rate: f64,
}

fn key(topic: &str, group: &str) -> String {
    format!("{topic}@{group}")
}

#[derive(Default, serde::Serialize, serde::Deserialize)]
struct OnDisk {
    #[serde(rename = "offsetTable")]
    offset_table: BTreeMap<String, BTreeMap<i32, i64>>,
}

impl ConsumerOffsets {
    pub fn load(path: &Path) -> std::io::Result<ConsumerOffsets> {
        let disk: OnDisk = crate::store::atomic_file::read_json(path)?;
        Ok(ConsumerOffsets {
            table: disk.offset_table.into_iter().collect(),
            pulled: HashMap::new(),
            resets: HashMap::new(),
            rates: HashMap::new(),
        })
    }

    /// Takes a master's committed offsets (its `consumerOffset.json`): each queue it names
    /// gets the master's value; queues only this table has keep theirs.
    pub fn adopt(&mut self, json: serde_json::Value) -> Result<(), String> {
        let disk: OnDisk = serde_json::from_value(json).map_err(|e| e.to_string())?;
        for (key, queues) in disk.offset_table {
            self.table.entry(key).or_default().extend(queues);
        }
        Ok(())
    }

    pub fn to_json(&self) -> Vec<u8> {
        let disk = OnDisk {
            offset_table: self
                .table
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        };
        serde_json::to_vec_pretty(&disk).expect("offsets serialize")
    }

    pub fn get(&self, topic: &str, group: &str, queue_id: i32) -> Option<i64> {
        self.table.get(&key(topic, group))?.get(&queue_id).copied()
    }

    /// Commits `offset`, unless a reset of the queue waits for the group's next pull.
    pub fn commit(&mut self, topic: &str, group: &str, queue_id: i32, offset: i64) {
        let key = key(topic, group);
        if self
            .resets
            .get(&key)
            .is_some_and(|r| r.contains_key(&queue_id))
        {
            return;
        }
        self.table.entry(key).or_default().insert(queue_id, offset);
    }

    /// Moves the group's offset of a queue to `offset` and remembers the reset for its next
    /// pull (`take_reset`).
    pub fn reset(&mut self, topic: &str, group: &str, queue_id: i32, offset: i64) {
        let key = key(topic, group);
        self.table
            .entry(key.clone())
            .or_default()
            .insert(queue_id, offset);
        self.resets.entry(key).or_default().insert(queue_id, offset);
    }

    /// The reset waiting for this pull, if any; from now on commits count again.
    pub fn take_reset(&mut self, topic: &str, group: &str, queue_id: i32) -> Option<i64> {
        let key = key(topic, group);
        let resets = self.resets.get_mut(&key)?;
        let offset = resets.remove(&queue_id);
        if resets.is_empty() {
            self.resets.remove(&key);
        }
        offset
    }

    /// Forgets every group's offsets on `topic` (the topic was deleted).
    pub fn remove_topic(&mut self, topic: &str) {
        let prefix = format!("{topic}@");
        for map in [&mut self.table, &mut self.pulled, &mut self.resets] {
            map.retain(|k, _| !k.starts_with(&prefix));
        }
        self.rates.retain(|k, _| !k.starts_with(&prefix));
    }

    /// Forgets `group`'s offsets on every topic (the group was deleted).
    pub fn remove_group(&mut self, group: &str) {
        let suffix = format!("@{group}");
        for map in [&mut self.table, &mut self.pulled, &mut self.resets] {
            map.retain(|k, _| !k.ends_with(&suffix));
        }
        self.rates.retain(|k, _| !k.ends_with(&suffix));
    }

    /// Records where a pull by `group` ended, and counts what it took toward the group's rate.
    pub fn record_pull(
        &mut self,
        topic: &str,
        group: &str,
        queue_id: i32,
        next: i64,
        now: std::time::Instant,
    ) {
        let key = key(topic, group);
        let previous = match self.pulled.get_mut(&key) {
            Some(queues) => queues.insert(queue_id, next),
            None => {
                self.pulled
                    .insert(key.clone(), BTreeMap::from([(queue_id, next)]));
                None
            }
        };
        let took = previous.map_or(0, |p| (next - p).max(0) as u64);
        let rate = self.rates.entry(key).or_insert(PullRate {
            since: now,
            count: 0,
            last_rate: 0.0,
        });
        let elapsed = now.duration_since(rate.since);
        if elapsed >= RATE_WINDOW {
            rate.last_rate = rate.count as f64 / elapsed.as_secs_f64();
            rate.since = now;
            rate.count = 0;
        }
        rate.count += took;
    }

    /// Messages per second `group` pulled from `topic` over the last full window; 0 once it
    /// stopped pulling for two windows.
    pub fn pull_rate(&self, topic: &str, group: &str, now: std::time::Instant) -> f64 {
        self.rates.get(&key(topic, group)).map_or(0.0, |r| {
            let idle = now.saturating_duration_since(r.since);
            if idle >= RATE_WINDOW * 2 {
                0.0
            } else if idle >= RATE_WINDOW {
                r.count as f64 / idle.as_secs_f64()
            } else {
                r.last_rate
            }
        })
    }

    pub fn pulled(&self, topic: &str, group: &str, queue_id: i32) -> Option<i64> {
        self.pulled.get(&key(topic, group))?.get(&queue_id).copied()
    }

    /// Topics `group` has committed or pulled on, sorted.
    pub fn topics_of(&self, group: &str) -> Vec<String> {
        let suffix = format!("@{group}");
        let mut topics: Vec<String> = self
            .table
            .keys()
            .chain(self.pulled.keys())
            .filter_map(|k| k.strip_suffix(&suffix).map(str::to_string))
            .collect();
        topics.sort();
        topics.dedup();
        topics
    }

    /// Moves every committed offset below its queue's first offset (`first_of(topic,
    /// queue)`, after retention deleted older messages) up to it; returns how many moved.
    pub fn raise_to(&mut self, first_of: impl Fn(&str, i32) -> Option<u64>) -> usize {
        let mut moved = 0;
        for (key, queues) in &mut self.table {
            let Some((topic, _group)) = key.split_once('@') else {
                continue;
            };
            for (queue_id, offset) in queues.iter_mut() {
                if let Some(first) = first_of(topic, *queue_id) {
                    if *offset < first as i64 {
                        *offset = first as i64;
                        moved += 1;
                    }
                }
            }
        }
        moved
    }

    /// Every committed `(topic, group, queue offsets)`.
    pub fn committed(&self) -> impl Iterator<Item = (&str, &str, &BTreeMap<i32, i64>)> {
        self.table.iter().filter_map(|(key, queues)| {
            let (topic, group) = key.split_once('@')?;
            Some((topic, group, queues))
        })
    }

    /// Groups with committed offsets on `topic`.
    pub fn groups_of(&self, topic: &str) -> Vec<String> {
        let prefix = format!("{topic}@");
        self.table
            .keys()
            .filter_map(|k| k.strip_prefix(&prefix).map(str::to_string))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_survive_a_round_trip_through_json() {
        let mut offsets = ConsumerOffsets::default();
        offsets.commit("T", "G", 0, 12);
        offsets.commit("T", "G", 3, 7);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("consumerOffset.json");
        crate::store::atomic_file::write(&path, &offsets.to_json()).unwrap();
        let loaded = ConsumerOffsets::load(&path).unwrap();
        assert_eq!(loaded.table, offsets.table);
        assert_eq!(loaded.get("T", "G", 3), Some(7));
        assert_eq!(loaded.groups_of("T"), vec!["G".to_string()]);
    }

    #[test]
    fn the_pull_rate_is_messages_per_second_over_the_last_window() {
        let mut offsets = ConsumerOffsets::default();
        let t0 = std::time::Instant::now();
        let at = |s: u64| t0 + std::time::Duration::from_secs(s);
        offsets.record_pull("T", "G", 0, 0, at(0));
        for s in 1..=10 {
            offsets.record_pull("T", "G", 0, s as i64 * 50, at(s));
        }
        // The first window, [0 s, 10 s), saw the 450 messages of the pulls at 1..9 s (the
        // first pull only placed the group); the pull at 10 s opened the next window.
        offsets.record_pull("T", "G", 0, 550, at(11));
        let rate = offsets.pull_rate("T", "G", at(12));
        assert!((rate - 45.0).abs() < 1e-9, "{rate}");
        assert_eq!(offsets.pull_rate("T", "G", at(40)), 0.0, "stopped pulling");
        assert_eq!(offsets.pull_rate("T", "Other", at(12)), 0.0);
    }

    #[test]
    fn a_reset_holds_off_older_commits_until_the_next_pull() {
        let mut offsets = ConsumerOffsets::default();
        offsets.commit("T", "G", 0, 9);
        offsets.reset("T", "G", 0, 2);
        offsets.commit("T", "G", 0, 10);
        assert_eq!(
            offsets.get("T", "G", 0),
            Some(2),
            "a commit from before the reset"
        );
        assert_eq!(offsets.take_reset("T", "G", 0), Some(2));
        assert_eq!(offsets.take_reset("T", "G", 0), None);
        offsets.commit("T", "G", 0, 3);
        assert_eq!(offsets.get("T", "G", 0), Some(3));
        offsets.remove_topic("T");
        assert_eq!(offsets.get("T", "G", 0), None);
    }

    #[test]
    fn pulls_are_tracked_apart_from_commits_and_not_persisted() {
        let mut offsets = ConsumerOffsets::default();
        offsets.commit("T", "G", 0, 2);
        offsets.record_pull("U", "G", 1, 9, std::time::Instant::now());
        offsets.record_pull("U", "G", 1, 11, std::time::Instant::now());
        assert_eq!(offsets.pulled("U", "G", 1), Some(11));
        assert_eq!(offsets.get("U", "G", 1), None);
        assert_eq!(
            offsets.topics_of("G"),
            vec!["T".to_string(), "U".to_string()]
        );
        assert!(!String::from_utf8(offsets.to_json())
            .unwrap()
            .contains("\"U@G\""));
    }
}
