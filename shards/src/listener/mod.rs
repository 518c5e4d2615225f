//! Request handlers of a broker shard, grouped by feature, and the shard's accept loops.
//! `dispatch` is the one place a request code meets its handler; anything not listed gets
//! REQUEST_CODE_NOT_SUPPORTED, never silence.

pub mod admin_queries;
pub mod broker_status;
pub mod client_manage;
pub mod consume_stats;
pub mod consumer_offsets;
pub mod consumer_relay;
pub mod end_transaction;
pub mod front_door;
pub mod pull_message;
pub mod query_message;
pub mod rebalance_lock;
pub mod send_back;
pub mod send_message;
pub mod topic_admin;

use std::rc::Rc;

use crate::broker::Shard;
use crate::mesh::MeshError;
use crate::net::connection::{serve_connection, Handler};
use crate::net::Connection;
use crate::remarks;
use crate::remoting::{self, request, response, Decoded, RemotingCommand};

/// Runs one request on `shard`. Sends and pulls answer through the connection themselves
/// (after durability, or after a long poll); everything else answers here.
pub fn dispatch(shard: &Shard, conn: &Rc<Connection>, cmd: RemotingCommand) {
    if cmd.is_response() {
        // An answer to a broker-initiated request; for a oneway one nothing waits.
        conn.deliver(cmd);
        return;
    }
    if !shard.ha.is_master() && writes_the_log(cmd.code) {
        if !cmd.is_oneway() {
            let remark = if shard.ha.controller {
                remarks::not_the_elected_master(&shard.config.broker_name, shard.ha.epoch())
            } else {
                remarks::slave_refuses_writes(&shard.config.broker_name)
            };
            conn.send(
                &RemotingCommand::response(response::SERVICE_NOT_AVAILABLE, cmd.opaque)
                    .with_remark(remark),
            );
        }
        return;
    }
    // A full disk refuses writes before they take an offset (F29); reads go on.
    if let Some(remark) = writes_the_log(cmd.code)
        .then(|| shard.store.write_refusal())
        .flatten()
    {
        if !cmd.is_oneway() {
            conn.send(
                &RemotingCommand::response(response::SERVICE_NOT_AVAILABLE, cmd.opaque)
                    .with_remark(remark),
            );
        }
        return;
    }
    // Flow control (F33): while the disk does not keep up, new sends are refused as busy.
    if matches!(
        cmd.code,
        request::SEND_MESSAGE
            | request::SEND_MESSAGE_V2
            | request::SEND_BATCH_MESSAGE
            | request::CONSUMER_SEND_MSG_BACK
    ) {
        if let Some(remark) = shard.store.busy() {
            if !cmd.is_oneway() {
                conn.send(
                    &RemotingCommand::response(response::SYSTEM_BUSY, cmd.opaque)
                        .with_remark(remark),
                );
            }
            return;
        }
    }
    let reply = match cmd.code {
        request::SEND_MESSAGE | request::SEND_MESSAGE_V2 | request::SEND_BATCH_MESSAGE => {
            return send_message::handle(shard, conn, &cmd)
        }
        request::PULL_MESSAGE | request::LITE_PULL_MESSAGE => {
            return pull_message::handle(shard, conn, &cmd)
        }
        request::END_TRANSACTION => return end_transaction::handle(shard, conn, &cmd),
        request::HEART_BEAT => client_manage::heart_beat(shard, conn, &cmd),
        request::UNREGISTER_CLIENT => client_manage::unregister_client(shard, &cmd),
        request::GET_CONSUMER_LIST_BY_GROUP => client_manage::consumer_list(shard, &cmd),
        request::QUERY_CONSUMER_OFFSET => consumer_offsets::query(shard, &cmd),
        request::UPDATE_CONSUMER_OFFSET => consumer_offsets::update(shard, &cmd),
        request::GET_MAX_OFFSET => consumer_offsets::max_offset(shard, &cmd),
        request::GET_MIN_OFFSET => consumer_offsets::min_offset(shard, &cmd),
        request::SEARCH_OFFSET_BY_TIMESTAMP => consumer_offsets::search_by_timestamp(shard, &cmd),
        request::GET_EARLIEST_MSG_STORETIME => consumer_offsets::earliest_store_time(shard, &cmd),
        request::QUERY_MESSAGE => query_message::query_by_key(shard, &cmd),
        request::VIEW_MESSAGE_BY_ID => query_message::view_by_id(shard, &cmd),
        request::INVOKE_BROKER_TO_RESET_OFFSET => consumer_offsets::reset(shard, &cmd),
        request::GET_BROKER_RUNTIME_INFO => broker_status::runtime_info(shard, &cmd),
        request::GET_BROKER_CONFIG => crate::broker::broker_config::get(shard, &cmd),
        request::DELETE_EXPIRED_COMMITLOG => {
            log::warn!(
                "shard {}: deleteExpiredCommitLog: expired segments go now, whatever the hour",
                shard.config.shard_id
            );
            shard.store.disk.delete_expired_now();
            RemotingCommand::response(response::SUCCESS, cmd.opaque)
        }
        request::UPDATE_BROKER_CONFIG => {
            return crate::broker::broker_config::update(shard, conn, &cmd)
        }
        request::GET_CONSUME_STATS => consume_stats::consume_stats(shard, &cmd),
        request::CONSUMER_SEND_MSG_BACK => return send_back::handle(shard, conn, &cmd),
        request::LOCK_BATCH_MQ => return rebalance_lock::lock_batch(shard, conn, &cmd),
        request::UNLOCK_BATCH_MQ => rebalance_lock::unlock_batch(shard, &cmd),
        request::UPDATE_AND_CREATE_TOPIC => topic_admin::update_and_create_topic(shard, &cmd),
        request::GET_ALL_TOPIC_CONFIG => topic_admin::all_topic_config(shard, &cmd),
        request::UPDATE_AND_CREATE_SUBSCRIPTIONGROUP => {
            topic_admin::update_and_create_group(shard, &cmd)
        }
        request::DELETE_TOPIC_IN_BROKER => topic_admin::delete_topic(shard, &cmd),
        request::DELETE_SUBSCRIPTIONGROUP => topic_admin::delete_group(shard, &cmd),
        request::GET_CONSUMER_RUNNING_INFO => {
            return consumer_relay::running_info(shard, conn, &cmd)
        }
        request::INVOKE_BROKER_TO_GET_CONSUMER_STATUS => {
            return consumer_relay::consumer_status(shard, conn, &cmd)
        }
        request::GET_TOPIC_CONFIG => admin_queries::topic_config(shard, &cmd),
        request::GET_TOPIC_STATS_INFO => admin_queries::topic_stats(shard, &cmd),
        request::QUERY_TOPIC_CONSUME_BY_WHO => admin_queries::topic_consumed_by(shard, &cmd),
        request::QUERY_TOPICS_BY_CONSUMER => admin_queries::topics_of_group(shard, &cmd),
        request::GET_ALL_SUBSCRIPTIONGROUP_CONFIG => admin_queries::all_group_config(shard, &cmd),
        request::GET_SUBSCRIPTIONGROUP_CONFIG => admin_queries::group_config(shard, &cmd),
        request::VIEW_BROKER_STATS_DATA => admin_queries::view_stats(shard, &cmd),
        request::GET_CONSUMER_CONNECTION_LIST => topic_admin::consumer_connection(shard, &cmd),
        request::GET_PRODUCER_CONNECTION_LIST => topic_admin::producer_connection(shard, &cmd),
        other => {
            warn_unsupported_once(shard, other, conn);
            RemotingCommand::response(response::REQUEST_CODE_NOT_SUPPORTED, cmd.opaque)
                .with_remark(remarks::request_code_not_supported(other))
        }
    };
    if !cmd.is_oneway() {
        conn.send(&reply);
    }
}

