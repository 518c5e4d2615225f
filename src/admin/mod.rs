//! `petrel admin`: mqadmin's commands, names and options (C2, F38, spec ops-surface §1),
//! built on Petrel's client. Output keeps mqadmin's column headers, which scripts grep.

mod brokers;
mod config;
mod controller;
mod credentials;
mod group;
mod progress;
mod query;
mod topic;
mod version;

use anyhow::{bail, Context};
use bytes::Bytes;
use clap::{Args, Subcommand};
use petrel_shards::broker::attributes;
use petrel_shards::broker::metadata::TopicConfig;

pub use credentials::CredentialArgs;

use crate::client::{properties, Client, Message, MessageQueue, PullRequest};

#[derive(Debug, Args)]
pub struct Namesrv {
    /// Name server address list, `host:port;host:port`.
    #[arg(
        short = 'n',
        long = "namesrvAddr",
        env = "NAMESRV_ADDR",
        default_value = "127.0.0.1:9876"
    )]
    pub namesrv_addr: String,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    #[command(flatten)]
    Config(config::ConfigCommand),
    /// Create or update a topic on one broker (-b) or on every broker of a cluster (-c).
    #[command(name = "updateTopic")]
    UpdateTopic {
        #[command(flatten)]
        ns: Namesrv,
        #[arg(short = 'b', long = "brokerAddr", conflicts_with = "cluster_name")]
        broker_addr: Option<String>,
        #[arg(short = 'c', long = "clusterName")]
        cluster_name: Option<String>,
        #[arg(short = 't', long = "topic")]
        topic: String,
        #[arg(short = 'r', long = "readQueueNums", default_value_t = 8)]
        read_queue_nums: i32,
        #[arg(short = 'w', long = "writeQueueNums", default_value_t = 8)]
        write_queue_nums: i32,
        #[arg(short = 'p', long = "perm", default_value_t = 6)]
        perm: i32,
        #[arg(short = 'o', long = "order", default_value_t = false, action = clap::ArgAction::Set)]
        order: bool,
        /// Attribute changes, `+key=value` to set and `-key` to remove, comma-separated
        /// (`+consume.tps.limit=100`).
        #[arg(short = 'a', long = "attributes")]
        attributes: Option<String>,
    },
    /// Every topic the name server knows.
    #[command(name = "topicList")]
    TopicList {
        #[command(flatten)]
        ns: Namesrv,
    },
    /// Route data of a topic.
    #[command(name = "topicRoute")]
    TopicRoute {
        #[command(flatten)]
        ns: Namesrv,
        #[arg(short = 't', long = "topic")]
        topic: String,
        /// Table instead of JSON.
        #[arg(short = 'l', long = "list")]
        list: bool,
    },
    /// Clusters and their brokers.
    #[command(name = "clusterList")]
    ClusterList {
        #[command(flatten)]
        ns: Namesrv,
        #[arg(short = 'c', long = "clusterName")]
        cluster_name: Option<String>,
    },
    /// Make one replica the master of its group now (controller mode).
    #[command(name = "electMaster")]
    ElectMaster {
        /// Accepted as mqadmin accepts it; the controller is asked directly.
        #[command(flatten)]
        ns: Namesrv,
        /// The controller's address (a name server with enableControllerInNamesrv).
        #[arg(short = 'a', long = "controllerAddress")]
        controller: String,
        #[arg(short = 'b', long = "brokerId")]
        broker_id: i64,
        /// mqadmin spells it `-bn`.
        #[arg(long = "brokerName")]
        broker_name: String,
        #[arg(short = 'c', long = "clusterName")]
        cluster_name: String,
    },
    /// The controller's view of groups: master, epochs, replicas in and out of sync.
    #[command(name = "getSyncStateSet")]
    GetSyncStateSet {
        #[command(flatten)]
        ns: Namesrv,
        #[arg(short = 'a', long = "controllerAddress")]
        controller: String,
        /// Every group of this cluster (the name server's view).
        #[arg(
            short = 'c',
            long = "clusterName",
            required_unless_present = "broker_name"
        )]
        cluster_name: Option<String>,
        #[arg(short = 'b', long = "brokerName")]
        broker_name: Option<String>,
    },
    /// Send one message.
    #[command(name = "sendMessage")]
    SendMessage {
        #[command(flatten)]
        ns: Namesrv,
        #[arg(short = 't', long = "topic")]
        topic: String,
        #[arg(short = 'p', long = "body")]
        body: String,
        #[arg(short = 'k', long = "keys")]
        keys: Option<String>,
        #[arg(short = 'c', long = "tags")]
        tags: Option<String>,
        #[arg(short = 'b', long = "broker")]
        broker_name: Option<String>,
        #[arg(short = 'i', long = "qid")]
        queue_id: Option<i32>,
    },
    /// Read messages without committing an offset.
    #[command(name = "consumeMessage")]
    ConsumeMessage {
        #[command(flatten)]
        ns: Namesrv,
        #[arg(short = 't', long = "topic")]
        topic: String,
        #[arg(short = 'b', long = "brokerName")]
        broker_name: Option<String>,
        #[arg(short = 'i', long = "queueId")]
        queue_id: Option<i32>,
        #[arg(short = 'o', long = "offset", default_value_t = 0)]
        offset: i64,
        #[arg(short = 'g', long = "consumerGroup", default_value = "TOOLS_CONSUMER")]
        group: String,
        #[arg(short = 'c', long = "MessageNumber", default_value_t = 128)]
        count: usize,
    },
    /// Look up a message by its offsetMsgId (the ID a send result and a stored record carry).
    #[command(name = "queryMsgById")]
    QueryMsgById {
        #[command(flatten)]
        ns: Namesrv,
        #[arg(short = 'i', long = "msgId")]
        msg_id: String,
        /// The topic, needed for a unique-key (client-side) ID; an offset ID names its
        /// broker.
        #[arg(short = 't', long = "topic")]
        topic: Option<String>,
        /// Also show where this consumer group is with the message.
        #[arg(short = 'g', long = "consumerGroup")]
        group: Option<String>,
    },
    /// A consumer group's progress per queue: broker offset, committed offset, backlog (Diff)
    /// and pulled-but-uncommitted messages (Inflight); without -g, one line per group.
    #[command(name = "consumerProgress")]
    ConsumerProgress {
        #[command(flatten)]
        ns: Namesrv,
        #[arg(short = 'g', long = "groupName")]
        group: Option<String>,
        #[arg(short = 't', long = "topicName")]
        topic: Option<String>,
    },
    /// Look up a message by broker, queue and queue offset.
    #[command(name = "queryMsgByOffset")]
    QueryMsgByOffset {
        #[command(flatten)]
        ns: Namesrv,
        #[arg(short = 't', long = "topic")]
        topic: String,
        #[arg(short = 'b', long = "brokerName")]
        broker_name: String,
        #[arg(short = 'i', long = "queueId")]
        queue_id: i32,
        #[arg(short = 'o', long = "offset")]
        offset: i64,
    },
    /// Create or update a consumer group on one broker (-b) or every master of a cluster (-c).
    #[command(name = "updateSubGroup")]
    UpdateSubGroup {
        #[command(flatten)]
        ns: Namesrv,
        #[command(flatten)]
        options: group::GroupOptions,
    },
    /// Delete a consumer group on one broker (-b) or every master of a cluster (-c).
    #[command(name = "deleteSubGroup")]
    DeleteSubGroup {
        #[command(flatten)]
        ns: Namesrv,
        #[arg(short = 'b', long = "brokerAddr", conflicts_with = "cluster_name")]
        broker_addr: Option<String>,
        #[arg(short = 'c', long = "clusterName")]
        cluster_name: Option<String>,
        #[arg(short = 'g', long = "groupName")]
        group: String,
        /// Also remove the group's offsets.
        #[arg(short = 'r', long = "removeOffset", default_value_t = false, action = clap::ArgAction::Set)]
        remove_offset: bool,
    },
    /// Delete a topic from every master of a cluster (-c) or one broker (-b), and from the
    /// name servers; refused while producers or consumers use it.
    #[command(name = "deleteTopic")]
    DeleteTopic {
        #[command(flatten)]
        ns: Namesrv,
        #[arg(short = 't', long = "topic")]
        topic: String,
        #[arg(short = 'c', long = "clusterName")]
        cluster_name: Option<String>,
        #[arg(short = 'b', long = "brokerAddr", conflicts_with = "cluster_name")]
        broker_addr: Option<String>,
    },
    /// The live members of a consumer group, their subscription and settings.
    #[command(name = "consumerConnection")]
    ConsumerConnection {
        #[command(flatten)]
        ns: Namesrv,
        #[arg(short = 'g', long = "consumerGroup")]
        group: String,
        #[arg(short = 'b', long = "brokerAddr")]
        broker_addr: Option<String>,
    },
    /// The live members of a producer group sending to a topic.
    #[command(name = "producerConnection")]
    ProducerConnection {
        #[command(flatten)]
        ns: Namesrv,
        #[arg(short = 'g', long = "producerGroup")]
        group: String,
        #[arg(short = 't', long = "topic")]
        topic: String,
    },
    /// Move a consumer group's offsets on a topic to a point in time, while it consumes.
    #[command(name = "resetOffsetByTime")]
    ResetOffsetByTime {
        #[command(flatten)]
        ns: Namesrv,
        #[arg(short = 'g', long = "group")]
        group: String,
        #[arg(short = 't', long = "topic")]
        topic: String,
        /// Epoch ms, `now`, or yyyy-MM-dd#HH:mm:ss:SSS; -1 means the end of every queue.
        #[arg(short = 's', long = "timestamp", allow_hyphen_values = true)]
        timestamp: String,
    },
    /// Print a topic's messages (optionally by tag and store-time range).
    #[command(name = "printMsg")]
    PrintMsg {
        #[command(flatten)]
        ns: Namesrv,
        #[arg(short = 't', long = "topic")]
        topic: String,
        /// Tag expression: `*` or `a || b`.
        #[arg(short = 's', long = "subExpression", default_value = "*")]
        subscription: String,
        /// Earliest store time: ms, `now` or yyyy-MM-dd#HH:mm:ss:SSS.
        #[arg(short = 'b', long = "beginTimestamp")]
        begin: Option<String>,
        /// Latest store time: ms, `now` or yyyy-MM-dd#HH:mm:ss:SSS.
        #[arg(short = 'e', long = "endTimestamp")]
        end: Option<String>,
        /// Print bodies (as UTF-8).
        #[arg(short = 'd', long = "printBody", default_value_t = true, action = clap::ArgAction::Set)]
        print_body: bool,
    },
    /// Messages of a topic by business key (KEYS), through every broker's key index.
    #[command(name = "queryMsgByKey")]
    QueryMsgByKey {
        #[command(flatten)]
        ns: Namesrv,
        #[arg(short = 't', long = "topic")]
        topic: String,
        #[arg(short = 'k', long = "msgKey")]
        key: String,
        /// Earliest store time, ms since the epoch.
        #[arg(short = 'b', long = "beginTimestamp", default_value_t = 0)]
        begin_ms: i64,
        /// Latest store time, ms since the epoch (default: no limit).
        #[arg(short = 'e', long = "endTimestamp", default_value_t = i64::MAX)]
        end_ms: i64,
        /// At most this many per broker (at most 64).
        #[arg(short = 'm', long = "maxNum", default_value_t = 64)]
        max: usize,
    },
}

