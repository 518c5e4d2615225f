//! The name server (F1): brokers register with it, clients ask it for routes. Almost
//! stateless: routes live in memory and are rebuilt from registrations. Runs on one glommio
//! executor of its own (`namesrv`), unpinned: it is tiny and must not steal a shard's core.

pub mod consensus;
pub mod control;
pub mod controller;
pub mod kv;
pub mod live_config;
pub mod raft_log;
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
use petrel_shards::acl::{AclConfig, AclWatch};
use petrel_shards::net::connection::{serve_connection, ConnectionLimits, Handler};
use petrel_shards::net::listener::into_glommio;
use petrel_shards::net::Connection;
use petrel_shards::remarks;
use petrel_shards::remoting::headers::{Fields, HeaderError};
use petrel_shards::remoting::{request, response, RemotingCommand};
use petrel_shards::runtime::watermark::Signal;
use routes::{RegisterBrokerBody, Registration, Routes, BROKER_EXPIRY};

use consensus::{Consensus, Membership};
use control::ControllerState;
use controller::Controller;
use raft_log::RaftLog;
use std::path::PathBuf;

/// How often dead brokers are looked for (`scanNotActiveBrokerInterval`).
const EXPIRY_SCAN: Duration = Duration::from_secs(5);
/// How often the controller looks for replicas past their heartbeat timeout.
const CONTROLLER_SCAN: Duration = Duration::from_millis(250);

pub struct NameServer {
    routes: RefCell<Routes>,
    kv: RefCell<KvConfig>,
    kv_changed: Signal,
    /// What GET_NAMESRV_CONFIG shows and UPDATE_NAMESRV_CONFIG changes.
    config: live_config::LiveConfig,
    config_changed: Signal,
    controller: Option<ControllerState>,
    /// Connection ids, unique across the client and the peers' listeners: a closing
    /// connection takes the brokers and replicas heard on it.
    last_connection_id: std::cell::Cell<u64>,
    /// `aclEnable`: what changes routes, the KV store or the controller's state must be
    /// signed by an admin account.
    acl: Option<Rc<AclWatch>>,
}

impl NameServer {
    /// With `aclEnable`, why `cmd` is refused, if it is: requests that change what the name
    /// server holds need an admin account; reads (routes, cluster, topics, KV) are open, as
    /// every client needs them to find brokers. Raft messages between controllers are not
    /// checked.
    fn refused_by_acl(&self, conn: &Connection, cmd: &RemotingCommand) -> Option<String> {
        let acl = self.acl.as_ref()?;
        let changes_state = matches!(
            cmd.code,
            request::REGISTER_BROKER
                | request::UNREGISTER_BROKER
                | request::DELETE_TOPIC_IN_NAMESRV
                | request::PUT_KV_CONFIG
                | request::DELETE_KV_CONFIG
                | request::BROKER_HEARTBEAT
                | request::CONTROLLER_ELECT_MASTER
                | request::UPDATE_NAMESRV_CONFIG
        );
        if !changes_state {
            return None;
        }
        acl.current().check_admin(conn.peer.ip(), cmd).err()
    }

    /// The controller, on a name server that runs one.
    fn control(&self) -> &ControllerState {
        self.controller.as_ref().expect("the controller runs here")
    }

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
            part: (
                f.opt_i64("petrelRegistrationPart")?.unwrap_or(0).max(0) as u32,
                f.opt_i64("petrelRegistrationParts")?.unwrap_or(1).max(1) as u32,
            ),
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
                if self.config.order_message_enable.get() {
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
            request::GET_NAMESRV_CONFIG => {
                Ok(RemotingCommand::response(response::SUCCESS, cmd.opaque)
                    .with_body(Bytes::from(self.config.text())))
            }
            request::UPDATE_NAMESRV_CONFIG => Ok(match self.config.update(&cmd.body) {
                Ok(applied) => {
                    log::info!("namesrv: config changed at runtime: {applied:?}");
                    self.config_changed.raise();
                    RemotingCommand::response(response::SUCCESS, cmd.opaque)
                }
                Err(e) => RemotingCommand::response(response::SYSTEM_ERROR, cmd.opaque)
                    .with_remark(format!("updateNamesrvConfig: {e}")),
            }),
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
        if let Some(reason) = self.0.refused_by_acl(conn, &cmd) {
            log::debug!(
                "namesrv: refused request code {} from {}: {reason}",
                cmd.code,
                conn.peer
            );
            if !cmd.is_oneway() {
                conn.send(
                    &RemotingCommand::response(response::NO_PERMISSION, cmd.opaque)
                        .with_remark(reason),
                );
            }
            return;
        }
        let reply = match cmd.code {
            request::BROKER_HEARTBEAT
            | request::CONTROLLER_ELECT_MASTER
            | request::CONTROLLER_GET_REPLICA_INFO
            | request::CONTROLLER_GET_METADATA_INFO
            | request::CONTROLLER_GET_SYNC_STATE_DATA
            | request::CONTROLLER_RAFT_MESSAGE => match &self.0.controller {
                Some(c) => c.request(conn, &cmd).await,
                None => RemotingCommand::response(response::REQUEST_CODE_NOT_SUPPORTED, cmd.opaque)
                    .with_remark(format!(
                        "request code {}: the controller does not run on this name server (enableControllerInNamesrv=false)",
                        cmd.code
                    )),
            },
            _ => self.0.answer(conn, &cmd),
        };
        if !cmd.is_oneway() {
            conn.send(&reply);
        }
    }

