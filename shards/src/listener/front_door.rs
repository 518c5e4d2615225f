//! The process's front door (`listenPort`, served by shard 0): requests here speak for the
//! whole broker process. UPDATE_AND_CREATE_TOPIC splits the queues across the shards,
//! UPDATE_AND_CREATE_SUBSCRIPTIONGROUP, DELETE_SUBSCRIPTIONGROUP, DELETE_TOPIC_IN_BROKER and
//! DELETE_EXPIRED_COMMITLOG
//! reach every shard, and GET_ALL_TOPIC_CONFIG gathers every shard's table, all over the mesh;
//! every other request is shard 0's own.

use std::collections::BTreeMap;
use std::rc::Rc;

use bytes::Bytes;

use super::{dispatch, run_on, topic_admin};
use crate::broker::metadata::{TopicConfig, TopicTable};
use crate::broker::{shard_broker_name, Shard};
use crate::net::connection::Handler;
use crate::net::Connection;
use crate::remoting::{request, response, RemotingCommand};

pub struct FrontDoor(pub Rc<Shard>);

/// Queues shard `i` of `n` gets when a topic of `total` queues is split: as even as possible,
/// lower shards first, so a one-queue topic lives on shard 0.
pub fn split_queues(total: i32, shard: usize, shards: usize) -> i32 {
    let n = shards as i32;
    total / n + i32::from((shard as i32) < total % n)
}

impl Handler for FrontDoor {
    async fn handle(&self, conn: &Rc<Connection>, cmd: RemotingCommand) {
        let shard = &self.0;
        if cmd.is_response() || super::refused_by_acl(shard, conn, &cmd) {
            return;
        }
        let reply = match cmd.code {
            request::UPDATE_AND_CREATE_TOPIC => create_topic(shard, &cmd).await,
            request::GET_ALL_TOPIC_CONFIG => all_topic_config(shard, &cmd).await,
            request::UPDATE_AND_CREATE_SUBSCRIPTIONGROUP
            | request::DELETE_SUBSCRIPTIONGROUP
            | request::DELETE_EXPIRED_COMMITLOG => on_every_shard(shard, &cmd).await,
            request::DELETE_TOPIC_IN_BROKER => {
                // Every shard is asked first, so a refusal anywhere deletes nothing.
                let mut check = cmd.clone();
                check.ext_fields.insert("checkOnly", "true");
                let checked = on_every_shard(shard, &check).await;
                if checked.code == response::SUCCESS {
                    on_every_shard(shard, &cmd).await
                } else {
                    checked
                }
            }
            _ => return dispatch(shard, conn, cmd),
        };
        if !cmd.is_oneway() {
            conn.send(&reply);
        }
    }

    fn on_close(&self, conn: &Rc<Connection>) {
        self.0.connection_closed(conn);
    }
}

async fn create_topic(shard: &Shard, cmd: &RemotingCommand) -> RemotingCommand {
    let topic = match topic_admin::parse_topic(cmd) {
        Ok(t) => t,
        Err(reply) => return reply,
    };
    let shards = shard.config.shard_count;
    let layout: Vec<String> = (0..shards)
        .map(|i| (i, split_queues(topic.write_queue_nums, i, shards)))
        .filter(|&(_, n)| n > 0)
        .map(|(i, n)| {
            let name = shard_broker_name(&shard.config.process_broker_name, i);
            format!("{name}:{n}")
        })
        .collect();
    let parts = (0..shards).filter_map(|i| {
        let read = split_queues(topic.read_queue_nums, i, shards);
        let write = split_queues(topic.write_queue_nums, i, shards);
        if read == 0 && write == 0 {
            return None;
        }
        let mut part = cmd.clone();
        part.ext_fields.insert("readQueueNums", read.to_string());
        part.ext_fields.insert("writeQueueNums", write.to_string());
        Some((i, part))
    });
    let reply = run_each(shard, cmd.opaque, parts.collect()).await;
    if reply.code != response::SUCCESS {
        return reply;
    }
    reply.with_field("queueLayout", layout.join(";"))
}

/// Runs `cmd` on every shard (group configuration lives on each).
async fn on_every_shard(shard: &Shard, cmd: &RemotingCommand) -> RemotingCommand {
    let parts = (0..shard.config.shard_count)
        .map(|i| (i, cmd.clone()))
        .collect();
    run_each(shard, cmd.opaque, parts).await
}

/// Runs each (shard, command) in turn; the first failure is the answer, else SUCCESS.
async fn run_each(
    shard: &Shard,
    opaque: i32,
    parts: Vec<(usize, RemotingCommand)>,
) -> RemotingCommand {
    for (i, part) in parts {
        match run_on(shard, i, &part).await {
            Ok(reply) if reply.code == response::SUCCESS => {}
            Ok(reply) => return RemotingCommand { opaque, ..reply },
            Err(e) => {
                return RemotingCommand::response(response::SYSTEM_ERROR, opaque)
                    .with_remark(e.to_string())
            }
        }
    }
    RemotingCommand::response(response::SUCCESS, opaque)
}

async fn all_topic_config(shard: &Shard, cmd: &RemotingCommand) -> RemotingCommand {
    let mut merged: BTreeMap<String, TopicConfig> = BTreeMap::new();
    let mut version = Default::default();
    for i in 0..shard.config.shard_count {
        let reply = match run_on(shard, i, cmd).await {
            Ok(r) => r,
            Err(e) => {
                return RemotingCommand::response(response::SYSTEM_ERROR, cmd.opaque)
                    .with_remark(e.to_string())
            }
        };
        let Ok(table) = serde_json::from_slice::<TopicTable>(&reply.body) else {
            return RemotingCommand::response(response::SYSTEM_ERROR, cmd.opaque)
                .with_remark(format!("shard {i} sent a bad topic table"));
        };
        if i == 0 {
            version = table.data_version;
        }
        for (name, config) in table.topic_config_table {
            merged
                .entry(name)
                .and_modify(|m| {
                    m.read_queue_nums += config.read_queue_nums;
                    m.write_queue_nums += config.write_queue_nums;
                })
                .or_insert(config);
        }
    }
    let table = TopicTable {
        data_version: version,
        topic_config_table: merged,
        deleted_topics: Default::default(),
    };
    let body = serde_json::to_vec(&table).expect("topic table serializes");
    RemotingCommand::response(response::SUCCESS, cmd.opaque).with_body(Bytes::from(body))
}

#[cfg(test)]
mod tests {
    use super::split_queues;

    #[test]
    fn queues_split_evenly_with_lower_shards_first() {
        assert_eq!(
            (0..2).map(|i| split_queues(8, i, 2)).collect::<Vec<_>>(),
            vec![4, 4]
        );
        assert_eq!(
            (0..3).map(|i| split_queues(8, i, 3)).collect::<Vec<_>>(),
            vec![3, 3, 2]
        );
        assert_eq!(
            (0..2).map(|i| split_queues(1, i, 2)).collect::<Vec<_>>(),
            vec![1, 0]
        );
    }
}
