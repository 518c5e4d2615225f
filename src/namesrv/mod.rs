//! The name server (F1): brokers register with it, clients ask it for routes. Almost
//! stateless: routes live in memory and are rebuilt from registrations. Runs on one glommio
//! executor of its own (`namesrv`), unpinned: it is tiny and must not steal a shard's core.

pub mod controller;
pub mod kv;
pub mod routes;

use std::cell::RefCell;
use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};
use std::rc::Rc;
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_lite::AsyncReadExt;
use glommio::{LocalExecutorBuilder, Placement};
use kv::{KvConfig, ORDER_TOPIC_CONFIG};
use petrel_shards::net::connection::{serve_connection, ConnectionLimits, Handler};
use petrel_shards::net::listener::into_glommio;
use petrel_shards::net::Connection;
use petrel_shards::remarks;
use petrel_shards::remoting::headers::{Fields, HeaderError};
use petrel_shards::remoting::{request, response, RemotingCommand};
use petrel_shards::runtime::watermark::Signal;
use petrel_shards::runtime::watermark::Watermark;
use routes::{RegisterBrokerBody, Registration, Routes, BROKER_EXPIRY};

use controller::{Answer, Controller, Heartbeat};
use std::path::PathBuf;

/// How often dead brokers are looked for (`scanNotActiveBrokerInterval`).
const EXPIRY_SCAN: Duration = Duration::from_secs(5);
/// How often the controller looks for replicas past their heartbeat timeout.
const CONTROLLER_SCAN: Duration = Duration::from_millis(250);

pub struct NameServer {
    routes: RefCell<Routes>,
    kv: RefCell<KvConfig>,
    kv_changed: Signal,
    order_message_enable: bool,
    controller: Option<ControllerState>,
}

/// The controller and the file its state is kept in.
struct ControllerState {
    state: RefCell<Controller>,
    path: PathBuf,
    /// Rises to the controller version last written to `path`.
    persisted: Watermark,
    changed: Signal,
}

impl ControllerState {
    /// Waits until what the controller holds now is on disk.
    async fn durable(&self) {
        loop {
            let version = self.state.borrow().version();
            if self.persisted.get() >= version {
                return;
            }
            self.changed.raise();
            let _ = self.persisted.wait_for(version).await;
        }
    }

    /// Writes the state whenever it changed; a failed write is retried every second, and
    /// answers wait for it.
    async fn run_writer(&self) {
        loop {
            self.changed.wait().await;
            let (version, bytes) = self.state.borrow().snapshot();
            if self.persisted.get() >= version {
                continue;
            }
            match petrel_shards::store::atomic_file::write_off_shard(self.path.clone(), bytes).await
            {
                Ok(()) => self.persisted.advance(version),
                Err(e) => {
                    log::error!("controller: writing {} failed: {e}", self.path.display());
                    glommio::timer::sleep(Duration::from_secs(1)).await;
                    self.changed.raise();
                }
            }
        }
    }
}

