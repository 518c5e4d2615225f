//! Registration with every name server (F1): at start, every `registerNameServerPeriod`
//! (30 s), and at once after a topic change; UNREGISTER_BROKER on shutdown (spec §4.12).

use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;

use super::metadata::TopicTable;
use super::Shard;
use crate::remoting::{request, response, ExtFields, RemotingCommand};

const REGISTER_TIMEOUT: Duration = Duration::from_secs(6);

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RegisterBrokerBody<'a> {
    filter_server_list: [String; 0],
    topic_config_serialize_wrapper: &'a TopicTable,
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
    let body = {
        let meta = shard.meta.borrow();
        let wrapper = RegisterBrokerBody {
            filter_server_list: [],
            topic_config_serialize_wrapper: &meta.topics,
        };
        Bytes::from(serde_json::to_vec(&wrapper).expect("register body serializes"))
    };
    let mut ext = header(shard);
    ext.insert("compressed", "false");
    for addr in &shard.config.namesrv_addrs {
        let cmd = RemotingCommand::request(request::REGISTER_BROKER, ext.clone(), body.clone());
        match shard.rpc.call(addr, cmd, REGISTER_TIMEOUT).await {
            Ok(r) if r.code == response::SUCCESS => {
                if let Some(ha) = r.field("haServerAddr").filter(|a| !a.is_empty()) {
                    shard.learn_master(ha);
                }
            }
            Ok(r) => log::warn!("register with {addr}: code {} {:?}", r.code, r.remark),
            Err(e) => log::warn!("register with {addr}: {e}"),
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
