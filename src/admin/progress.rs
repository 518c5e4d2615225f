//! mqadmin's `consumerProgress -g GROUP [-t TOPIC]` (GET_CONSUME_STATS from every master
//! broker, one line per queue, then the totals) and `resetOffsetByTime` (server-side reset
//! on every broker of the topic).

use anyhow::Context;

use super::brokers::{all_masters, Master};
use super::group::connections;
use super::version;
use crate::client::Client;

/// `consumerProgress` without `-g`: one line per group (every `%RETRY%` topic names one), with
/// its online members, their client version, consume type and model, TPS and backlog.
pub fn all_groups(client: &mut Client) -> anyhow::Result<()> {
    use petrel_shards::remoting::request;
    let masters = all_masters(client)?;
    let addrs: Vec<String> = masters.iter().map(|m| m.addr.clone()).collect();
    let mut groups: Vec<String> = client
        .topic_list()?
        .into_iter()
        .filter_map(|t| t.strip_prefix("%RETRY%").map(str::to_string))
        .collect();
    groups.sort();
    groups.dedup();
    println!(
        "{:<64}  {:<6}  {:<24} {:<5}  {:<14}  {:<7}  #Diff Total",
        "#Group", "#Count", "#Version", "#Type", "#Model", "#TPS"
    );
    for group in groups {
        let (mut tps, mut diff) = (0.0, 0i64);
        for Master { addr, .. } in &masters {
            if let Ok(stats) = client.consume_stats(addr, &group, None) {
                tps += stats.tps;
                diff += stats
                    .queues
                    .iter()
                    .map(|q| q.broker_offset - q.consumer_offset)
                    .sum::<i64>();
            }
        }
        let fields = [("consumerGroup", group.clone())];
        let found = connections(
            client,
            &addrs,
            request::GET_CONSUMER_CONNECTION_LIST,
            &fields,
        )?;
        let (members, connection) = (found.members, found.first);
        let (version, kind, model) = match &connection {
            Some(c) => (
                version::json_version_desc(&c["connectionSet"][0]["version"]),
                match c["consumeType"].as_str() {
                    Some("CONSUME_ACTIVELY") => "PULL",
                    Some("CONSUME_POP") => "POP",
                    _ => "PUSH",
                },
                c["messageModel"].as_str().unwrap_or("").to_string(),
            ),
            None => ("OFFLINE".to_string(), "", String::new()),
        };
        println!(
            "{:<64}  {:<6}  {:<24} {:<5}  {:<14}  {:<7.0}  {}",
            group,
            members.len(),
            version,
            kind,
            model,
            tps,
            diff
        );
    }
    Ok(())
}

pub fn consumer_progress(
    client: &mut Client,
    group: &str,
    topic: Option<&str>,
) -> anyhow::Result<()> {
    let masters = all_masters(client)?;
    let mut rows = Vec::new();
    let mut tps = 0.0;
    for Master { name, addr } in &masters {
        let stats = client
            .consume_stats(addr, group, topic)
            .with_context(|| format!("consume stats of {group} from {name} ({addr})"))?;
        tps += stats.tps;
        rows.extend(stats.queues);
    }
    rows.sort_by(|a, b| a.queue.cmp(&b.queue));
    println!(
        "{:<64}  {:<32}  {:<4}  {:<20}  {:<20}  {:<20}  {:<20}  #LastTime",
        "#Topic",
        "#Broker Name",
        "#QID",
        "#Broker Offset",
        "#Consumer Offset",
        "#Diff",
        "#Inflight"
    );
    let (mut diff_total, mut inflight_total) = (0i64, 0i64);
    for r in &rows {
        let diff = r.broker_offset - r.consumer_offset;
        let inflight = r.pull_offset - r.consumer_offset;
        diff_total += diff;
        inflight_total += inflight;
        let last = if r.last_timestamp > 0 {
            chrono::DateTime::from_timestamp_millis(r.last_timestamp).map_or_else(
                || r.last_timestamp.to_string(),
                |t| {
                    t.with_timezone(&chrono::Local)
                        .format("%Y-%m-%d %H:%M:%S")
                        .to_string()
                },
            )
        } else {
            "N/A".to_string()
        };
        println!(
            "{:<64}  {:<32}  {:<4}  {:<20}  {:<20}  {:<20}  {:<20}  {}",
            r.queue.topic,
            r.queue.broker_name,
            r.queue.queue_id,
            r.broker_offset,
            r.consumer_offset,
            diff,
            inflight,
            last
        );
    }
    println!();
    println!("Consume TPS: {tps:.2}");
    println!("Consume Diff Total: {diff_total}");
    println!("Consume Inflight Total: {inflight_total}");
    Ok(())
}

/// `-s` of resetOffsetByTime: epoch milliseconds, `now`, or `yyyy-MM-dd#HH:mm:ss:SSS` (local
/// time).
pub fn parse_time(text: &str) -> anyhow::Result<i64> {
    if text == "now" {
        return Ok(crate::client::now_ms());
    }
    if let Ok(ms) = text.parse::<i64>() {
        return Ok(ms);
    }
    let naive = chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d#%H:%M:%S:%3f").with_context(
        || format!("bad time `{text}`: expected ms, `now` or yyyy-MM-dd#HH:mm:ss:SSS"),
    )?;
    use chrono::TimeZone;
    let local = chrono::Local
        .from_local_datetime(&naive)
        .earliest()
        .with_context(|| format!("`{text}` does not exist in the local time zone"))?;
    Ok(local.timestamp_millis())
}

/// `resetOffsetByTime -g G -t T -s TIME`: every broker of the topic moves the group's offsets
/// (server side, while its consumers run); prints mqadmin's rows.
pub fn reset_by_time(client: &mut Client, group: &str, topic: &str, ms: i64) -> anyhow::Result<()> {
    let route = client.route(topic)?;
    let mut rows = Vec::new();
    for broker in &route.broker_datas {
        let Some(addr) = route.broker_addr(&broker.broker_name) else {
            continue;
        };
        let addr = addr.to_string();
        let reset = client
            .reset_offset(&addr, group, topic, ms)
            .with_context(|| format!("reset offset on {} ({addr})", broker.broker_name))?;
        rows.extend(reset);
    }
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    println!("{:<40} {:<10} {:<20}", "#brokerName", "#queueId", "#offset");
    for (mq, offset) in rows {
        println!("{:<40} {:<10} {:<20}", mq.broker_name, mq.queue_id, offset);
    }
    Ok(())
}