impl NameServer {
    fn register(
        &self,
        conn: &Rc<Connection>,
        cmd: &RemotingCommand,
    ) -> Result<RemotingCommand, HeaderError> {
        let f = Fields(&cmd.ext_fields);
        let reg = Registration {
            cluster: f.str("clusterName")?.to_string(),
            broker_name: f.str("brokerName")?.to_string(),
            broker_addr: f.str("brokerAddr")?.to_string(),
            broker_id: f.i64("brokerId")?,
            ha_server_addr: f.opt_str("haServerAddr").unwrap_or_default().to_string(),
            epoch: f.opt_i64("epoch")?.unwrap_or(0).max(0) as u64,
            timeout: f
                .opt_i64("heartbeatTimeoutMillis")?
                .map_or(BROKER_EXPIRY, |ms| {
                    Duration::from_millis(ms.max(1000) as u64)
                }),
            connection_id: conn.id,
        };
        let body: RegisterBrokerBody = if cmd.body.is_empty() {
            RegisterBrokerBody::default()
        } else {
            match serde_json::from_slice(&cmd.body) {
                Ok(b) => b,
                Err(e) => {
                    return Ok(
                        RemotingCommand::response(response::SYSTEM_ERROR, cmd.opaque)
                            .with_remark(format!("bad RegisterBrokerBody: {e}")),
                    )
                }
            }
        };
        let topics = &body.topic_config_serialize_wrapper.topic_config_table;
        let mut routes = self.routes.borrow_mut();
        let taken = routes.register(&reg, topics, Instant::now());
        // A slave learns its master here, as RocketMQ's does; so does a stale master.
        let (master, ha) = match routes.master_of(&reg.broker_name) {
            Some((addr, ha)) if reg.broker_id != 0 || !taken => (addr.to_string(), ha.to_string()),
            _ => (String::new(), String::new()),
        };
        Ok(RemotingCommand::response(response::SUCCESS, cmd.opaque)
            .with_field("haServerAddr", ha)
            .with_field("masterAddr", master))
    }

    fn unregister(&self, cmd: &RemotingCommand) -> Result<RemotingCommand, HeaderError> {
        let addr = Fields(&cmd.ext_fields).str("brokerAddr")?;
        self.routes.borrow_mut().remove_addr(addr);
        Ok(RemotingCommand::response(response::SUCCESS, cmd.opaque))
    }

    fn route(&self, cmd: &RemotingCommand) -> Result<RemotingCommand, HeaderError> {
        let topic = Fields(&cmd.ext_fields).str("topic")?;
        let routes = self.routes.borrow();
        Ok(match routes.route(topic) {
            Some(mut route) => {
                let kv = self.kv.borrow();
                if self.order_message_enable {
                    route.order_topic_conf = kv.get(ORDER_TOPIC_CONFIG, topic);
                }
                ok_json(cmd, &route)
            }
            None => RemotingCommand::response(response::TOPIC_NOT_EXIST, cmd.opaque).with_remark(
                format!("No topic route info in name server for the topic: {topic}"),
            ),
        })
    }

    fn put_kv(&self, cmd: &RemotingCommand) -> Result<RemotingCommand, HeaderError> {
        let f = Fields(&cmd.ext_fields);
        let (namespace, key, value) = (f.str("namespace")?, f.str("key")?, f.str("value")?);
        self.kv.borrow_mut().put(namespace, key, value);
        self.kv_changed.raise();
        log::info!("namesrv: kv {namespace}/{key} = {value}");
        Ok(RemotingCommand::response(response::SUCCESS, cmd.opaque))
    }

    fn get_kv(&self, cmd: &RemotingCommand) -> Result<RemotingCommand, HeaderError> {
        let f = Fields(&cmd.ext_fields);
        let (namespace, key) = (f.str("namespace")?, f.str("key")?);
        Ok(match self.kv.borrow().get(namespace, key) {
            Some(value) => {
                RemotingCommand::response(response::SUCCESS, cmd.opaque).with_field("value", value)
            }
            None => RemotingCommand::response(response::QUERY_NOT_FOUND, cmd.opaque)
                .with_remark(format!("No config item, Namespace: {namespace} Key: {key}")),
        })
    }

    fn delete_kv(&self, cmd: &RemotingCommand) -> Result<RemotingCommand, HeaderError> {
        let f = Fields(&cmd.ext_fields);
        if self
            .kv
            .borrow_mut()
            .delete(f.str("namespace")?, f.str("key")?)
        {
            self.kv_changed.raise();
        }
        Ok(RemotingCommand::response(response::SUCCESS, cmd.opaque))
    }

    fn kv_list(&self, cmd: &RemotingCommand) -> Result<RemotingCommand, HeaderError> {
        let namespace = Fields(&cmd.ext_fields).str("namespace")?;
        Ok(match self.kv.borrow().namespace(namespace) {
            Some(table) => ok_json(cmd, &serde_json::json!({ "table": table })),
            None => RemotingCommand::response(response::QUERY_NOT_FOUND, cmd.opaque)
                .with_remark(format!("No config item, Namespace: {namespace}")),
        })
    }

