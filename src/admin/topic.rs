//! Topic administration: `updateTopic` (with `-o`, the name servers' order config) and
//! `deleteTopic`.

use anyhow::{bail, Context};
use petrel_shards::broker::metadata::{perm, TopicConfig};

use super::brokers::targets;
use crate::client::Client;

fn perm_text(p: i32) -> String {
    let flag = |bit: i32, c: char| if p & bit != 0 { c } else { '-' };
    format!(
        "{}{}{}",
        flag(perm::READ, 'R'),
        flag(perm::WRITE, 'W'),
        flag(perm::INHERIT, 'X')
    )
}

/// Creates or updates `config` on the broker at `broker_addr` (a shard or a front door) or on
/// every master of `cluster`. With `order`, the topic's `brokerName:writeQueueNums;…` goes to
/// every name server as `ORDER_TOPIC_CONFIG`, so clients keep its queue set fixed.
pub fn update(
    namesrv: &str,
    broker_addr: Option<String>,
    cluster: Option<String>,
    config: &TopicConfig,
) -> anyhow::Result<()> {
    let mut client = Client::new(namesrv);
    let targets = targets(
        &mut client,
        broker_addr.as_deref(),
        cluster.as_deref(),
        "updateTopic",
    )?;
    let mut order_conf = Vec::new();
    for (name, addr) in targets {
        let reply = client
            .create_topic(&addr, config)
            .with_context(|| format!("create topic to {addr} failed"))?;
        println!("create topic to {addr} success.");
        // A front door splits the queues over its shards and says how.
        match (reply.field("queueLayout"), name) {
            (Some(layout), _) => order_conf.extend(layout.split(';').map(str::to_string)),
            (None, Some(name)) => order_conf.push(format!("{name}:{}", config.write_queue_nums)),
            (None, None) if config.order => {
                bail!("{addr} is not a broker the name server knows; cannot write the order config")
            }
            (None, None) => {}
        }
    }
    if config.order {
        let value = order_conf.join(";");
        client
            .put_kv_everywhere("ORDER_TOPIC_CONFIG", &config.topic_name, &value)
            .context("writing the order config to the name servers failed")?;
        println!(
            "set order config {}={value} on every name server.",
            config.topic_name
        );
    }
    println!(
        "TopicConfig [topicName={}, readQueueNums={}, writeQueueNums={}, perm={}, topicFilterType={}, topicSysFlag={}, order={}, attributes={{}}]",
        config.topic_name, config.read_queue_nums, config.write_queue_nums, perm_text(config.perm),
        config.topic_filter_type, config.topic_sys_flag, config.order
    );
    Ok(())
}

/// `deleteTopic -t T (-c C | -b ADDR)`: every broker is asked first whether the topic may go
/// (no live producer or consumer, F36), so a refusal anywhere deletes nothing; then the
/// brokers delete it and every name server forgets its route.
pub fn delete(
    namesrv: &str,
    broker_addr: Option<String>,
    cluster: Option<String>,
    topic: &str,
) -> anyhow::Result<()> {
    use petrel_shards::remoting::request;
    let mut client = Client::new(namesrv);
    let targets: Vec<String> = targets(
        &mut client,
        broker_addr.as_deref(),
        cluster.as_deref(),
        "deleteTopic",
    )?
    .into_iter()
    .map(|(_, addr)| addr)
    .collect();
    let check = [
        ("topic", topic.to_string()),
        ("checkOnly", "true".to_string()),
    ];
    for addr in &targets {
        client
            .call_ok(addr, request::DELETE_TOPIC_IN_BROKER, &check)
            .with_context(|| format!("delete topic [{topic}] refused by {addr}"))?;
    }
    for addr in &targets {
        client
            .call_ok(addr, request::DELETE_TOPIC_IN_BROKER, &check[..1])
            .with_context(|| format!("delete topic [{topic}] from {addr} failed"))?;
    }
    let place = cluster.as_deref().unwrap_or_else(|| targets[0].as_str());
    println!("delete topic [{topic}] from cluster [{place}] success.");
    let mut fields = vec![("topic", topic.to_string())];
    if let Some(c) = &cluster {
        fields.push(("clusterName", c.clone()));
    }
    client
        .call_every_namesrv(request::DELETE_TOPIC_IN_NAMESRV, &fields)
        .context("delete topic from the name servers failed")?;
    println!("delete topic [{topic}] from NameServer success.");
    Ok(())
}

/// Prints a topic's route: mqadmin's table with `-l`, else its JSON.
pub fn print_route(namesrv: &str, topic: &str, list: bool) -> anyhow::Result<()> {
    let route = Client::new(namesrv).route(topic)?;
    if list {
        println!(
            "{:<22}{:<22}{:<40}{:<12}{:<12}{:<6}",
            "#ClusterName", "#BrokerName", "#BrokerAddrs", "#ReadQueue", "#WriteQueue", "#Perm"
        );
        let (mut read, mut write) = (0, 0);
        for q in &route.queue_datas {
            let broker = route
                .broker_datas
                .iter()
                .find(|b| b.broker_name == q.broker_name);
            let cluster = broker.map_or("", |b| b.cluster.as_str());
            let addrs = broker
                .map(|b| format!("{:?}", b.broker_addrs))
                .unwrap_or_default();
            println!(
                "{:<22}{:<22}{:<40}{:<12}{:<12}{:<6}",
                cluster, q.broker_name, addrs, q.read_queue_nums, q.write_queue_nums, q.perm
            );
            read += q.read_queue_nums;
            write += q.write_queue_nums;
        }
        println!(
            "{:<22}{:<22}{:<40}{:<12}{:<12}",
            "Total:", "", "", read, write
        );
    } else {
        let value = serde_json::json!({
            "brokerDatas": route.broker_datas.iter().map(|b| serde_json::json!({
                "brokerAddrs": b.broker_addrs, "brokerName": b.broker_name, "cluster": b.cluster })).collect::<Vec<_>>(),
            "queueDatas": route.queue_datas.iter().map(|q| serde_json::json!({
                "brokerName": q.broker_name, "perm": q.perm, "readQueueNums": q.read_queue_nums,
                "topicSysFlag": q.topic_sys_flag, "writeQueueNums": q.write_queue_nums })).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&value)?);
    }
    Ok(())
}
