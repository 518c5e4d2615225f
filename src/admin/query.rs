//! mqadmin's message lookups: `queryMsgById` (by offsetMsgId, VIEW_MESSAGE_BY_ID),
//! `queryMsgByOffset` (by broker, queue and offset, a one-message pull) and `queryMsgByKey`
//! (QUERY_MESSAGE on every broker of the topic), and `printMsg`. The first two print mqadmin's detail block
//! and, as mqadmin does, write the body to `<tmp>/rocketmq/msgbodys/<id>`; given a group,
//! `queryMsgById` also says where that group is with the message (F13).

use std::path::PathBuf;

use anyhow::{bail, Context};

use crate::client::{Client, KeyQuery, MessageExt, MessageQueue, PullRequest};

/// By offset ID (VIEW_MESSAGE_BY_ID at the broker it names) or, as mqadmin falls back to,
/// by unique key (the client-side ID every client prints) in `topic`.
pub fn by_id(
    client: &mut Client,
    msg_id: &str,
    topic: Option<&str>,
    group: Option<&str>,
) -> anyhow::Result<()> {
    let m = if names_a_broker(client, msg_id)? {
        client
            .view_message(msg_id)
            .with_context(|| format!("query message by id {msg_id}"))?
    } else {
        let Some(topic) = topic else {
            bail!("{msg_id} is not the offset ID of a message on any broker; to look it up as a unique key (the client-side ID), give its topic with -t");
        };
        by_unique_key(client, topic, msg_id)?
    };
    print_detail(&m, &m.offset_msg_id)?;
    if let Some(group) = group {
        let status = consume_status(client, &m, group)?;
        println!("{:<20} {status} (group {group})", "Consume Status:");
    }
    Ok(())
}

/// Whether `msg_id` is an offset ID of one of the brokers the name server knows.
fn names_a_broker(client: &mut Client, msg_id: &str) -> anyhow::Result<bool> {
    let Some((addr, _)) = petrel_shards::record::decode_offset_msg_id(msg_id) else {
        return Ok(false);
    };
    let info = client.cluster_info()?;
    let addr = serde_json::Value::String(addr.to_string());
    let brokers = info["brokerAddrTable"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    Ok(brokers.values().any(|b| {
        b["brokerAddrs"]
            .as_object()
            .is_some_and(|addrs| addrs.values().any(|a| *a == addr))
    }))
}

/// The message of `topic` whose UNIQ_KEY is `key`, asked of every master of the topic.
fn by_unique_key(client: &mut Client, topic: &str, key: &str) -> anyhow::Result<MessageExt> {
    let query = KeyQuery {
        topic,
        key,
        max: 1,
        begin_ms: 0,
        end_ms: i64::MAX,
        unique: true,
    };
    let route = client.route(topic)?;
    for broker in &route.broker_datas {
        let Some(addr) = route.broker_addr(&broker.broker_name) else {
            continue;
        };
        let addr = addr.to_string();
        let found = client
            .query_by_key(&addr, &broker.broker_name, &query)
            .with_context(|| format!("query by unique key on {} ({addr})", broker.broker_name))?;
        if let Some(m) = found.into_iter().find(|m| m.msg_id == key) {
            return Ok(m);
        }
    }
    bail!("no message of topic {topic} has the unique key {key}")
}

/// Where `group` is with message `m`: Consumed (its committed offset is past it), Consuming
/// (pulled, not yet committed) or To-consume. RocketMQ's tools show only the first and last.
pub fn consume_status(
    client: &mut Client,
    m: &MessageExt,
    group: &str,
) -> anyhow::Result<&'static str> {
    let addr = m.store_host.to_string();
    let stats = client
        .consume_stats(&addr, group, Some(&m.topic))
        .with_context(|| format!("consume stats of {group} on {addr}"))?;
    let queue = stats.queues.iter().find(|q| q.queue.queue_id == m.queue_id);
    Ok(match queue {
        Some(q) if q.consumer_offset > m.queue_offset => "Consumed",
        Some(q) if q.pull_offset > m.queue_offset => "Consuming",
        _ => "To-consume",
    })
}

pub fn by_offset(client: &mut Client, queue: &MessageQueue, offset: i64) -> anyhow::Result<()> {
    let route = client.route(&queue.topic)?;
    let addr = route
        .broker_addr(&queue.broker_name)
        .with_context(|| format!("no master for broker {}", queue.broker_name))?
        .to_string();
    let request = PullRequest {
        group: "TOOLS_CONSUMER",
        queue,
        offset,
        max: 1,
        subscription: "*",
        suspend: None,
    };
    let pulled = client.pull(&addr, &request)?;
    let Some(m) = pulled
        .messages
        .into_iter()
        .find(|m| m.queue_offset == offset)
    else {
        bail!(
            "no message at offset {offset} of {}/{}/{} (queue holds {}..{})",
            queue.topic,
            queue.broker_name,
            queue.queue_id,
            pulled.min_offset,
            pulled.max_offset
        );
    };
    print_detail(&m, &m.offset_msg_id)
}