    /// BROKER_HEARTBEAT, CONTROLLER_ELECT_MASTER, CONTROLLER_GET_REPLICA_INFO and
    /// CONTROLLER_GET_SYNC_STATE_DATA: answered once the controller's state they reflect is on
    /// disk. CONTROLLER_GET_METADATA_INFO names this controller as the leader.
    async fn controller_request(
        &self,
        conn: &Rc<Connection>,
        cmd: &RemotingCommand,
    ) -> RemotingCommand {
        let Some(c) = &self.controller else {
            return RemotingCommand::response(response::REQUEST_CODE_NOT_SUPPORTED, cmd.opaque)
                .with_remark(format!(
                    "request code {}: the controller does not run on this name server (enableControllerInNamesrv=false)",
                    cmd.code
                ));
        };
        if cmd.code == request::CONTROLLER_GET_METADATA_INFO {
            // One controller, and it is this one, at the address the asker reached.
            let me = conn.local.to_string();
            return RemotingCommand::response(response::SUCCESS, cmd.opaque)
                .with_field("group", "petrel-controller".to_string())
                .with_field("controllerLeaderId", "0".to_string())
                .with_field("controllerLeaderAddress", me.clone())
                .with_field("isLeader", "true".to_string())
                .with_field("peers", me);
        }
        let f = Fields(&cmd.ext_fields);
        let outcome = match cmd.code {
            request::BROKER_HEARTBEAT => match parse_heartbeat(&f, conn.id) {
                Ok(hb) => {
                    c.state.borrow_mut().heartbeat(&hb, Instant::now());
                    Ok(Some(hb.broker_name))
                }
                Err(e) => Err((response::SYSTEM_ERROR, e.to_string())),
            },
            request::CONTROLLER_ELECT_MASTER => match parse_election(&f) {
                Ok((name, designated)) => {
                    let elected = c.state.borrow_mut().elect_master(&name, designated);
                    elected.map(|_| Some(name)).map_err(|e| {
                        log::warn!("controller: electMaster refused: {e}");
                        (response::CONTROLLER_ELECT_MASTER_FAILED, e)
                    })
                }
                Err(e) => Err((response::SYSTEM_ERROR, e.to_string())),
            },
            request::CONTROLLER_GET_REPLICA_INFO => f
                .str("brokerName")
                .map(|name| Some(name.to_string()))
                .map_err(|e| (response::SYSTEM_ERROR, e.to_string())),
            _ => Ok(None),
        };
        let name = match outcome {
            Ok(name) => name,
            Err((code, remark)) => {
                return RemotingCommand::response(code, cmd.opaque).with_remark(remark)
            }
        };
        c.durable().await;
        let state = c.state.borrow();
        match name {
            Some(name) => {
                let reply = answer_fields(
                    RemotingCommand::response(response::SUCCESS, cmd.opaque),
                    &state.answer(&name),
                    state
                        .groups()
                        .get(&name)
                        .map_or(0, |g| g.sync_state_set_epoch),
                );
                if cmd.code == request::CONTROLLER_ELECT_MASTER {
                    reply.with_body(json_body(&member_group(&state, &name)))
                } else {
                    reply
                }
            }
            None => match requested_names(&cmd.body) {
                Ok(names) => ok_json(cmd, &sync_state_data(&state, names.as_deref())),
                Err(e) => {
                    RemotingCommand::response(response::SYSTEM_ERROR, cmd.opaque).with_remark(e)
                }
            },
        }
    }

