//! Admin questions only a consumer can answer, relayed by the broker it is connected to:
//! GET_CONSUMER_RUNNING_INFO (307, mqadmin `consumerStatus`, the dashboard's client view).
//! The broker forwards the request to the client's connection, waits for its answer like
//! RocketMQ's `Broker2Client.callClient` (10 s), and returns it to the admin as it came.

use std::rc::Rc;
use std::time::Duration;

use crate::broker::Shard;
use crate::net::Connection;
use crate::remoting::headers::Fields;
use crate::remoting::{request, response, RemotingCommand};

/// How long a relayed request waits for the client (RocketMQ's 10 s).
const CALL_CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

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
