//! mqadmin's `consumerProgress -g GROUP [-t TOPIC]` (GET_CONSUME_STATS from every master
//! broker, one line per queue, then the totals) and `resetOffsetByTime` (server-side reset
//! on every broker of the topic).

use anyhow::{bail, Context};

use crate::client::Client;

pub fn consumer_progress(
    client: &mut Client,
    group: &str,
    topic: Option<&str>,
) -> anyhow::Result<()> {
    let info = client.cluster_info()?;
    let mut masters: Vec<(String, String)> = info["brokerAddrTable"]
        .as_object()
        .map(|t| {
            t.iter()
                .filter_map(|(name, b)| {
                    Some((name.clone(), b["brokerAddrs"]["0"].as_str()?.to_string()))
                })
                .collect()
        })
        .unwrap_or_default();
    masters.sort();
    if masters.is_empty() {
        bail!("the name server knows no master broker");
    }
    let mut rows = Vec::new();
    for (name, addr) in &masters {
        let stats = client
            .consume_stats(addr, group, topic)
            .with_context(|| format!("consume stats of {group} from {name} ({addr})"))?;
        rows.extend(stats);
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
    println!("Consume TPS: not measured");
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