/// `queryMsgByKey`: asks every broker of the topic and prints mqadmin's rows.
pub fn by_key(client: &mut Client, query: &KeyQuery<'_>) -> anyhow::Result<()> {
    let route = client.route(query.topic)?;
    let mut found = Vec::new();
    for broker in &route.broker_datas {
        let Some(addr) = route.broker_addr(&broker.broker_name) else {
            continue;
        };
        let addr = addr.to_string();
        let messages = client
            .query_by_key(&addr, &broker.broker_name, query)
            .with_context(|| format!("query by key on {} ({addr})", broker.broker_name))?;
        found.extend(messages);
    }
    println!("{:<50} {:>4} {:>40}", "#Message ID", "#QID", "#Offset");
    for m in &found {
        println!("{:<50} {:>4} {:>40}", m.msg_id, m.queue_id, m.queue_offset);
    }
    Ok(())
}

fn human_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map_or_else(
        || ms.to_string(),
        |t| {
            t.with_timezone(&chrono::Local)
                .format("%Y-%m-%d %H:%M:%S,%3f")
                .to_string()
        },
    )
}

fn print_detail(m: &MessageExt, id: &str) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join("rocketmq").join("msgbodys");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let body_path: PathBuf = dir.join(id);
    std::fs::write(&body_path, &m.body)
        .with_context(|| format!("writing {}", body_path.display()))?;
    let properties: Vec<String> = m
        .properties
        .0
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let or_null = |v: Option<&str>| v.unwrap_or("null").to_string();
    let rows = [
        ("OffsetID:", id.to_string()),
        ("Topic:", m.topic.clone()),
        ("Tags:", format!("[{}]", or_null(m.tags()))),
        ("Keys:", format!("[{}]", or_null(m.keys()))),
        ("Queue ID:", m.queue_id.to_string()),
        ("Queue Offset:", m.queue_offset.to_string()),
        ("CommitLog Offset:", m.commit_log_offset.to_string()),
        ("Reconsume Times:", m.reconsume_times.to_string()),
        ("Born Timestamp:", human_time(m.born_timestamp)),
        ("Store Timestamp:", human_time(m.store_timestamp)),
        ("Born Host:", m.born_host.to_string()),
        ("Store Host:", m.store_host.to_string()),
        ("System Flag:", m.sys_flag.to_string()),
        ("Properties:", format!("{{{}}}", properties.join(", "))),
        ("Message Body Path:", body_path.display().to_string()),
    ];
    for (label, value) in rows {
        println!("{label:<20} {value}");
    }
    Ok(())
}

/// What `printMsg` prints: a topic's messages, optionally filtered by tag and store time.
pub struct PrintRequest<'a> {
    pub topic: &'a str,
    pub subscription: &'a str,
    pub begin_ms: Option<i64>,
    pub end_ms: Option<i64>,
    pub print_body: bool,
}

/// `printMsg`: every queue of the topic, its offsets, then each message in store-time range.
pub fn print_messages(client: &mut Client, req: &PrintRequest<'_>) -> anyhow::Result<()> {
    use petrel_shards::remoting::request;
    let route = client.route(req.topic)?;
    for queue in route.subscribe_queues(req.topic) {
        let Some(addr) = route.broker_addr(&queue.broker_name).map(str::to_string) else {
            continue;
        };
        let offset_of = |client: &mut Client, code: i32, ms: Option<i64>| -> anyhow::Result<i64> {
            let mut fields = vec![
                ("topic", req.topic.to_string()),
                ("queueId", queue.queue_id.to_string()),
            ];
            if let Some(ms) = ms {
                fields.push(("timestamp", ms.to_string()));
            }
            let reply = client.call_ok(&addr, code, &fields)?;
            Ok(reply
                .field("offset")
                .and_then(|o| o.parse().ok())
                .unwrap_or(0))
        };
        let min = offset_of(client, request::GET_MIN_OFFSET, None)?;
        let max = offset_of(client, request::GET_MAX_OFFSET, None)?;
        let from = match req.begin_ms {
            Some(ms) => offset_of(client, request::SEARCH_OFFSET_BY_TIMESTAMP, Some(ms))?,
            None => min,
        };
        println!(
            "minOffset={min}, maxOffset={max}, MessageQueue [topic={}, brokerName={}, queueId={}]",
            queue.topic, queue.broker_name, queue.queue_id
        );
        let mut offset = from;
        while offset < max {
            let pull = PullRequest {
                group: "TOOLS_CONSUMER",
                queue: &queue,
                offset,
                max: 32,
                subscription: req.subscription,
                suspend: None,
            };
            let result = client.pull(&addr, &pull)?;
            for m in &result.messages {
                if req.end_ms.is_some_and(|end| m.store_timestamp > end) {
                    continue;
                }
                let body = if req.print_body {
                    String::from_utf8_lossy(&m.body).into_owned()
                } else {
                    "NOT PRINT BODY".to_string()
                };
                println!(
                    "MSGID: {} MessageExt [brokerName={}, queueId={}, queueOffset={}, storeTimestamp={}, tags={}, keys={}] BODY: {body}",
                    m.msg_id,
                    m.broker_name,
                    m.queue_id,
                    m.queue_offset,
                    m.store_timestamp,
                    m.tags().unwrap_or(""),
                    m.keys().unwrap_or("")
                );
            }
            if result.next_begin_offset <= offset {
                break;
            }
            offset = result.next_begin_offset;
        }
    }
    Ok(())
}