    fn answer(&self, conn: &Rc<Connection>, cmd: &RemotingCommand) -> RemotingCommand {
        let result = match cmd.code {
            request::REGISTER_BROKER => self.register(conn, cmd),
            request::UNREGISTER_BROKER => self.unregister(cmd),
            request::GET_ROUTEINFO_BY_TOPIC => self.route(cmd),
            request::GET_BROKER_CLUSTER_INFO => {
                Ok(ok_json(cmd, &self.routes.borrow().cluster_info()))
            }
            request::GET_ALL_TOPIC_LIST_FROM_NAMESERVER => Ok(ok_json(
                cmd,
                &serde_json::json!({ "topicList": self.routes.borrow().topic_names() }),
            )),
            request::DELETE_TOPIC_IN_NAMESRV => {
                let f = Fields(&cmd.ext_fields);
                f.str("topic").map(|topic| {
                    let cluster = f.opt_str("clusterName").filter(|c| !c.is_empty());
                    self.routes.borrow_mut().delete_topic(topic, cluster);
                    RemotingCommand::response(response::SUCCESS, cmd.opaque)
                })
            }
            request::PUT_KV_CONFIG => self.put_kv(cmd),
            request::GET_KV_CONFIG => self.get_kv(cmd),
            request::DELETE_KV_CONFIG => self.delete_kv(cmd),
            request::GET_KVLIST_BY_NAMESPACE => self.kv_list(cmd),
            other => Ok(RemotingCommand::response(
                response::REQUEST_CODE_NOT_SUPPORTED,
                cmd.opaque,
            )
            .with_remark(remarks::request_code_not_supported(other))),
        };
        result.unwrap_or_else(|e| {
            RemotingCommand::response(response::SYSTEM_ERROR, cmd.opaque).with_remark(e.to_string())
        })
    }
}

/// CONTROLLER_ELECT_MASTER: the group, and the replica to elect if one is designated.
fn parse_election(f: &Fields<'_>) -> Result<(String, Option<i64>), HeaderError> {
    let name = f.str("brokerName")?.to_string();
    let designated = f.opt_i64("brokerId")?.filter(|id| *id >= 0);
    let designate = f.opt_str("designateElect") != Some("false");
    Ok((name, designated.filter(|_| designate)))
}

fn parse_heartbeat(f: &Fields<'_>, connection_id: u64) -> Result<Heartbeat, HeaderError> {
    let proposed = match f.opt_str("syncStateSet") {
        Some(csv) => Some(
            petrel_shards::replication::controller::parse_ids(csv).map_err(|_| {
                HeaderError::NotNumber {
                    field: "syncStateSet",
                    value: csv.to_string(),
                }
            })?,
        ),
        None => None,
    };
    Ok(Heartbeat {
        cluster: f.str("clusterName")?.to_string(),
        broker_name: f.str("brokerName")?.to_string(),
        broker_id: f.i64("brokerId")?,
        addr: f.str("brokerAddr")?.to_string(),
        ha_addr: f.opt_str("haServerAddr").unwrap_or_default().to_string(),
        epoch: f.opt_i64("epoch")?.unwrap_or(0).max(0) as u64,
        log_end: f.opt_i64("maxOffset")?.unwrap_or(0).max(0) as u64,
        proposed_sync_set: proposed,
        timeout: Duration::from_millis(
            f.opt_i64("heartbeatTimeoutMills")?.unwrap_or(3000).max(500) as u64,
        ),
        connection_id,
    })
}

fn answer_fields(reply: RemotingCommand, answer: &Answer, sync_epoch: u64) -> RemotingCommand {
    reply
        .with_field("masterBrokerId", answer.master.unwrap_or(-1).to_string())
        .with_field("masterAddress", answer.master_addr.clone())
        .with_field("masterHaAddress", answer.master_ha_addr.clone())
        .with_field("masterEpoch", answer.epoch.to_string())
        .with_field("syncStateSetEpoch", sync_epoch.to_string())
        .with_field(
            "syncStateSet",
            petrel_shards::replication::controller::format_ids(&answer.sync_state_set),
        )
}

/// CONTROLLER_GET_SYNC_STATE_DATA's body: a JSON list of group names, or nothing for all.
fn requested_names(body: &[u8]) -> Result<Option<Vec<String>>, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice::<Vec<String>>(body)
        .map(Some)
        .map_err(|e| format!("the body must be a JSON list of broker names: {e}"))
}