/// mqadmin's options with more than one letter after a single dash (`-bn`), spelt as their
/// long forms so that mqadmin's command lines parse.
pub fn mqadmin_args(args: impl IntoIterator<Item = std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    const LONG: &[(&str, &str)] = &[("-bn", "--brokerName")];
    let mut admin = false;
    args.into_iter()
        .map(|arg| {
            let long = LONG.iter().find(|(short, _)| arg == *short);
            match long {
                Some((_, long)) if admin => long.into(),
                _ => {
                    admin |= arg == "admin";
                    arg
                }
            }
        })
        .collect()
}

pub fn run(command: AdminCommand) -> anyhow::Result<()> {
    match command {
        AdminCommand::Config(command) => config::run(command)?,
        AdminCommand::UpdateTopic {
            ns,
            broker_addr,
            cluster_name,
            topic,
            read_queue_nums,
            write_queue_nums,
            perm,
            order,
            attributes,
        } => {
            let changes = attributes::parse_modification(attributes.as_deref().unwrap_or(""))
                .map_err(|e| anyhow::anyhow!("--attributes: {e}"))?;
            let config = TopicConfig {
                order,
                write_queue_nums,
                attributes: changes.into_iter().collect(),
                ..TopicConfig::new(&topic, read_queue_nums, perm)
            };
            topic::update(&ns.namesrv_addr, broker_addr, cluster_name, &config)?;
        }
        AdminCommand::TopicList { ns } => {
            for topic in Client::new(&ns.namesrv_addr).topic_list()? {
                println!("{topic}");
            }
        }
        AdminCommand::TopicRoute { ns, topic, list } => {
            topic::print_route(&ns.namesrv_addr, &topic, list)?
        }
        AdminCommand::ElectMaster {
            ns: _,
            controller: addr,
            broker_id,
            broker_name,
            cluster_name,
        } => controller::elect_master(&addr, &cluster_name, &broker_name, broker_id)?,
        AdminCommand::GetSyncStateSet {
            ns,
            controller: addr,
            cluster_name,
            broker_name,
        } => {
            let names = match (broker_name, cluster_name) {
                (Some(name), _) => vec![name],
                (None, cluster) => brokers::names_in_cluster(
                    &mut Client::new(&ns.namesrv_addr),
                    cluster.as_deref().unwrap_or_default(),
                )?,
            };
            controller::sync_state_set(&addr, &names)?;
        }
        AdminCommand::ClusterList { ns, cluster_name } => {
            brokers::print_cluster_list(&ns.namesrv_addr, cluster_name.as_deref())?
        }
        AdminCommand::SendMessage {
            ns,
            topic,
            body,
            keys,
            tags,
            broker_name,
            queue_id,
        } => {
            let mut client = Client::new(&ns.namesrv_addr);
            let msg = Message::new(
                Bytes::from(body),
                properties(tags.as_deref(), keys.as_deref(), &[]),
            );
            let route = client.route(&topic)?;
            let queue = match (broker_name, queue_id) {
                (Some(broker_name), Some(queue_id)) => MessageQueue {
                    topic: topic.clone(),
                    broker_name,
                    queue_id,
                },
                _ => {
                    let queues = route.publish_queues(&topic);
                    let Some(first) = queues.first() else {
                        bail!("no writable queue for topic {topic}")
                    };
                    first.clone()
                }
            };
            let addr = route
                .broker_addr(&queue.broker_name)
                .context("no master for the broker")?
                .to_string();
            let result = client.send_to(&addr, &queue, &msg)?;
            println!(
                "{:<32}{:<8}{:<16}#MsgId",
                "#Broker Name", "#QID", "#Send Result"
            );
            let status = if result.code == 0 {
                "SEND_OK"
            } else {
                "SEND_NOT_OK"
            };
            println!(
                "{:<32}{:<8}{:<16}{}",
                queue.broker_name, queue.queue_id, status, result.msg_id
            );
        }
        AdminCommand::ConsumeMessage {
            ns,
            topic,
            broker_name,
            queue_id,
            offset,
            group,
            count,
        } => {
            let mut client = Client::new(&ns.namesrv_addr);
            let route = client.route(&topic)?;
            let mut printed = 0;
            for queue in route.subscribe_queues(&topic) {
                if broker_name
                    .as_ref()
                    .is_some_and(|b| *b != queue.broker_name)
                    || queue_id.is_some_and(|q| q != queue.queue_id)
                {
                    continue;
                }
                let addr = route
                    .broker_addr(&queue.broker_name)
                    .context("no master for the broker")?
                    .to_string();
                let mut next = offset;
                while printed < count {
                    let request = PullRequest {
                        group: &group,
                        queue: &queue,
                        offset: next,
                        max: 32,
                        subscription: "*",
                        suspend: None,
                    };
                    let pulled = client.pull(&addr, &request)?;
                    if pulled.messages.is_empty() {
                        break;
                    }
                    for m in pulled.messages {
                        if printed >= count {
                            break;
                        }
                        println!(
                            "MSGID: {} Topic: {} Broker: {} QID: {} Offset: {} Tags: {} Keys: {} BODY: {}",
                            m.msg_id, m.topic, queue.broker_name, m.queue_id, m.queue_offset,
                            m.tags().unwrap_or(""), m.keys().unwrap_or(""), String::from_utf8_lossy(&m.body)
                        );
                        printed += 1;
                    }
                    next = pulled.next_begin_offset;
                }
            }
            println!("Consume ok, {printed} messages");
        }
        AdminCommand::ConsumerProgress { ns, group, topic } => {
            let mut client = Client::new(&ns.namesrv_addr);
            match group {
                Some(group) => progress::consumer_progress(&mut client, &group, topic.as_deref())?,
                None => progress::all_groups(&mut client)?,
            }
        }
        AdminCommand::UpdateSubGroup { ns, options } => {
            group::update(&ns.namesrv_addr, &options)?;
        }
        AdminCommand::DeleteSubGroup {
            ns,
            broker_addr,
            cluster_name,
            group,
            remove_offset,
        } => group::delete(
            &ns.namesrv_addr,
            broker_addr,
            cluster_name,
            &group,
            remove_offset,
        )?,
        AdminCommand::DeleteTopic {
            ns,
            topic,
            cluster_name,
            broker_addr,
        } => topic::delete(&ns.namesrv_addr, broker_addr, cluster_name, &topic)?,
        AdminCommand::ConsumerConnection {
            ns,
            group,
            broker_addr,
        } => group::consumer_connection(&ns.namesrv_addr, &group, broker_addr)?,
        AdminCommand::ProducerConnection { ns, group, topic } => {
            group::producer_connection(&ns.namesrv_addr, &group, &topic)?
        }
        AdminCommand::ResetOffsetByTime {
            ns,
            group,
            topic,
            timestamp,
        } => {
            let ms = progress::parse_time(&timestamp)?;
            progress::reset_by_time(&mut Client::new(&ns.namesrv_addr), &group, &topic, ms)?;
        }
        AdminCommand::QueryMsgById {
            ns,
            msg_id,
            topic,
            group,
        } => {
            query::by_id(
                &mut Client::new(&ns.namesrv_addr),
                &msg_id,
                topic.as_deref(),
                group.as_deref(),
            )?;
        }
        AdminCommand::PrintMsg {
            ns,
            topic,
            subscription,
            begin,
            end,
            print_body,
        } => {
            let time = |t: Option<String>| t.map(|t| progress::parse_time(&t)).transpose();
            let request = query::PrintRequest {
                topic: &topic,
                subscription: &subscription,
                begin_ms: time(begin)?,
                end_ms: time(end)?,
                print_body,
            };
            query::print_messages(&mut Client::new(&ns.namesrv_addr), &request)?;
        }
        AdminCommand::QueryMsgByKey {
            ns,
            topic,
            key,
            begin_ms,
            end_ms,
            max,
        } => {
            let query = crate::client::KeyQuery {
                topic: &topic,
                key: &key,
                max,
                begin_ms,
                end_ms,
                unique: false,
            };
            query::by_key(&mut Client::new(&ns.namesrv_addr), &query)?;
        }
        AdminCommand::QueryMsgByOffset {
            ns,
            topic,
            broker_name,
            queue_id,
            offset,
        } => {
            let queue = MessageQueue {
                topic,
                broker_name,
                queue_id,
            };
            query::by_offset(&mut Client::new(&ns.namesrv_addr), &queue, offset)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::mqadmin_args;

    fn spelt(args: &[&str]) -> Vec<String> {
        mqadmin_args(args.iter().map(Into::into))
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect()
    }

    #[test]
    fn mqadmins_multi_letter_options_become_long_ones_after_admin_only() {
        assert_eq!(
            spelt(&["petrel", "admin", "electMaster", "-bn", "b", "-b", "2"]),
            [
                "petrel",
                "admin",
                "electMaster",
                "--brokerName",
                "b",
                "-b",
                "2"
            ]
        );
        assert_eq!(
            spelt(&["petrel", "broker", "-bn"]),
            ["petrel", "broker", "-bn"]
        );
    }
}