/// Requests that append to the log, which a slave takes only from its master.
fn writes_the_log(code: i32) -> bool {
    matches!(
        code,
        request::SEND_MESSAGE
            | request::SEND_MESSAGE_V2
            | request::SEND_BATCH_MESSAGE
            | request::END_TRANSACTION
            | request::CONSUMER_SEND_MSG_BACK
    )
}

/// Runs `cmd` on shard `target`: here if it is this shard, else over the mesh.
pub async fn run_on(
    shard: &Shard,
    target: usize,
    cmd: &RemotingCommand,
) -> Result<RemotingCommand, MeshError> {
    match &shard.mesh {
        Some(mesh) if target != shard.config.shard_id => mesh.call(target, cmd).await,
        _ => {
            let conn = Connection::detached(shard.next_connection_id());
            dispatch(shard, &conn, cmd.clone());
            let frame = conn.take_reply(shard.store.log().durable()).await;
            match frame.map(|f| remoting::decode(&f, u32::MAX)) {
                Some(Ok(Decoded::Command { command, .. })) => Ok(command),
                _ => Err(MeshError::BadReply { shard: target }),
            }
        }
    }
}

/// A shard's own port: every request is this shard's.
pub struct ShardHandler(pub Rc<Shard>);

impl Handler for ShardHandler {
    async fn handle(&self, conn: &Rc<Connection>, cmd: RemotingCommand) {
        if !refused_by_acl(&self.0, conn, &cmd) {
            dispatch(&self.0, conn, cmd);
        }
    }