/// A group's live replicas by brokerId (BrokerMemberGroup, electMaster's answer body).
fn member_group(state: &Controller, name: &str) -> serde_json::Value {
    let addrs: serde_json::Map<_, _> = state
        .live_replicas(name)
        .into_iter()
        .map(|(id, addr, _)| (id.to_string(), serde_json::json!(addr)))
        .collect();
    serde_json::json!({
        "cluster": state.groups().get(name).map(|g| g.cluster.clone()).unwrap_or_default(),
        "brokerName": name,
        "brokerAddrs": addrs,
    })
}

/// The master, epoch and replicas in and out of sync of the groups in `names` (all when
/// `None`): mqadmin getSyncStateSet's BrokerReplicasInfo.
fn sync_state_data(state: &Controller, names: Option<&[String]>) -> serde_json::Value {
    let mut table = serde_json::Map::new();
    for (name, group) in state.groups() {
        if names.is_some_and(|names| !names.contains(name)) {
            continue;
        }
        let live = state.live_replicas(name);
        let replica = |id: &i64, addr: &str| serde_json::json!({ "brokerName": name, "brokerId": id, "brokerAddress": addr, "alive": live.iter().any(|(l, _, _)| l == id) });
        let addr_of = |id: &i64| {
            live.iter()
                .find(|(l, _, _)| l == id)
                .map(|(_, a, _)| a.clone())
                .unwrap_or_default()
        };
        let in_sync: Vec<_> = group
            .sync_state_set
            .iter()
            .map(|id| replica(id, &addr_of(id)))
            .collect();
        let not_in_sync: Vec<_> = live
            .iter()
            .filter(|(id, _, _)| !group.sync_state_set.contains(id))
            .map(|(id, addr, _)| replica(id, addr))
            .collect();
        table.insert(
            name.clone(),
            serde_json::json!({
                "clusterName": group.cluster,
                "masterBrokerId": group.master.unwrap_or(-1),
                "masterAddress": group.master.map(|m| addr_of(&m)).unwrap_or_default(),
                "masterEpoch": group.epoch,
                "syncStateSetEpoch": group.sync_state_set_epoch,
                "inSyncReplicas": in_sync,
                "notInSyncReplicas": not_in_sync,
                "logEnds": live.iter().map(|(id, _, end)| (id.to_string(), serde_json::json!(end))).collect::<serde_json::Map<_, _>>(),
            }),
        );
    }
    serde_json::json!({ "replicasInfoTable": table })
}

fn json_body(body: &impl serde::Serialize) -> Bytes {
    Bytes::from(serde_json::to_vec(body).expect("route tables serialize"))
}

fn ok_json(cmd: &RemotingCommand, body: &impl serde::Serialize) -> RemotingCommand {
    RemotingCommand::response(response::SUCCESS, cmd.opaque).with_body(json_body(body))
}

struct NameServerHandler(Rc<NameServer>);

impl Handler for NameServerHandler {
    async fn handle(&self, conn: &Rc<Connection>, cmd: RemotingCommand) {
        if cmd.is_response() {
            return;
        }
        let reply = match cmd.code {
            request::BROKER_HEARTBEAT
            | request::CONTROLLER_ELECT_MASTER
            | request::CONTROLLER_GET_REPLICA_INFO
            | request::CONTROLLER_GET_METADATA_INFO
            | request::CONTROLLER_GET_SYNC_STATE_DATA => {
                self.0.controller_request(conn, &cmd).await
            }
            _ => self.0.answer(conn, &cmd),
        };
        if !cmd.is_oneway() {
            conn.send(&reply);
        }
    }

    fn on_close(&self, conn: &Rc<Connection>) {
        self.0.routes.borrow_mut().connection_closed(conn.id);
        if let Some(c) = &self.0.controller {
            c.state.borrow_mut().connection_closed(conn.id);
            c.changed.raise();
        }
    }
}

