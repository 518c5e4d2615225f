//! A shard's traffic statistics, kept as RocketMQ's `BrokerStatsManager` keeps them so that
//! `VIEW_BROKER_STATS_DATA` (315, mqadmin `statsAll`), `GET_TOPIC_STATS_INFO`'s `topicPutTps`
//! and the runtime info's `putTps` read the same figures: per item a running total and a
//! count of calls, sampled every 10 s (the last minute), every 10 min (the last hour) and
//! every hour (the last day). A window's sum and rate run from its oldest sample to the live
//! total, so a send is visible at once rather than after the next sample.
//!
//! Owned by its shard (a `RefCell` on `Shard`); the hot path does one or two map lookups by
//! borrowed name and allocates only the first time a topic or group is seen.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// How often `sample` is called.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(10);
/// Samples of the last-minute window: one every 10 s (RocketMQ keeps 7).
const MINUTE_SAMPLES: usize = 7;
/// Ticks between hour-window samples (10 min) and day-window samples (1 h).
const HOUR_TICKS: u64 = 60;
const DAY_TICKS: u64 = 360;
const HOUR_SAMPLES: usize = 7;
const DAY_SAMPLES: usize = 25;

/// The statistics RocketMQ's tools ask for by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatsName {
    /// Messages stored, per topic.
    TopicPutNums,
    /// Body bytes stored, per topic.
    TopicPutSize,
    /// Messages served to pulls, per `topic@group`.
    GroupGetNums,
    /// Body bytes served to pulls, per `topic@group`.
    GroupGetSize,
    /// Messages stored by the whole shard (key: its cluster name, as RocketMQ has it).
    BrokerPutNums,
    /// Messages served by the whole shard (key: its cluster name).
    BrokerGetNums,
}

impl StatsName {
    pub fn parse(name: &str) -> Option<StatsName> {
        Some(match name {
            "TOPIC_PUT_NUMS" => StatsName::TopicPutNums,
            "TOPIC_PUT_SIZE" => StatsName::TopicPutSize,
            "GROUP_GET_NUMS" => StatsName::GroupGetNums,
            "GROUP_GET_SIZE" => StatsName::GroupGetSize,
            "BROKER_PUT_NUMS" => StatsName::BrokerPutNums,
            "BROKER_GET_NUMS" => StatsName::BrokerGetNums,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Instant,
    value: u64,
    times: u64,
}

/// One window's figures: what RocketMQ's `StatsSnapshot` holds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Snapshot {
    /// Growth of the value over the window.
    pub sum: u64,
    /// `sum` per second.
    pub tps: f64,
    /// `sum` per call (average messages per request, bytes per request).
    pub avgpt: f64,
}

#[derive(Debug)]
struct Item {
    value: u64,
    times: u64,
    minute: VecDeque<Sample>,
    hour: VecDeque<Sample>,
    day: VecDeque<Sample>,
}

impl Item {
    fn new(now: Instant) -> Item {
        let zero = Sample {
            at: now,
            value: 0,
            times: 0,
        };
        Item {
            value: 0,
            times: 0,
            minute: VecDeque::from([zero]),
            hour: VecDeque::from([zero]),
            day: VecDeque::from([zero]),
        }
    }

    fn snapshot(&self, window: &VecDeque<Sample>, now: Instant) -> Snapshot {
        let first = window.front().expect("a window holds its first sample");
        let sum = self.value - first.value;
        let times = self.times - first.times;
        let secs = now.duration_since(first.at).as_secs_f64();
        Snapshot {
            sum,
            tps: if secs > 0.0 { sum as f64 / secs } else { 0.0 },
            avgpt: if times > 0 {
                sum as f64 / times as f64
            } else {
                0.0
            },
        }
    }

    fn sample(&mut self, tick: u64, now: Instant) {
        let s = Sample {
            at: now,
            value: self.value,
            times: self.times,
        };
        push(&mut self.minute, s, MINUTE_SAMPLES);
        if tick.is_multiple_of(HOUR_TICKS) {
            push(&mut self.hour, s, HOUR_SAMPLES);
        }
        if tick.is_multiple_of(DAY_TICKS) {
            push(&mut self.day, s, DAY_SAMPLES);
        }
    }
}

fn push(window: &mut VecDeque<Sample>, sample: Sample, keep: usize) {
    window.push_back(sample);
    while window.len() > keep {
        window.pop_front();
    }
}

/// A topic's (or a `topic@group`'s) running totals and last-minute rates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Traffic<'a> {
    pub topic: &'a str,
    /// Empty for a topic's puts.
    pub group: &'a str,
    pub messages: u64,
    pub bytes: u64,
    pub messages_per_sec: f64,
    pub bytes_per_sec: f64,
}

impl<'a> Traffic<'a> {
    fn of(topic: &'a str, group: &'a str, nums: &Item, size: Option<&Item>, now: Instant) -> Self {
        let per_sec = |item: &Item| item.snapshot(&item.minute, now).tps;
        Traffic {
            topic,
            group,
            messages: nums.value,
            bytes: size.map_or(0, |s| s.value),
            messages_per_sec: per_sec(nums),
            bytes_per_sec: size.map_or(0.0, per_sec),
        }
    }
}

/// Items keyed by one name, or by two (`topic@group`) without building the joined key.
type Keyed = HashMap<String, Item>;

#[derive(Debug, Default)]
pub struct Stats {
    topic_put_nums: Keyed,
    topic_put_size: Keyed,
    group_get_nums: HashMap<String, Keyed>,
    group_get_size: HashMap<String, Keyed>,
    broker_put: Option<Item>,
    broker_get: Option<Item>,
    ticks: u64,
}

/// Adds `value` to `key`'s item; the clock is read only when the item is new.
fn add(items: &mut Keyed, key: &str, value: u64) {
    let item = match items.get_mut(key) {
        Some(item) => item,
        None => items
            .entry(key.to_string())
            .or_insert_with(|| Item::new(Instant::now())),
    };
    item.value += value;
    item.times += 1;
}

fn add_to(item: &mut Option<Item>, value: u64) {
    let item = item.get_or_insert_with(|| Item::new(Instant::now()));
    item.value += value;
    item.times += 1;
}

impl Stats {
    /// A send stored `messages` messages of `bytes` body bytes in `topic`.
    pub fn put(&mut self, topic: &str, messages: u64, bytes: u64) {
        add(&mut self.topic_put_nums, topic, messages);
        add(&mut self.topic_put_size, topic, bytes);
        add_to(&mut self.broker_put, messages);
    }

