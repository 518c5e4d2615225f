//! Group administration: `updateSubGroup`, `deleteSubGroup`, `consumerConnection`,
//! `producerConnection`.

use anyhow::{bail, Context};
use clap::Args;
use petrel_shards::broker::metadata::SubscriptionGroupConfig;

use super::topic::masters_of;
use crate::client::Client;

/// mqadmin's updateSubGroup options (the group's settings; unset ones keep RocketMQ's
/// defaults).
#[derive(Debug, Args)]
pub struct GroupOptions {
    #[arg(short = 'b', long = "brokerAddr", conflicts_with = "cluster_name")]
    pub broker_addr: Option<String>,
    #[arg(short = 'c', long = "clusterName")]
    pub cluster_name: Option<String>,
    #[arg(short = 'g', long = "groupName")]
    pub group: String,
    #[arg(short = 's', long = "consumeEnable", action = clap::ArgAction::Set, default_value_t = true)]
    pub consume_enable: bool,
    #[arg(short = 'm', long = "consumeFromMinEnable", action = clap::ArgAction::Set, default_value_t = true)]
    pub consume_from_min_enable: bool,
    #[arg(short = 'd', long = "consumeBroadcastEnable", action = clap::ArgAction::Set, default_value_t = true)]
    pub broadcast: bool,
    #[arg(short = 'o', long = "consumeMessageOrderly", action = clap::ArgAction::Set, default_value_t = false)]
    pub orderly: bool,
    #[arg(short = 'q', long = "retryQueueNums", default_value_t = 1)]
    pub retry_queue_nums: i32,
    #[arg(short = 'r', long = "retryMaxTimes", default_value_t = 16)]
    pub retry_max_times: i32,
    #[arg(short = 'a', long = "notifyConsumerIdsChanged", action = clap::ArgAction::Set, default_value_t = true)]
    pub notify: bool,
}

pub fn update(namesrv: &str, o: &GroupOptions) -> anyhow::Result<()> {
    let mut client = Client::new(namesrv);
    let config = SubscriptionGroupConfig {
        group_name: o.group.clone(),
        consume_enable: o.consume_enable,
        consume_from_min_enable: o.consume_from_min_enable,
        consume_broadcast_enable: o.broadcast,
        consume_message_orderly: o.orderly,
        retry_queue_nums: o.retry_queue_nums,
        retry_max_times: o.retry_max_times,
        notify_consumer_ids_changed_enable: o.notify,
        ..Default::default()
    };
    let targets = match (&o.broker_addr, &o.cluster_name) {
        (Some(addr), _) => vec![addr.clone()],
        (None, Some(cluster)) => masters_of(&mut client, cluster)?
            .into_iter()
            .map(|m| m.addr)
            .collect(),
        (None, None) => bail!("updateSubGroup needs -b brokerAddr or -c clusterName"),
    };
    for addr in targets {
        client
            .create_group(&addr, &config)
            .with_context(|| format!("create subscription group to {addr} failed"))?;
        println!("create subscription group to {addr} success.");
    }
    let c = &config;
    println!(
        "SubscriptionGroupConfig [groupName={}, consumeEnable={}, consumeFromMinEnable={}, consumeBroadcastEnable={}, consumeMessageOrderly={}, retryQueueNums={}, retryMaxTimes={}, brokerId={}, whichBrokerWhenConsumeSlowly={}, notifyConsumerIdsChangedEnable={}, groupSysFlag={}, consumeTimeoutMinute={}]",
        c.group_name, c.consume_enable, c.consume_from_min_enable, c.consume_broadcast_enable,
        c.consume_message_orderly, c.retry_queue_nums, c.retry_max_times, c.broker_id,
        c.which_broker_when_consume_slowly, c.notify_consumer_ids_changed_enable,
        c.group_sys_flag, c.consume_timeout_minute
    );
    Ok(())
}

/// `deleteSubGroup (-b ADDR | -c C) -g G [-r]`.
pub fn delete(
    namesrv: &str,
    broker_addr: Option<String>,
    cluster: Option<String>,
    group: &str,
    clean_offsets: bool,
) -> anyhow::Result<()> {
    use petrel_shards::remoting::request;
    let mut client = Client::new(namesrv);
    let targets: Vec<String> = match (&broker_addr, &cluster) {
        (Some(addr), _) => vec![addr.clone()],
        (None, Some(c)) => masters_of(&mut client, c)?
            .into_iter()
            .map(|m| m.addr)
            .collect(),
        (None, None) => bail!("deleteSubGroup needs -b brokerAddr or -c clusterName"),
    };
    let fields = [
        ("groupName", group.to_string()),
        ("cleanOffset", clean_offsets.to_string()),
    ];
    for addr in targets {
        client
            .call_ok(&addr, request::DELETE_SUBSCRIPTIONGROUP, &fields)
            .with_context(|| format!("delete subscription group [{group}] from {addr} failed"))?;
        match &cluster {
            Some(c) => println!(
                "delete subscription group [{group}] from broker [{addr}] in cluster [{c}] success."
            ),
            None => println!("delete subscription group [{group}] from broker [{addr}] success."),
        }
    }
    Ok(())
}