    fn on_close(&self, conn: &Rc<Connection>) {
        self.0.connection_closed(conn);
    }
}

/// With `aclEnable`, a client request the rules refuse is answered NO_PERMISSION with the
/// reason, and goes no further. Requests between shards come over the mesh, not through here.
pub fn refused_by_acl(shard: &Shard, conn: &Connection, cmd: &RemotingCommand) -> bool {
    let Some(acl) = &shard.acl else {
        return false;
    };
    if cmd.is_response() {
        return false;
    }
    match acl.current().check(conn.peer.ip(), cmd) {
        Ok(()) => false,
        Err(reason) => {
            log::debug!(
                "shard {}: refused request code {} from {}: {reason}",
                shard.config.shard_id,
                cmd.code,
                conn.peer
            );
            if !cmd.is_oneway() {
                conn.send(
                    &RemotingCommand::response(response::NO_PERMISSION, cmd.opaque)
                        .with_remark(reason),
                );
            }
            true
        }
    }
}

/// Accepts connections on `listener` until the task is dropped.
pub async fn accept_loop<H: Handler + 'static>(
    shard: Rc<Shard>,
    listener: glommio::net::TcpListener,
    handler: Rc<H>,
) {
    let limits = shard.config.connection;
    let mut refused = 0u64;
    let mut failures =
        crate::net::listener::AcceptFailures::new(format!("shard {}", shard.config.shard_id));
    loop {
        match listener.accept().await {
            Ok(stream) if shard.open_connections.get() >= limits.shard_connections_max => {
                // Over the cap (clientConnectionsMax): closed at once, before any read.
                refused += 1;
                if refused.is_power_of_two() {
                    log::warn!(
                        "shard {}: {} connections open, the most clientConnectionsMax allows this shard; closing new ones ({refused} so far)",
                        shard.config.shard_id,
                        limits.shard_connections_max
                    );
                }
                let _ = stream.shutdown(std::net::Shutdown::Both).await;
                drop(stream);
            }
            Ok(stream) => {
                let id = shard.next_connection_id();
                let durable = Some((shard.store.log().durable_rc(), shard.send_latency.clone()));
                let (shard, handler) = (shard.clone(), handler.clone());
                shard.open_connections.set(shard.open_connections.get() + 1);
                glommio::spawn_local(async move {
                    serve_connection(stream, id, handler, durable, limits).await;
                    shard.open_connections.set(shard.open_connections.get() - 1);
                })
                .detach();
            }
            Err(e) => failures.pause(&e).await,
        }
    }
}

thread_local! {
    /// Request codes this shard (its thread) answered "not supported" to already.
    static UNSUPPORTED_SEEN: std::cell::RefCell<std::collections::HashSet<i32>> =
        Default::default();
}

/// One warning per request code a shard does not serve, naming the code and who asked first.
fn warn_unsupported_once(shard: &Shard, code: i32, conn: &Connection) {
    if UNSUPPORTED_SEEN.with(|seen| seen.borrow_mut().insert(code)) {
        log::warn!(
            "shard {}: request code {code} from {} is not supported (answered REQUEST_CODE_NOT_SUPPORTED; said once per code)",
            shard.config.shard_id,
            conn.peer
        );
    }
}
