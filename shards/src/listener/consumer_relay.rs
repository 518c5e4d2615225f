//! Admin questions only a consumer can answer, relayed by the broker it is connected to:
//! GET_CONSUMER_RUNNING_INFO (307, mqadmin `consumerStatus`, the dashboard's client view):
//! the request goes to the client's connection, and its answer (within 10 s, like RocketMQ's
//! `Broker2Client.callClient`) back to the admin as it came. INVOKE_BROKER_TO_GET_CONSUMER_STATUS
//! (223, mqadmin `getConsumerStatus`): every member (or the one named) is asked
//! GET_CONSUMER_STATUS_FROM_CLIENT (221) for the offsets it holds, within 5 s each, and the
//! answers are gathered by client id.

use std::rc::Rc;
use std::time::Duration;

use crate::broker::Shard;
use crate::net::Connection;
use crate::remoting::fastjson::object_member;
use crate::remoting::headers::Fields;
use crate::remoting::{request, response, ExtFields, RemotingCommand};

/// How long a relayed request waits for the client (RocketMQ's 10 s).
const CALL_CLIENT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long each member has to tell its offsets (RocketMQ's 5 s).
const STATUS_TIMEOUT: Duration = Duration::from_secs(5);

pub fn running_info(shard: &Shard, conn: &Rc<Connection>, cmd: &RemotingCommand) {
    let fail = |remark: String| {
        RemotingCommand::response(response::SYSTEM_ERROR, cmd.opaque).with_remark(remark)
    };
    let f = Fields(&cmd.ext_fields);
    let (group, client_id) = match (f.str("consumerGroup"), f.str("clientId")) {
        (Ok(g), Ok(c)) => (g.to_string(), c.to_string()),
        (Err(e), _) | (_, Err(e)) => return conn.send(&fail(e.to_string())),
    };
    let Some(client) = shard.clients.borrow().consumer_channel(&group, &client_id) else {
        return conn.send(&fail(format!(
            "The Consumer <{group}> <{client_id}> not online"
        )));
    };
    let forward = RemotingCommand::request(
        request::GET_CONSUMER_RUNNING_INFO,
        cmd.ext_fields.clone(),
        cmd.body.clone(),
    );
    let (conn, opaque) = (conn.clone(), cmd.opaque);
    glommio::spawn_local(async move {
        let reply = match client.call_client(forward, CALL_CLIENT_TIMEOUT).await {
            Some(mut answer) => {
                answer.opaque = opaque;
                answer
            }
            None => RemotingCommand::response(response::SYSTEM_ERROR, opaque).with_remark(format!(
                "invoke consumer <{group}> <{client_id}> Exception: no answer within {}s",
                CALL_CLIENT_TIMEOUT.as_secs()
            )),
        };
        conn.send(&reply);
    })
    .detach();
}

pub fn consumer_status(shard: &Shard, conn: &Rc<Connection>, cmd: &RemotingCommand) {
    let fail = |remark: String| {
        RemotingCommand::response(response::SYSTEM_ERROR, cmd.opaque).with_remark(remark)
    };
    let f = Fields(&cmd.ext_fields);
    let (topic, group) = match (f.str("topic"), f.str("group")) {
        (Ok(t), Ok(g)) => (t.to_string(), g.to_string()),
        (Err(e), _) | (_, Err(e)) => return conn.send(&fail(e.to_string())),
    };
    // The admin API's `originClientId`, in the header's `clientAddr`: one member only.
    let only = f.opt_str("clientAddr").filter(|c| !c.is_empty());
    let members: Vec<(String, Rc<Connection>)> = shard
        .clients
        .borrow()
        .consumer_members(&group)
        .into_iter()
        .filter(|(id, _)| only.is_none_or(|o| o == id))
        .collect();
    if members.is_empty() {
        return conn.send(&fail(format!(
            "No Any Consumer online in the consumer group: [{group}]"
        )));
    }
    let mut fields = ExtFields::default();
    fields.insert("topic".to_string(), topic);
    fields.insert("group".to_string(), group.clone());
    let (conn, opaque) = (conn.clone(), cmd.opaque);
    // Every member is asked at once: a slow one does not use up the others' time.
    let asked: Vec<_> = members
        .into_iter()
        .map(|(client_id, member)| {
            let ask = RemotingCommand::request(
                request::GET_CONSUMER_STATUS_FROM_CLIENT,
                fields.clone(),
                bytes::Bytes::new(),
            );
            let answer =
                glommio::spawn_local(async move { member.call_client(ask, STATUS_TIMEOUT).await });
            (client_id, answer)
        })
        .collect();
    glommio::spawn_local(async move {
        let mut table = String::new();
        for (client_id, answer) in asked {
            let Some(answer) = answer.await else {
                log::warn!("getConsumerStatus: {client_id} of {group} did not answer within 5 s");
                continue;
            };
            let body = std::str::from_utf8(&answer.body).unwrap_or_default();
            let Some(offsets) = (answer.code == response::SUCCESS)
                .then(|| object_member(body, "messageQueueTable"))
                .flatten()
            else {
                log::warn!(
                    "getConsumerStatus: {client_id} of {group} answered code {} without offsets",
                    answer.code
                );
                continue;
            };
            if !table.is_empty() {
                table.push(',');
            }
            let id = serde_json::to_string(&client_id).expect("a string serializes");
            table.push_str(&format!("{id}:{offsets}"));
        }
        let body = format!("{{\"consumerTable\":{{{table}}},\"messageQueueTable\":{{}}}}");
        conn.send(
            &RemotingCommand::response(response::SUCCESS, opaque)
                .with_body(body.into_bytes().into()),
        );
    })
    .detach();
}
