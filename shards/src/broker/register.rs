//! Registration with every name server (F1): at start, every `registerNameServerPeriod`
//! (30 s), and at once after a topic change; UNREGISTER_BROKER on shutdown (spec §4.12).

use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;

use super::metadata::{DataVersion, TopicConfig, TopicTable};
use super::Shard;
use crate::remoting::{request, response, ExtFields, RemotingCommand};

const REGISTER_TIMEOUT: Duration = Duration::from_secs(6);

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RegisterBrokerBody<'a> {
    filter_server_list: [String; 0],
    topic_config_serialize_wrapper: Wrapper<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Wrapper<'a> {
    data_version: DataVersion,
    topic_config_table: BTreeMap<&'a str, &'a TopicConfig>,
}

/// The registration bodies of a round: the topics in parts of at most `split` each, so that
/// a broker with many topics never sends a frame too large to take (RocketMQ's
/// `splitRegistrationSize`). A broker without topics still sends one.
fn bodies(topics: &TopicTable, split: usize) -> Vec<Bytes> {
    let all: Vec<(&str, &TopicConfig)> = topics
        .topic_config_table
        .iter()
        .map(|(name, config)| (name.as_str(), config))
        .collect();
    let chunks: Vec<&[(&str, &TopicConfig)]> = if all.is_empty() {
        vec![&[]]
    } else {
        all.chunks(split.max(1)).collect()
    };
    chunks
        .into_iter()
        .map(|chunk| {
            let body = RegisterBrokerBody {
                filter_server_list: [],
                topic_config_serialize_wrapper: Wrapper {
                    data_version: topics.data_version,
                    topic_config_table: chunk.iter().copied().collect(),
                },
            };
            Bytes::from(serde_json::to_vec(&body).expect("register body serializes"))
        })
        .collect()
}

fn header(shard: &Shard) -> ExtFields {
    let mut ext = ExtFields::new();
    let addr = shard.config.advertised_addr.to_string();
    ext.insert("brokerName", &shard.config.broker_name);
    ext.insert("brokerAddr", &addr);
    ext.insert("clusterName", &shard.config.cluster_name);
    let replication = &shard.config.replication;
    ext.insert(
        "haServerAddr",
        replication.ha_addr.as_deref().unwrap_or(&addr),
    );
    ext.insert("brokerId", shard.ha.registered_id().to_string());
    // Not in RocketMQ's header (its name servers ignore it): lets ours tell a registration
    // sent before a change of master from one sent after it.
    ext.insert("epoch", shard.ha.epoch().to_string());
    ext
}

async fn register_once(shard: &Shard) {
    let bodies = bodies(
        &shard.meta.borrow().topics,
        shard.config.split_registration_size,
    );
    let mut ext = header(shard);
    ext.insert("compressed", "false");
    ext.insert("petrelRegistrationParts", bodies.len().to_string());
    for addr in &shard.config.namesrv_addrs {
        for (part, body) in bodies.iter().enumerate() {
            let mut ext = ext.clone();
            ext.insert("petrelRegistrationPart", part.to_string());
            let cmd = RemotingCommand::request(request::REGISTER_BROKER, ext, body.clone());
            match shard.rpc.call(addr, cmd, REGISTER_TIMEOUT).await {
                Ok(r) if r.code == response::SUCCESS => {
                    if let Some(ha) = r.field("haServerAddr").filter(|a| !a.is_empty()) {
                        shard.learn_master(ha);
                    }
                }
                Ok(r) => {
                    log::warn!("register with {addr}: code {} {:?}", r.code, r.remark);
                    break;
                }
                Err(e) => {
                    log::warn!("register with {addr}: {e}");
                    break;
                }
            }
        }
    }
}

pub async fn run(shard: Rc<Shard>) {
    loop {
        register_once(&shard).await;
        let wake = shard.register_now.wait();
        let _ = glommio::timer::timeout(shard.config.register_interval, async {
            wake.await;
            Ok(())
        })
        .await;
    }
}

pub async fn unregister(shard: &Shard) {
    for addr in &shard.config.namesrv_addrs {
        let cmd = RemotingCommand::request(request::UNREGISTER_BROKER, header(shard), Bytes::new());
        if let Err(e) = shard.rpc.call(addr, cmd, Duration::from_secs(2)).await {
            log::warn!("unregister from {addr}: {e}");
        }
    }
}
