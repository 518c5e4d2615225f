//! Group administration: `updateSubGroup`, `deleteSubGroup`, `consumerConnection`,
//! `producerConnection`.

use std::collections::BTreeMap;

use anyhow::{bail, Context};
use clap::Args;
use petrel_shards::broker::metadata::SubscriptionGroupConfig;
use serde_json::Value;

use super::brokers::{all_masters, targets};
use super::version;
use crate::client::{Client, ClientError};

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
    let targets = targets(
        &mut client,
        o.broker_addr.as_deref(),
        o.cluster_name.as_deref(),
        "updateSubGroup",
    )?;
    for (_, addr) in targets {
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
    let targets = targets(
        &mut client,
        broker_addr.as_deref(),
        cluster.as_deref(),
        "deleteSubGroup",
    )?;
    let fields = [
        ("groupName", group.to_string()),
        ("cleanOffset", clean_offsets.to_string()),
    ];
    for (_, addr) in targets {
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

/// What brokers answered about a group's connections: its live members by client id, merged
/// over the brokers, the first whole answer, and the last refusal.
pub(super) struct Connections {
    pub members: BTreeMap<String, Value>,
    pub first: Option<Value>,
    pub last_error: Option<ClientError>,
}

/// Asks each broker at `addrs` for a group's connections (`code`: 203 or 204).
pub(super) fn connections(
    client: &mut Client,
    addrs: &[String],
    code: i32,
    fields: &[(&str, String)],
) -> anyhow::Result<Connections> {
    let mut out = Connections {
        members: BTreeMap::new(),
        first: None,
        last_error: None,
    };
    for addr in addrs {
        match client.call_ok(addr, code, fields) {
            Ok(reply) => {
                let body: Value = serde_json::from_slice(&reply.body)
                    .with_context(|| format!("bad connection list from {addr}"))?;
                for c in body["connectionSet"].as_array().into_iter().flatten() {
                    let id = c["clientId"].as_str().unwrap_or("").to_string();
                    out.members.insert(id, c.clone());
                }
                out.first.get_or_insert(body);
            }
            Err(e) => out.last_error = Some(e),
        }
    }
    Ok(out)
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
        None => all_masters(&mut client)?
            .into_iter()
            .map(|m| m.addr)
            .collect(),
    };
    let fields = [("consumerGroup", group.to_string())];
    let found = connections(
        &mut client,
        &targets,
        request::GET_CONSUMER_CONNECTION_LIST,
        &fields,
    )?;
    let members = found.members;
    let Some(info) = found.first else {
        bail!(
            "{}",
            found.last_error.map_or_else(
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
            version::json_version_desc(&c["version"])
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
    let addrs: Vec<String> = route
        .broker_datas
        .iter()
        .filter_map(|b| route.broker_addr(&b.broker_name).map(str::to_string))
        .collect();
    let fields = [("producerGroup", group.to_string())];
    let found = connections(
        &mut client,
        &addrs,
        request::GET_PRODUCER_CONNECTION_LIST,
        &fields,
    )?;
    let members = found.members;
    if members.is_empty() {
        bail!(
            "{}",
            found.last_error.map_or_else(
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
            version::json_version_desc(&c["version"])
        );
    }
    Ok(())
}