pub struct NamesrvStart {
    pub listener: OwnedFd,
    pub shutdown: OwnedFd,
    pub ready: Sender<(usize, Result<(), String>)>,
    pub connection: ConnectionLimits,
    /// `kvConfigPath`, already read.
    pub kv: KvConfig,
    /// `orderMessageEnable`: routes carry `orderTopicConf`.
    pub order_message_enable: bool,
    /// `enableControllerInNamesrv`: the controller, loaded from its file.
    pub controller: Option<(Controller, PathBuf)>,
}

/// The id the name server reports on the ready channel (shards use 0..n).
pub const NAMESRV_READY_ID: usize = usize::MAX;

pub fn spawn(start: NamesrvStart) -> std::io::Result<glommio::ExecutorJoinHandle<()>> {
    LocalExecutorBuilder::new(Placement::Unbound)
        .name("namesrv")
        .io_memory(128 << 10)
        .spawn(move || serve(start))
        .map_err(|e| std::io::Error::other(e.to_string()))
}

async fn serve(start: NamesrvStart) {
    let server = Rc::new(NameServer {
        routes: RefCell::new(Routes::default()),
        kv: RefCell::new(start.kv),
        kv_changed: Signal::default(),
        order_message_enable: start.order_message_enable,
        controller: start.controller.map(|(state, path)| ControllerState {
            state: RefCell::new(state),
            path,
            persisted: Watermark::new(0),
            changed: Signal::default(),
        }),
    });
    let controller_tasks = server.controller.is_some().then(|| {
        let writer = {
            let server = server.clone();
            glommio::spawn_local(async move {
                server
                    .controller
                    .as_ref()
                    .expect("controller")
                    .run_writer()
                    .await
            })
        };
        let scanner = {
            let server = server.clone();
            glommio::spawn_local(async move {
                let c = server.controller.as_ref().expect("controller");
                loop {
                    glommio::timer::sleep(CONTROLLER_SCAN).await;
                    c.state.borrow_mut().expire(Instant::now());
                    c.changed.raise();
                }
            })
        };
        (writer, scanner)
    });
    let kv_writer = {
        let server = server.clone();
        glommio::spawn_local(async move {
            loop {
                server.kv_changed.wait().await;
                let (path, bytes) = server.kv.borrow().snapshot();
                if let Err(e) =
                    petrel_shards::store::atomic_file::write_off_shard(path.clone(), bytes).await
                {
                    log::error!("namesrv: writing {} failed: {e}", path.display());
                }
            }
        })
    };
    let expiry = {
        let server = server.clone();
        glommio::spawn_local(async move {
            loop {
                glommio::timer::sleep(EXPIRY_SCAN).await;
                server.routes.borrow_mut().expire(Instant::now());
            }
        })
    };
    let listener = into_glommio(start.listener);
    let limits = start.connection;
    let accept = {
        let handler = Rc::new(NameServerHandler(server.clone()));
        glommio::spawn_local(async move {
            let mut next_id = 0u64;
            loop {
                match listener.accept().await {
                    Ok(stream) => {
                        next_id += 1;
                        glommio::spawn_local(serve_connection(
                            stream,
                            next_id,
                            handler.clone(),
                            None,
                            limits,
                        ))
                        .detach();
                    }
                    Err(e) => {
                        log::warn!("namesrv: accept failed: {e}");
                        glommio::timer::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
        })
    };
    let _ = start.ready.send((NAMESRV_READY_ID, Ok(())));
    // SAFETY: `shutdown` is an owned end of a Unix socket pair; ownership passes to the stream.
    let mut stop = unsafe { glommio::net::UnixStream::from_raw_fd(start.shutdown.into_raw_fd()) };
    let _ = stop.read(&mut [0u8; 1]).await;
    drop(accept);
    drop(expiry);
    drop(kv_writer);
    drop(controller_tasks);
    log::info!("namesrv: stopped");
}
