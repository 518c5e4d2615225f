//! The shards' latest figures in the Prometheus text format (OpenMetrics), written by
//! prometheus-client. Names follow rocketmq-exporter where it has one (`rocketmq_broker_tps`,
//! `rocketmq_producer_tps`, `rocketmq_consumer_tps`, `rocketmq_group_diff`, …, with its
//! `cluster`, `broker`, `topic`, `group` and `queueid` labels); the rest are `petrel_`.

use std::fmt;

use hdrhistogram::Histogram;
use petrel_shards::broker::metrics::ShardMetrics;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

/// Latency bucket bounds, in seconds.
const BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

type Labels = Vec<(&'static str, String)>;

#[derive(Debug)]
struct Figures(Vec<ShardMetrics>);

/// The text a scrape gets for `shards`.
pub fn render(shards: Vec<ShardMetrics>) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Figures(shards)));
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry)
        .expect("writing to a String cannot fail");
    text
}

fn broker(s: &ShardMetrics) -> Labels {
    vec![("cluster", s.cluster.clone()), ("broker", s.broker.clone())]
}

fn with(mut labels: Labels, key: &'static str, value: impl ToString) -> Labels {
    labels.push((key, value.to_string()));
    labels
}

fn gauges(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: Vec<(Labels, f64)>,
) -> fmt::Result {
    if rows.is_empty() {
        return Ok(());
    }
    let mut family = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, value) in &rows {
        family.encode_family(labels)?.encode_gauge(value)?;
    }
    Ok(())
}

/// A counter family: OpenMetrics names its samples `<name>_total`.
fn counters(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: Vec<(Labels, u64)>,
) -> fmt::Result {
    if rows.is_empty() {
        return Ok(());
    }
    let mut family = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, value) in &rows {
        family
            .encode_family(labels)?
            .encode_counter::<NoLabelSet, _, u64>(value, None)?;
    }
    Ok(())
}

/// A latency family in seconds from histograms of microseconds.
fn latencies(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: Vec<(Labels, &Histogram<u64>)>,
) -> fmt::Result {
    let mut family =
        enc.encode_descriptor(name, help, Some(&Unit::Seconds), MetricType::Histogram)?;
    for (labels, h) in &rows {
        let mut counts = [0u64; BUCKETS.len() + 1];
        for v in h.iter_recorded() {
            let secs = h.highest_equivalent(v.value_iterated_to()) as f64 / 1e6;
            let at = BUCKETS
                .iter()
                .position(|b| secs <= *b)
                .unwrap_or(BUCKETS.len());
            counts[at] += v.count_at_value();
        }
        let bounds = BUCKETS.iter().copied().chain([f64::MAX]);
        let buckets: Vec<(f64, u64)> = bounds.zip(counts).collect();
        let sum = h.mean() * h.len() as f64 / 1e6;
        family
            .encode_family(labels)?
            .encode_histogram::<NoLabelSet>(sum, h.len(), &buckets, None)?;
    }
    Ok(())
}

