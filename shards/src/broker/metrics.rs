//! What a shard tells the metrics exporter (`metricsExporterType=PROM`): every
//! `PUBLISH_EVERY`, a background task copies the shard's figures into a [`ShardMetrics`]
//! and sends it to the exporter's thread over a channel. The exporter renders the latest
//! copy of each shard when scraped; no shard state is shared or locked, and nothing here runs
//! on the request path.

use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use super::Shard;

/// How often a shard sends its figures: a scrape sees them at most this old.
pub const PUBLISH_EVERY: Duration = Duration::from_secs(1);

/// One shard's figures at one moment.
#[derive(Debug, Clone)]
pub struct ShardMetrics {
    pub shard: usize,
    pub cluster: String,
    /// The shard's broker name in routes.
    pub broker: String,
    pub topics: Vec<TopicMetrics>,
    pub groups: Vec<GroupMetrics>,
    /// Messages stored and served per second over about the last minute.
    pub put_tps: f64,
    pub get_tps: f64,
    /// Commit-log bytes kept (from the first retained offset to the durable end).
    pub commitlog_bytes: u64,
    /// Used share of the store's disk, 0 to 1, when known.
    pub disk_used_ratio: Option<f64>,
    pub connections: usize,
    /// Microseconds from a stored write's arrival to its answer leaving (sends, messages
    /// given back, transaction ends).
    pub send_latency: Histogram<u64>,
    /// Microseconds to answer a pull that was not parked.
    pub pull_latency: Histogram<u64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TopicMetrics {
    pub topic: String,
    pub messages: u64,
    pub bytes: u64,
    pub messages_per_sec: f64,
    pub bytes_per_sec: f64,
    /// The sum of its queues' max offsets (rocketmq-exporter's `rocketmq_producer_offset`).
    pub offset: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GroupMetrics {
    pub topic: String,
    pub group: String,
    pub messages: u64,
    pub bytes: u64,
    pub messages_per_sec: f64,
    pub bytes_per_sec: f64,
    /// The sum of its committed offsets.
    pub offset: u64,
    /// Per queue with a committed offset: messages behind the queue's end.
    pub backlog: Vec<(i32, u64)>,
}

impl TopicMetrics {
    fn new(topic: &str, offset: u64) -> TopicMetrics {
        TopicMetrics {
            topic: topic.to_string(),
            messages: 0,
            bytes: 0,
            messages_per_sec: 0.0,
            bytes_per_sec: 0.0,
            offset,
        }
    }
}

impl GroupMetrics {
    fn new(topic: &str, group: &str) -> GroupMetrics {
        GroupMetrics {
            topic: topic.to_string(),
            group: group.to_string(),
            messages: 0,
            bytes: 0,
            messages_per_sec: 0.0,
            bytes_per_sec: 0.0,
            offset: 0,
            backlog: Vec::new(),
        }
    }
}

impl ShardMetrics {
    /// The shard's figures now.
    pub fn of(shard: &Shard) -> ShardMetrics {
        let now = Instant::now();
        let store = &shard.store;
        let stats = shard.stats.borrow();
        let meta = shard.meta.borrow();
        let mut topics: BTreeMap<&str, TopicMetrics> = meta
            .topic_configs()
            .map(|t| {
                let offset = (0..t.read_queue_nums)
                    .map(|q| store.max_offset(&t.topic_name, q))
                    .sum();
                (
                    t.topic_name.as_str(),
                    TopicMetrics::new(&t.topic_name, offset),
                )
            })
            .collect();
        for traffic in stats.topics(now) {
            if let Some(t) = topics.get_mut(traffic.topic) {
                (t.messages, t.bytes) = (traffic.messages, traffic.bytes);
                (t.messages_per_sec, t.bytes_per_sec) =
                    (traffic.messages_per_sec, traffic.bytes_per_sec);
            }
        }
        let offsets = store.offsets.borrow();
        let mut groups: BTreeMap<(&str, &str), GroupMetrics> = offsets
            .committed()
            .map(|(topic, group, queues)| {
                let mut g = GroupMetrics::new(topic, group);
                g.offset = queues.values().map(|o| (*o).max(0) as u64).sum();
                g.backlog = queues
                    .iter()
                    .map(|(q, o)| {
                        let end = store.max_offset(topic, *q);
                        (*q, end.saturating_sub((*o).max(0) as u64))
                    })
                    .collect();
                ((topic, group), g)
            })
            .collect();
        for traffic in stats.groups(now) {
            let g = groups
                .entry((traffic.topic, traffic.group))
                .or_insert_with(|| GroupMetrics::new(traffic.topic, traffic.group));
            (g.messages, g.bytes) = (traffic.messages, traffic.bytes);
            (g.messages_per_sec, g.bytes_per_sec) =
                (traffic.messages_per_sec, traffic.bytes_per_sec);
        }
        let log = store.log();
        ShardMetrics {
            shard: shard.config.shard_id,
            cluster: shard.config.cluster_name.clone(),
            broker: shard.config.broker_name.clone(),
            topics: topics.into_values().collect(),
            groups: groups.into_values().collect(),
            put_tps: stats.broker_tps(true, now)[1],
            get_tps: stats.broker_tps(false, now)[1],
            commitlog_bytes: log.durable().get().saturating_sub(log.min_offset()),
            disk_used_ratio: store.disk.used_percent().map(|p| p / 100.0),
            connections: shard.open_connections.get(),
            send_latency: shard.send_latency.snapshot(),
            pull_latency: shard.pull_latency.snapshot(),
        }
    }
}

/// Sends the shard's figures to the exporter every `PUBLISH_EVERY`, until it is gone.
pub async fn publish(shard: Rc<Shard>, to: Sender<ShardMetrics>) {
    loop {
        if to.send(ShardMetrics::of(&shard)).is_err() {
            return log::info!("shard {}: metrics exporter gone", shard.config.shard_id);
        }
        glommio::timer::sleep(PUBLISH_EVERY).await;
    }
}
