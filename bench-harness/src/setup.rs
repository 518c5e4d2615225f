//! Before a run: find the master brokers through the name server, create the workload's
//! topics with fresh names (queues spread over the brokers, so the total is
//! `partitionsPerTopic` whatever the broker count), wait until routes show them, and plan which
//! queues each producer and consumer works on.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use petrel::client::Client;
use petrel_shards::broker::metadata::TopicConfig;
use petrel_shards::remoting::{request, response};

use crate::consumer::ConsumerSpec;
use crate::producer::ProducerSpec;
use crate::workload::Workload;

pub struct Plan {
    pub brokers: Vec<String>,
    pub producers: Vec<ProducerSpec>,
    pub consumers: Vec<ConsumerSpec>,
    pub topics: Vec<String>,
}

/// Master brokers by name, from GET_BROKER_CLUSTER_INFO.
pub fn masters(client: &mut Client) -> anyhow::Result<BTreeMap<String, String>> {
    let info = client
        .cluster_info()
        .context("asking the name server for its brokers")?;
    let mut out = BTreeMap::new();
    if let Some(table) = info["brokerAddrTable"].as_object() {
        for (name, data) in table {
            if let Some(addr) = data["brokerAddrs"]["0"].as_str() {
                out.insert(name.clone(), addr.to_string());
            }
        }
    }
    if out.is_empty() {
        bail!("the name server knows no master broker");
    }
    Ok(out)
}

pub fn prepare(namesrv: &str, w: &Workload, run_id: &str) -> anyhow::Result<Plan> {
    let mut client = Client::new(namesrv);
    client.timeout = Duration::from_secs(10);
    let masters = masters(&mut client)?;
    let brokers: Vec<String> = masters.values().cloned().collect();
    let slug: String = w
        .name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(60)
        .collect();
    let mut plan = Plan {
        brokers: brokers.clone(),
        producers: Vec::new(),
        consumers: Vec::new(),
        topics: Vec::new(),
    };
    for t in 0..w.topics {
        let topic = format!("{run_id}-{slug}-{t}");
        create(&mut client, &masters, &topic, w.partitions_per_topic)?;
        let queues = wait_for_route(&mut client, &topic, w.partitions_per_topic)?;
        let by_addr = |name: &str| {
            let addr = &masters[name];
            brokers.iter().position(|b| b == addr).expect("a master")
        };
        for p in 0..w.producers_per_topic {
            // Producers start at different queues so that they spread at once.
            let mut qs: Vec<(usize, i32)> = queues
                .iter()
                .map(|(name, id)| (by_addr(name), *id))
                .collect();
            let first = p as usize % qs.len();
            qs.rotate_left(first);
            plan.producers.push(ProducerSpec {
                id: plan.producers.len() as u64 + 1,
                group: format!("{run_id}-producer"),
                topic: topic.clone(),
                brokers: brokers.clone(),
                queues: qs,
                rate: w.producer_rate / (w.topics * w.producers_per_topic) as f64,
                window: w.in_flight(),
                batch: w.batch_size as usize,
                message_size: w.message_size,
            });
        }
        for s in 0..w.subscriptions_per_topic {
            let group = format!("{run_id}-sub-{t}-{s}");
            let n = w.consumer_per_subscription as usize;
            for c in 0..n {
                // Queues shared out as RocketMQ's average allocation does: consumer c takes
                // every n-th queue.
                let mut per_broker: BTreeMap<&str, Vec<(i32, i64)>> = BTreeMap::new();
                for (name, id) in queues.iter().skip(c).step_by(n) {
                    let addr = masters[name].as_str();
                    let start = max_offset(&mut client, addr, &topic, *id)?;
                    per_broker.entry(addr).or_default().push((*id, start));
                }
                for (addr, qs) in per_broker {
                    plan.consumers.push(ConsumerSpec {
                        id: plan.consumers.len() as u64 + 1,
                        group: group.clone(),
                        topic: topic.clone(),
                        addr: addr.to_string(),
                        queues: qs,
                    });
                }
            }
        }
        plan.topics.push(topic);
    }
    Ok(plan)
}

/// UPDATE_AND_CREATE_TOPIC on each master with its share of the queues.
fn create(
    client: &mut Client,
    masters: &BTreeMap<String, String>,
    topic: &str,
    queues: u32,
) -> anyhow::Result<()> {
    let n = masters.len() as u32;
    for (i, (name, addr)) in masters.iter().enumerate() {
        let share = queues / n + u32::from((i as u32) < queues % n);
        if share == 0 {
            continue;
        }
        client
            .create_topic(addr, &TopicConfig::new(topic, share as i32, 6))
            .with_context(|| format!("creating topic {topic} on {name} ({addr})"))?;
    }
    Ok(())
}

/// Waits until the route lists `queues` writable queues; returns them as (broker, id).
fn wait_for_route(
    client: &mut Client,
    topic: &str,
    queues: u32,
) -> anyhow::Result<Vec<(String, i32)>> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let found = client
            .route(topic)
            .map(|r| r.publish_queues(topic))
            .unwrap_or_default();
        if found.len() == queues as usize {
            return Ok(found
                .into_iter()
                .map(|q| (q.broker_name, q.queue_id))
                .collect());
        }
        if Instant::now() >= deadline {
            bail!(
                "topic {topic}: the route shows {} of {queues} queues after 30 s",
                found.len()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn max_offset(client: &mut Client, addr: &str, topic: &str, queue: i32) -> anyhow::Result<i64> {
    let reply = client.call_fields(
        addr,
        request::GET_MAX_OFFSET,
        &[("topic", topic.to_string()), ("queueId", queue.to_string())],
    )?;
    if reply.code != response::SUCCESS {
        bail!(
            "GET_MAX_OFFSET {topic}/{queue} on {addr}: code {}",
            reply.code
        );
    }
    reply
        .field("offset")
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("GET_MAX_OFFSET {topic}/{queue} on {addr}: no offset"))
}