impl Collector for Figures {
    fn encode(&self, mut enc: DescriptorEncoder) -> fmt::Result {
        let shards = &self.0;
        let per_shard = |f: fn(&ShardMetrics) -> f64| -> Vec<(Labels, f64)> {
            shards.iter().map(|s| (broker(s), f(s))).collect()
        };
        gauges(
            &mut enc,
            "rocketmq_broker_tps",
            "Messages stored per second (last minute)",
            per_shard(|s| s.put_tps),
        )?;
        gauges(
            &mut enc,
            "rocketmq_broker_qps",
            "Messages served to pulls per second (last minute)",
            per_shard(|s| s.get_tps),
        )?;
        gauges(
            &mut enc,
            "petrel_connections",
            "Client connections open",
            per_shard(|s| s.connections as f64),
        )?;
        gauges(
            &mut enc,
            "petrel_store_commitlog_bytes",
            "Commit-log bytes kept",
            per_shard(|s| s.commitlog_bytes as f64),
        )?;
        let disk: Vec<_> = shards
            .iter()
            .filter_map(|s| Some((broker(s), s.disk_used_ratio?)))
            .collect();
        gauges(
            &mut enc,
            "petrel_store_disk_used_ratio",
            "Used share of the store's disk",
            disk,
        )?;

        let topics = || {
            shards.iter().flat_map(|s| {
                s.topics
                    .iter()
                    .map(move |t| (with(broker(s), "topic", &t.topic), t))
            })
        };
        gauges(
            &mut enc,
            "rocketmq_producer_tps",
            "Messages stored per second per topic (last minute)",
            topics().map(|(l, t)| (l, t.messages_per_sec)).collect(),
        )?;
        gauges(
            &mut enc,
            "rocketmq_producer_message_size",
            "Body bytes stored per second per topic (last minute)",
            topics().map(|(l, t)| (l, t.bytes_per_sec)).collect(),
        )?;
        gauges(
            &mut enc,
            "rocketmq_producer_offset",
            "Sum of the topic's queue end offsets",
            topics().map(|(l, t)| (l, t.offset as f64)).collect(),
        )?;
        counters(
            &mut enc,
            "petrel_messages_in",
            "Messages stored per topic",
            topics().map(|(l, t)| (l, t.messages)).collect(),
        )?;
        counters(
            &mut enc,
            "petrel_bytes_in",
            "Body bytes stored per topic",
            topics().map(|(l, t)| (l, t.bytes)).collect(),
        )?;

        let groups = || {
            shards.iter().flat_map(|s| {
                s.groups.iter().map(move |g| {
                    (
                        with(with(broker(s), "topic", &g.topic), "group", &g.group),
                        g,
                    )
                })
            })
        };
        gauges(
            &mut enc,
            "rocketmq_consumer_tps",
            "Messages served per second per group and topic (last minute)",
            groups().map(|(l, g)| (l, g.messages_per_sec)).collect(),
        )?;
        gauges(
            &mut enc,
            "rocketmq_consumer_message_size",
            "Bytes served per second per group and topic (last minute)",
            groups().map(|(l, g)| (l, g.bytes_per_sec)).collect(),
        )?;
        let committed = || groups().filter(|(_, g)| !g.backlog.is_empty());
        gauges(
            &mut enc,
            "rocketmq_consumer_offset",
            "Sum of the group's committed offsets on the topic",
            committed().map(|(l, g)| (l, g.offset as f64)).collect(),
        )?;
        gauges(
            &mut enc,
            "rocketmq_group_diff",
            "Messages the group has yet to consume on the topic",
            committed()
                .map(|(l, g)| (l, g.backlog.iter().map(|(_, b)| *b).sum::<u64>() as f64))
                .collect(),
        )?;
        counters(
            &mut enc,
            "petrel_messages_out",
            "Messages served to pulls per group and topic",
            groups().map(|(l, g)| (l, g.messages)).collect(),
        )?;
        counters(
            &mut enc,
            "petrel_bytes_out",
            "Bytes served to pulls per group and topic",
            groups().map(|(l, g)| (l, g.bytes)).collect(),
        )?;

        let mut backlog = Vec::new();
        for (labels, g) in groups() {
            for (queue_id, behind) in &g.backlog {
                backlog.push((with(labels.clone(), "queueid", queue_id), *behind as f64));
            }
        }
        gauges(
            &mut enc,
            "petrel_queue_backlog",
            "Messages the group has yet to consume per queue",
            backlog,
        )?;

        latencies(
            &mut enc,
            "petrel_send_latency",
            "Stored writes (sends, messages given back, transaction ends) from arrival to answer",
            shards
                .iter()
                .map(|s| (broker(s), &s.send_latency))
                .collect(),
        )?;
        latencies(
            &mut enc,
            "petrel_pull_latency",
            "Pulls answered at once (not held), from arrival to answer",
            shards
                .iter()
                .map(|s| (broker(s), &s.pull_latency))
                .collect(),
        )?;
        Ok(())
    }
}