/// Every master broker's address, for questions any of them may answer.
fn all_masters(client: &mut Client) -> anyhow::Result<Vec<String>> {
    let info = client.cluster_info()?;
    let mut addrs: Vec<String> = info["brokerAddrTable"]
        .as_object()
        .map(|t| {
            t.values()
                .filter_map(|b| b["brokerAddrs"]["0"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    addrs.sort();
    if addrs.is_empty() {
        bail!("the name server knows no master broker");
    }
    Ok(addrs)
}

/// `consumerConnection -g G [-b ADDR]`: the group's live members (from every broker, merged),
/// then its subscription and settings, in mqadmin's layout.
pub fn consumer_connection(
    namesrv: &str,
    group: &str,
    broker_addr: Option<String>,
) -> anyhow::Result<()> {
    use petrel_shards::remoting::request;
    let mut client = Client::new(namesrv);
    let targets = match broker_addr {
        Some(a) => vec![a],
        None => all_masters(&mut client)?,
    };
    let fields = [("consumerGroup", group.to_string())];
    let mut members = std::collections::BTreeMap::new();
    let mut info: Option<serde_json::Value> = None;
    let mut last_error = None;
    for addr in targets {
        match client.call_ok(&addr, request::GET_CONSUMER_CONNECTION_LIST, &fields) {
            Ok(reply) => {
                let body: serde_json::Value = serde_json::from_slice(&reply.body)
                    .with_context(|| format!("bad ConsumerConnection from {addr}"))?;
                for c in body["connectionSet"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                {
                    members.insert(c["clientId"].as_str().unwrap_or("").to_string(), c);
                }
                info.get_or_insert(body);
            }
            Err(e) => last_error = Some(e),
        }
    }
    let Some(info) = info else {
        bail!(
            "{}",
            last_error.map_or_else(
                || format!("the consumer group[{group}] not online"),
                |e| e.to_string()
            )
        );
    };
    println!(
        "{:<4} {:<48} {:<24} {:<10} {:<10}",
        "#", "#ClientId", "#ClientAddr", "#Language", "#Version"
    );
    for (i, c) in members.values().enumerate() {
        println!(
            "{:<4} {:<48} {:<24} {:<10} {:<10}",
            i + 1,
            c["clientId"].as_str().unwrap_or(""),
            c["clientAddr"].as_str().unwrap_or(""),
            c["language"].as_str().unwrap_or(""),
            c["version"]
        );
    }
    println!("\nBelow is subscription:");
    println!("{:<4} {:<48} {:<48}", "#", "#Topic", "#SubExpression");
    let subs = info["subscriptionTable"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    for (i, (topic, sub)) in subs.iter().enumerate() {
        println!(
            "{:<4} {:<48} {:<48}",
            i + 1,
            topic,
            sub["subString"].as_str().unwrap_or("")
        );
    }
    println!();
    println!(
        "ConsumeType: {}",
        info["consumeType"].as_str().unwrap_or("")
    );
    println!(
        "MessageModel: {}",
        info["messageModel"].as_str().unwrap_or("")
    );
    println!(
        "ConsumeFromWhere: {}",
        info["consumeFromWhere"].as_str().unwrap_or("")
    );
    Ok(())
}

/// `producerConnection -g G -t T`: the group's live producers on the brokers of the topic.
pub fn producer_connection(namesrv: &str, group: &str, topic: &str) -> anyhow::Result<()> {
    use petrel_shards::remoting::request;
    let mut client = Client::new(namesrv);
    let route = client.route(topic)?;
    let fields = [("producerGroup", group.to_string())];
    let mut members = std::collections::BTreeMap::new();
    let mut last_error = None;
    for broker in &route.broker_datas {
        let Some(addr) = route.broker_addr(&broker.broker_name).map(str::to_string) else {
            continue;
        };
        match client.call_ok(&addr, request::GET_PRODUCER_CONNECTION_LIST, &fields) {
            Ok(reply) => {
                let body: serde_json::Value = serde_json::from_slice(&reply.body)
                    .with_context(|| format!("bad ProducerConnection from {addr}"))?;
                for c in body["connectionSet"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                {
                    members.insert(c["clientId"].as_str().unwrap_or("").to_string(), c);
                }
            }
            Err(e) => last_error = Some(e),
        }
    }
    if members.is_empty() {
        bail!(
            "{}",
            last_error.map_or_else(
                || format!("the producer group[{group}] not exist"),
                |e| e.to_string()
            )
        );
    }
    for (i, c) in members.values().enumerate() {
        println!(
            "{:04}  {:<48} {:<24} {:<10} {}",
            i + 1,
            c["clientId"].as_str().unwrap_or(""),
            c["clientAddr"].as_str().unwrap_or(""),
            c["language"].as_str().unwrap_or(""),
            c["version"]
        );
    }
    Ok(())
}