    fn on_close(&self, conn: &Rc<Connection>) {
        self.0.routes.borrow_mut().connection_closed(conn.id);
        if let Some(c) = &self.0.controller {
            c.connection_closed(conn.id);
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
    /// What GET_NAMESRV_CONFIG (mqadmin getNamesrvConfig) answers.
    pub properties: Vec<(String, String)>,
    /// The keys changed at runtime before (already in `properties`), and their file.
    pub changed: Vec<(String, String)>,
    pub changed_path: PathBuf,
    /// `enableControllerInNamesrv`: the controller and its Raft log.
    pub controller: Option<ControllerStart>,
    /// `aclEnable`: the rules of `aclFile`.
    pub acl: Option<AclConfig>,
}

/// What a controller starts from; the Raft node itself is made on the name server's thread.
pub struct ControllerStart {
    pub controller: Controller,
    pub membership: Membership,
    /// `controller-raft.json` as read (empty: none yet), where it is written, and the state
    /// a new log starts from.
    pub log: Vec<u8>,
    pub path: PathBuf,
    pub seed: Vec<u8>,
    /// Bound to this controller's `controllerDLegerPeers` address, when it has peers.
    pub peer_listener: Option<OwnedFd>,
}

impl ControllerStart {
    fn open(self, namesrv_port: u16) -> Result<(ControllerState, Option<OwnedFd>), String> {
        let voters = self.membership.members.iter().map(|m| m.0).collect();
        let log = RaftLog::load(&self.log, voters, self.seed)
            .map_err(|e| format!("{}: {e}", self.path.display()))?;
        let raft = Consensus::new(self.membership, log, self.path)?;
        raft.set_namesrv_port(namesrv_port);
        Ok((
            ControllerState::new(self.controller, raft)?,
            self.peer_listener,
        ))
    }
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
    let listener = into_glommio(start.listener);
    let namesrv_port = listener.local_addr().map_or(0, |a| a.port());
    let (controller, peer_listener) = match start.controller.map(|c| c.open(namesrv_port)) {
        Some(Ok((c, peers))) => (Some(c), peers),
        Some(Err(e)) => {
            let _ = start
                .ready
                .send((NAMESRV_READY_ID, Err(format!("controller: {e}"))));
            return;
        }
        None => (None, None),
    };
    let server = Rc::new(NameServer {
        routes: RefCell::new(Routes::default()),
        kv: RefCell::new(start.kv),
        kv_changed: Signal::default(),
        config: live_config::LiveConfig::new(
            start.properties,
            start.changed,
            start.changed_path,
            start.order_message_enable,
        ),
        config_changed: Signal::default(),
        controller,
        last_connection_id: std::cell::Cell::new(0),
        acl: start.acl.map(|c| Rc::new(AclWatch::new(c))),
    });
    if let Some(acl) = &server.acl {
        glommio::spawn_local(acl.clone().run(NAMESRV_READY_ID, Duration::from_secs(2))).detach();
    }
    let handler = Rc::new(NameServerHandler(server.clone()));
    let limits = start.connection;
    let mut controller_tasks = Vec::new();
    if let Some(c) = &server.controller {
        // Each task holds the server; its controller is there for as long as it runs.
        let task = |job: fn(Rc<NameServer>, u64) -> futures_lite::future::BoxedLocal<()>,
                    id: u64| { glommio::spawn_local(job(server.clone(), id)) };
        controller_tasks.push(task(
            |s, _| Box::pin(async move { s.control().run().await }),
            0,
        ));
        controller_tasks.push(task(
            |s, _| Box::pin(async move { s.control().run_expiry(CONTROLLER_SCAN).await }),
            0,
        ));
        for id in c.raft.peer_ids() {
            controller_tasks.push(task(
                |s, id| Box::pin(async move { s.control().raft.run_sender(id).await }),
                id,
            ));
        }
        if let Some(fd) = peer_listener {
            controller_tasks.push(glommio::spawn_local(accept(
                into_glommio(fd),
                handler.clone(),
                limits,
            )));
        }
    }
    let config_writer = {
        let server = server.clone();
        glommio::spawn_local(async move {
            loop {
                server.config_changed.wait().await;
                let (path, bytes) = server.config.snapshot();
                if let Err(e) =
                    petrel_shards::store::atomic_file::write_off_shard(path.clone(), bytes).await
                {
                    log::error!("namesrv: writing {} failed: {e}", path.display());
                }
            }
        })
    };
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
    let accept = glommio::spawn_local(accept(listener, handler, limits));
    let _ = start.ready.send((NAMESRV_READY_ID, Ok(())));
    // SAFETY: `shutdown` is an owned end of a Unix socket pair; ownership passes to the stream.
    let mut stop = unsafe { glommio::net::UnixStream::from_raw_fd(start.shutdown.into_raw_fd()) };
    let _ = stop.read(&mut [0u8; 1]).await;
    drop(accept);
    drop(expiry);
    drop(kv_writer);
    drop(config_writer);
    drop(controller_tasks);
    log::info!("namesrv: stopped");
}

/// Serves every connection `listener` accepts with `handler`.
async fn accept(
    listener: glommio::net::TcpListener,
    handler: Rc<NameServerHandler>,
    limits: ConnectionLimits,
) {
    let ids = &handler.0.last_connection_id;
    let mut failures = petrel_shards::net::listener::AcceptFailures::new("namesrv");
    loop {
        match listener.accept().await {
            Ok(stream) => {
                ids.set(ids.get() + 1);
                glommio::spawn_local(serve_connection(
                    stream,
                    ids.get(),
                    handler.clone(),
                    None,
                    limits,
                ))
                .detach();
            }
            Err(e) => failures.pause(&e).await,
        }
    }
}
