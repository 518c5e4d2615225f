//! HEART_BEAT (34), UNREGISTER_CLIENT (35) and GET_CONSUMER_LIST_BY_GROUP (38), spec §4.5–4.6.

use std::rc::Rc;

use bytes::Bytes;

use super::pull_message::ensure_group;
use crate::broker::clients::{ClientInfo, HeartbeatData};
use crate::broker::metadata::{perm, TopicConfig};
use crate::broker::Shard;
use crate::net::Connection;
use crate::remarks;
use crate::remoting::headers::Fields;
use crate::remoting::{response, RemotingCommand};

pub fn heart_beat(shard: &Shard, conn: &Rc<Connection>, cmd: &RemotingCommand) -> RemotingCommand {
    let data: HeartbeatData = match serde_json::from_slice(&cmd.body) {
        Ok(d) => d,
        Err(e) => {
            return RemotingCommand::response(response::SYSTEM_ERROR, cmd.opaque)
                .with_remark(format!("bad heartbeat body: {e}"))
        }
    };
    for consumer in &data.consumer_data_set {
        if ensure_group(shard, &consumer.group_name).is_none() {
            continue;
        }
        let retry_topic = format!("%RETRY%{}", consumer.group_name);
        let missing = shard.meta.borrow().topic(&retry_topic).is_none();
        if missing {
            shard.put_topic(TopicConfig::new(&retry_topic, 1, perm::READ_WRITE));
        }
    }
    let client = ClientInfo {
        language: cmd.language,
        version: cmd.version,
    };
    let changes = shard.clients.borrow_mut().heartbeat(conn, &data, client);
    for change in changes {
        log::debug!(
            "group {} changed (new member: {})",
            change.group,
            change.membership_changed
        );
        shard.notify_consumer_ids_changed(&change.group);
    }
    RemotingCommand::response(response::SUCCESS, cmd.opaque)
}

pub fn unregister_client(shard: &Shard, cmd: &RemotingCommand) -> RemotingCommand {
    let f = Fields(&cmd.ext_fields);
    let client_id = match f.str("clientID") {
        Ok(id) => id,
        Err(e) => {
            return RemotingCommand::response(response::SYSTEM_ERROR, cmd.opaque)
                .with_remark(e.to_string())
        }
    };
    let consumer_group = f.opt_str("consumerGroup");
    let changed = shard.clients.borrow_mut().unregister(
        client_id,
        f.opt_str("producerGroup"),
        consumer_group,
    );
    // A member that left its group no longer consumes: its queues are free at once.
    if let Some(group) = consumer_group {
        shard.locks.unlock_all(group, client_id);
    }
    for group in changed {
        shard.notify_consumer_ids_changed(&group);
    }
    RemotingCommand::response(response::SUCCESS, cmd.opaque)
}

pub fn consumer_list(shard: &Shard, cmd: &RemotingCommand) -> RemotingCommand {
    let group = match Fields(&cmd.ext_fields).str("consumerGroup") {
        Ok(g) => g,
        Err(e) => {
            return RemotingCommand::response(response::SYSTEM_ERROR, cmd.opaque)
                .with_remark(e.to_string())
        }
    };
    let ids = shard.clients.borrow().consumer_ids(group);
    if ids.is_empty() {
        return RemotingCommand::response(response::SYSTEM_ERROR, cmd.opaque)
            .with_remark(remarks::no_consumer_for_group(group));
    }
    let body = serde_json::json!({ "consumerIdList": ids });
    RemotingCommand::response(response::SUCCESS, cmd.opaque)
        .with_body(Bytes::from(body.to_string()))
}
