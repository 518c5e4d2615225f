//! Consumer-group administration: `updateSubGroup`.

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