    /// A pull of `group` served `messages` messages of `bytes` bytes from `topic`.
    pub fn got(&mut self, topic: &str, group: &str, messages: u64, bytes: u64) {
        for (table, value) in [
            (&mut self.group_get_nums, messages),
            (&mut self.group_get_size, bytes),
        ] {
            let groups = match table.get_mut(topic) {
                Some(groups) => groups,
                None => table.entry(topic.to_string()).or_default(),
            };
            add(groups, group, value);
        }
        add_to(&mut self.broker_get, messages);
    }

    /// Takes the samples due; called every `SAMPLE_EVERY`.
    pub fn sample(&mut self, now: Instant) {
        self.ticks += 1;
        let tick = self.ticks;
        let nested = self
            .group_get_nums
            .values_mut()
            .chain(self.group_get_size.values_mut());
        nested
            .flat_map(|groups| groups.values_mut())
            .chain(self.topic_put_nums.values_mut())
            .chain(self.topic_put_size.values_mut())
            .chain(self.broker_put.iter_mut())
            .chain(self.broker_get.iter_mut())
            .for_each(|item| item.sample(tick, now));
    }

    /// Forgets a deleted topic.
    pub fn remove_topic(&mut self, topic: &str) {
        self.topic_put_nums.remove(topic);
        self.topic_put_size.remove(topic);
        self.group_get_nums.remove(topic);
        self.group_get_size.remove(topic);
    }

