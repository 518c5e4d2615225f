//! LOCK_BATCH_MQ (41) and UNLOCK_BATCH_MQ (42), spec §4.10: the queue locks orderly consumers
//! hold while they consume.

use std::rc::Rc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::broker::locks::MessageQueue;
use crate::broker::Shard;
use crate::net::Connection;
use crate::remoting::{response, RemotingCommand};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LockBatchRequest {
    consumer_group: String,
    client_id: String,
    #[serde(default)]
    mq_set: Vec<MessageQueue>,
}

#[derive(Serialize)]
struct LockBatchResponse {
    #[serde(rename = "lockOKMQSet")]
    lock_ok_mq_set: Vec<MessageQueue>,
}

fn parse(cmd: &RemotingCommand) -> Result<LockBatchRequest, RemotingCommand> {
    serde_json::from_slice(&cmd.body).map_err(|e| {
        RemotingCommand::response(response::SYSTEM_ERROR, cmd.opaque)
            .with_remark(format!("bad lock request body: {e}"))
    })
}

/// Answered through the connection: a reply that reports a newly granted queue leaves only
/// once the grant is on disk (see `broker::locks`).
pub fn lock_batch(shard: &Shard, conn: &Rc<Connection>, cmd: &RemotingCommand) {
    let req = match parse(cmd) {
        Ok(r) => r,
        Err(reply) => return conn.send(&reply),
    };
    let opaque = cmd.opaque;
    shard.locks.lock(
        &req.consumer_group,
        &req.client_id,
        &req.mq_set,
        Some(conn).filter(|_| !cmd.is_oneway()),
        |held| {
            let body = serde_json::to_vec(&LockBatchResponse {
                lock_ok_mq_set: held,
            })
            .expect("lock response serializes");
            RemotingCommand::response(response::SUCCESS, opaque).with_body(Bytes::from(body))
        },
    );
}

pub fn unlock_batch(shard: &Shard, cmd: &RemotingCommand) -> RemotingCommand {
    let req = match parse(cmd) {
        Ok(r) => r,
        Err(reply) => return reply,
    };
    shard
        .locks
        .unlock(&req.consumer_group, &req.client_id, &req.mq_set);
    RemotingCommand::response(response::SUCCESS, cmd.opaque)
}