    fn item(&self, name: StatsName, key: &str) -> Option<&Item> {
        fn by_topic_group<'a>(table: &'a HashMap<String, Keyed>, key: &str) -> Option<&'a Item> {
            let (topic, group) = key.split_once('@')?;
            table.get(topic)?.get(group)
        }
        match name {
            StatsName::TopicPutNums => self.topic_put_nums.get(key),
            StatsName::TopicPutSize => self.topic_put_size.get(key),
            StatsName::GroupGetNums => by_topic_group(&self.group_get_nums, key),
            StatsName::GroupGetSize => by_topic_group(&self.group_get_size, key),
            StatsName::BrokerPutNums => self.broker_put.as_ref(),
            StatsName::BrokerGetNums => self.broker_get.as_ref(),
        }
    }

    /// The last minute, hour and day of `name` for `key`, if anything was counted under it.
    pub fn view(&self, name: StatsName, key: &str, now: Instant) -> Option<[Snapshot; 3]> {
        let item = self.item(name, key)?;
        Some([
            item.snapshot(&item.minute, now),
            item.snapshot(&item.hour, now),
            item.snapshot(&item.day, now),
        ])
    }

    /// Messages per second put into `topic` over the last minute.
    pub fn topic_put_tps(&self, topic: &str, now: Instant) -> f64 {
        self.topic_put_nums
            .get(topic)
            .map_or(0.0, |item| item.snapshot(&item.minute, now).tps)
    }

    /// Every topic's traffic: messages and bytes stored, in total and per second over the
    /// last minute.
    pub fn topics(&self, now: Instant) -> Vec<Traffic<'_>> {
        self.topic_put_nums
            .iter()
            .map(|(topic, nums)| {
                Traffic::of(
                    topic,
                    "",
                    nums,
                    self.topic_put_size.get(topic.as_str()),
                    now,
                )
            })
            .collect()
    }

    /// Every `topic@group`'s traffic: messages and bytes served to its pulls.
    pub fn groups(&self, now: Instant) -> Vec<Traffic<'_>> {
        let mut out = Vec::new();
        for (topic, groups) in &self.group_get_nums {
            let sizes = self.group_get_size.get(topic.as_str());
            for (group, nums) in groups {
                let size = sizes.and_then(|s| s.get(group.as_str()));
                out.push(Traffic::of(topic, group, nums, size, now));
            }
        }
        out
    }

    /// The shard's put or get rate over about 10 s, 1 min and 10 min, as RocketMQ's runtime
    /// info writes them (`putTps`, `getTransferedTps`: three numbers).
    pub fn broker_tps(&self, puts: bool, now: Instant) -> [f64; 3] {
        let item = if puts {
            &self.broker_put
        } else {
            &self.broker_get
        };
        let Some(item) = item else {
            return [0.0; 3];
        };
        let rate_since = |s: &Sample| {
            let secs = now.duration_since(s.at).as_secs_f64();
            if secs > 0.0 {
                (item.value - s.value) as f64 / secs
            } else {
                0.0
            }
        };
        [
            rate_since(item.minute.back().expect("never empty")),
            rate_since(item.minute.front().expect("never empty")),
            rate_since(item.hour.front().expect("never empty")),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_run_from_their_oldest_sample_to_the_live_total() {
        let mut stats = Stats::default();
        stats.put("T", 10, 1000);
        stats.put("T", 1, 100);
        stats.got("T", "G", 4, 400);
        let now = Instant::now() + Duration::from_secs(2);
        let [minute, hour, day] = stats.view(StatsName::TopicPutNums, "T", now).unwrap();
        assert_eq!(minute.sum, 11);
        assert!((minute.avgpt - 5.5).abs() < 1e-9);
        assert!(minute.tps > 4.0 && minute.tps <= 5.5, "{}", minute.tps);
        assert_eq!((hour.sum, day.sum), (11, 11));
        let [got, ..] = stats.view(StatsName::GroupGetSize, "T@G", now).unwrap();
        assert_eq!(got.sum, 400);
        assert!(stats.view(StatsName::GroupGetNums, "T@H", now).is_none());
        assert!(stats.view(StatsName::TopicPutNums, "U", now).is_none());
    }

    #[test]
    fn the_minute_window_forgets_what_is_older_than_seven_samples() {
        let mut stats = Stats::default();
        let start = Instant::now();
        stats.put("T", 100, 0);
        for i in 1..=7 {
            stats.sample(start + SAMPLE_EVERY * i);
        }
        stats.put("T", 3, 0);
        let now = start + SAMPLE_EVERY * 7;
        let [minute, hour, _] = stats.view(StatsName::TopicPutNums, "T", now).unwrap();
        assert_eq!(minute.sum, 3, "the 100 went out with the oldest sample");
        assert_eq!(hour.sum, 103);
        let [recent, last_minute, _] = stats.broker_tps(true, now + SAMPLE_EVERY);
        assert!((recent - 0.3).abs() < 1e-9, "{recent}");
        assert!(last_minute > 0.0);
        stats.remove_topic("T");
        assert!(stats.view(StatsName::TopicPutNums, "T", now).is_none());
    }
}
