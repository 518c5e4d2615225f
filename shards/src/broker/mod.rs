//! A broker shard: one core's logical broker (`<brokerName>-s<i>` in routes, DESIGN.md §3).
//! It owns its store, its topic and group tables, the clients connected to it and the pulls it
//! holds; it listens on its own port, and shard 0 also serves the process's front door.
//!
//! Built on its executor thread and never moved. Background tasks: the store writer, the
//! ASYNC_FLUSH flusher, name-server registration every 30 s (and at once on topic changes),
//! client expiry, long-poll expiry, delayed delivery every 100 ms, transaction check-back
//! every `transactionCheckInterval`, persistence of offsets, delay progress and
//! transaction state every 5 s, and of queue locks whenever one changes hands.

pub mod attributes;
pub mod broker_config;
pub mod clients;
pub mod holds;
pub mod locks;
pub mod metadata;
pub mod metrics;
mod register;
pub mod schedule;
pub mod stats;
pub mod throttle;
mod topics;
pub mod transaction;

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::commitlog::FlushDiskType;
use crate::mesh::Mesh;
use crate::net::connection::ConnectionLimits;
use crate::net::rpc_client::RpcClient;
use crate::net::Connection;
use crate::remoting::{request, RemotingCommand};
use crate::runtime::watermark::Signal;
use crate::store::Store;
use clients::Clients;
use holds::Holds;
use metadata::{Metadata, TopicConfig};

/// What a shard needs to know; built from `broker.conf` by the process.
#[derive(Debug, Clone)]
pub struct ShardConfig {
    pub shard_id: usize,
    pub shard_count: usize,
    /// This shard's broker name in routes: `shard_broker_name(process_broker_name, shard_id)`.
    pub broker_name: String,
    /// `brokerName` of the process.
    pub process_broker_name: String,
    pub cluster_name: String,
    /// `ip:port` clients reach this shard at; also the store host in records.
    pub advertised_addr: SocketAddr,
    pub namesrv_addrs: Vec<String>,
    pub store_dir: std::path::PathBuf,
    pub segment_bytes: u64,
    pub flush: FlushDiskType,
    pub flush_interval: Duration,
    pub max_message_size: usize,
    pub auto_create_topic_enable: bool,
    pub auto_create_subscription_group: bool,
    pub default_topic_queue_nums: i32,
    pub region_id: String,
    pub trace_topic_enable: bool,
    pub register_interval: Duration,
    /// Frame size limit, partial-frame deadline and idle timeout of client connections.
    pub connection: ConnectionLimits,
    pub long_polling_enable: bool,
    pub short_polling_time: Duration,
    /// `messageDelayLevel`: the delay of level 1, 2, ….
    pub delay_levels: Vec<Duration>,
    pub transactions: transaction::TransactionConfig,
    /// `messageIndexEnable`, `maxHashSlotNum`, `maxIndexNum`.
    pub index: crate::index::IndexConfig,
    /// `rebalanceLockMaxLiveTime`: how long a queue lock lives after its last refresh.
    pub lock_max_live: Duration,
    /// `accessMessageInMemoryMaxRatio`: the percent of RAM a consumer may read behind the
    /// log's end and still count as caught up.
    pub in_memory_ratio_percent: u64,
    /// `brokerRole`, `brokerId`, `haMasterAddress`, and the HA address registered.
    pub replication: crate::replication::ReplicationConfig,
    /// `fileReservedTime`, `deleteWhen`, `diskMaxUsedSpaceRatio` and the other disk ratios.
    pub retention: crate::store::retention::RetentionConfig,
    /// `waitTimeMillsInSendQueue`, `sendThreadPoolQueueCapacity`, `sendQueueMaxBytes`.
    pub flow: crate::store::flow::FlowConfig,
    /// TPS limits per topic and group (F34).
    pub tps: throttle::TpsConfig,
    /// `topicCountMax` (Petrel's): topics one shard holds at most.
    pub topic_count_max: usize,
    /// `splitRegistrationSize`: topics per REGISTER_BROKER request.
    pub split_registration_size: usize,
    /// Every broker.conf key with its value at start-up (GET_BROKER_CONFIG).
    pub broker_properties: Vec<(String, String)>,
    /// `aclEnable`: the rules of `aclFile`, checked on every client request.
    pub acl: Option<crate::acl::AclConfig>,
    /// `innerClientAuthenticationCredentials`: what the broker signs its own requests to name
    /// servers and controllers with.
    pub inner_credentials: Option<crate::acl::Credentials>,
    /// `metricsExporterType=PROM`: where the shard sends its figures.
    pub metrics: Option<std::sync::mpsc::Sender<metrics::ShardMetrics>>,
}

/// Memory that idle connections and finished work gave back sits in malloc's free lists
/// until it is trimmed: every two seconds, whole free pages go back to the system (one shard
/// does it for the process).
async fn run_memory_trim() {
    loop {
        glommio::timer::sleep(Duration::from_secs(2)).await;
        // SAFETY: malloc_trim only releases memory malloc holds free; it is thread-safe.
        unsafe { libc::malloc_trim(0) };
    }
}

/// The broker name shard `i` of a process named `process` has in routes.
pub fn shard_broker_name(process: &str, i: usize) -> String {
    format!("{process}-s{i}")
}

pub struct Shard {
    pub config: ShardConfig,
    pub store: Rc<Store>,
    pub meta: RefCell<Metadata>,
    pub clients: RefCell<Clients>,
    pub holds: RefCell<Holds>,
    pub locks: locks::DurableLocks,
    /// Producer groups that sent to each topic, so a topic with a live producer is not
    /// deleted (F36).
    publishers: RefCell<std::collections::HashMap<String, Vec<String>>>,
    pub mesh: Option<Rc<Mesh>>,
    /// A low-share task queue for work no client waits on (replication streams).
    pub background: glommio::TaskQueueHandle,
    pub delay: schedule::DelayProgress,
    pub transactions: transaction::Transactions,
    pub(crate) rpc: RpcClient,
    /// The shard's replication role, epochs and the master it follows.
    pub ha: crate::replication::role::Ha,
    register_now: Signal,
    metadata_changed: Signal,
    next_connection_id: Cell<u64>,
    next_queue: Cell<u32>,
    next_uniq: Cell<u32>,
    /// Bytes of the log within which a message counts as "in memory" (RocketMQ's
    /// `accessMessageInMemoryMaxRatio`, 40 % of RAM by default): for QUERY_CONSUMER_OFFSET,
    /// and a pull reading further behind counts as slow (`slaveReadEnable`).
    pub in_memory_window_bytes: u64,
    persisted_metadata: Cell<(i64, i64)>,
    /// Messages served to pulls since start (RocketMQ's `msgGetTotalTodayNow`).
    pub messages_got: Cell<u64>,
    /// Puts and gets per topic and group over the last minute, hour and day.
    pub stats: RefCell<stats::Stats>,
    /// The process's configuration, and the keys that change while running.
    pub broker_config: Rc<broker_config::BrokerConfig>,
    /// Client connections open on this shard's listeners.
    pub open_connections: Cell<usize>,
    /// Stored writes from arrival to answer, and pulls answered at once (metrics).
    pub send_latency: Rc<crate::runtime::latency::Latency>,
    pub pull_latency: crate::runtime::latency::Latency,
    pub throttle: throttle::Throttle,
    /// This shard's copy of the ACL rules, when `aclEnable` is on.
    pub acl: Option<Rc<crate::acl::AclWatch>>,
}

impl Shard {
    #[allow(
        clippy::too_many_arguments,
        reason = "each is state loaded from the store at start-up"
    )]
    pub fn new(
        config: ShardConfig,
        store: Rc<Store>,
        meta: Metadata,
        mesh: Option<Rc<Mesh>>,
        delay: schedule::DelayProgress,
        transactions: transaction::Transactions,
        locks: locks::DurableLocks,
        epochs: crate::replication::epochs::Epochs,
    ) -> Rc<Shard> {
        use crate::replication::role::{Ha, Role};
        let replication = &config.replication;
        let role = if replication.controller.is_some() || replication.role.is_slave() {
            Role::Slave
        } else {
            Role::Master
        };
        let ha = Ha::new(
            replication.controller.is_some(),
            replication.broker_id,
            role,
            epochs,
        );
        let in_memory_window_bytes = physical_memory_bytes() / 100 * config.in_memory_ratio_percent;
        let broker_config = Rc::new(broker_config::BrokerConfig::new(&config));
        Rc::new(Shard {
            throttle: throttle::Throttle::new(config.tps, config.shard_count),
            acl: config
                .acl
                .clone()
                .map(|c| Rc::new(crate::acl::AclWatch::new(c))),
            rpc: RpcClient::signing(config.inner_credentials.clone()),
            broker_config,
            open_connections: Cell::new(0),
            send_latency: Rc::default(),
            pull_latency: Default::default(),
            config,
            store,
            delay,
            transactions,
            meta: RefCell::new(meta),
            clients: RefCell::new(Clients::default()),
            holds: RefCell::new(Holds::default()),
            locks,
            publishers: RefCell::new(Default::default()),
            mesh,
            background: glommio::executor().create_task_queue(
                glommio::Shares::Static(250),
                glommio::Latency::NotImportant,
                "background",
            ),
            ha,
            register_now: Signal::default(),
            metadata_changed: Signal::default(),
            next_connection_id: Cell::new(0),
            next_queue: Cell::new(0),
            next_uniq: Cell::new(0),
            in_memory_window_bytes,
            persisted_metadata: Cell::new((-1, -1)),
            messages_got: Cell::new(0),
            stats: RefCell::default(),
        })
    }

    pub fn next_connection_id(&self) -> u64 {
        let id = self.next_connection_id.get();
        self.next_connection_id.set(id + 1);
        id
    }

    /// A sequence number for UNIQ_KEYs the broker generates.
    pub fn next_uniq_sequence(&self) -> u32 {
        let n = self.next_uniq.get();
        self.next_uniq.set(n.wrapping_add(1));
        n
    }

    /// A writable queue picked round-robin, for sends that leave the choice to the broker.
    pub fn pick_queue(&self, write_queue_nums: i32) -> i32 {
        let n = self.next_queue.get();
        self.next_queue.set(n.wrapping_add(1));
        (n % write_queue_nums.max(1) as u32) as i32
    }

    /// A slave notes the master HA address a name server gave at registration (the
    /// controller names it instead, in controller mode).
    pub fn learn_master(&self, ha_addr: &str) {
        if self.ha.controller || !self.ha.is_slave() {
            return;
        }
        if self.ha.name_master(Some(ha_addr)) {
            log::info!(
                "shard {}: the name server names master {ha_addr}",
                self.config.shard_id
            );
        }
    }

    /// The master a slave follows: `haMasterAddress`, else what the controller or the name
    /// servers named.
    pub fn master_ha_addr(&self) -> Option<String> {
        if self.ha.controller {
            return self.ha.named_master();
        }
        self.config
            .replication
            .master_ha_addr
            .clone()
            .or_else(|| self.ha.named_master())
    }

    /// Writes `epochs` durably, then makes them the shard's.
    pub async fn persist_epochs(
        &self,
        epochs: crate::replication::epochs::Epochs,
    ) -> Result<(), String> {
        let path = crate::replication::epochs::Epochs::path(&self.config.store_dir);
        crate::store::atomic_file::write_off_shard(path.clone(), epochs.to_json())
            .await
            .map_err(|e| format!("writing {}: {e}", path.display()))?;
        *self.ha.epochs.borrow_mut() = epochs;
        Ok(())
    }

    /// Asks the registration task to register at once.
    pub fn request_registration(&self) {
        self.register_now.raise();
    }

    /// Tells every member of `group` that membership changed (NOTIFY_CONSUMER_IDS_CHANGED).
    pub fn notify_consumer_ids_changed(&self, group: &str) {
        let enabled = self
            .meta
            .borrow()
            .group(group)
            .is_none_or(|g| g.notify_consumer_ids_changed_enable);
        let clients = self.clients.borrow();
        let clustering = clients
            .consumer_group(group)
            .is_none_or(|g| !g.is_broadcasting());
        if !enabled || !clustering {
            return;
        }
        let conns = clients.consumer_connections(group);
        drop(clients);
        for conn in conns {
            let mut cmd = RemotingCommand::request(
                request::NOTIFY_CONSUMER_IDS_CHANGED,
                Default::default(),
                Default::default(),
            );
            cmd.ext_fields.insert("consumerGroup", group);
            conn.send_oneway_request(cmd);
        }
    }

    pub fn connection_closed(&self, conn: &Rc<Connection>) {
        let changed = self.clients.borrow_mut().connection_closed(conn.id);
        for group in changed {
            self.notify_consumer_ids_changed(&group);
        }
    }

    /// Topics found in the log but missing from the table (a crash between the first append
    /// of an auto-created topic and the table's write) are recreated, so their messages stay
    /// reachable.
    pub fn reconcile_topics_with_log(&self) {
        for (topic, queues) in self.topics_missing_from_table() {
            log::warn!("shard {}: topic {topic} has messages in {queues} queues but no config; recreating it", self.config.shard_id);
            self.put_topic(TopicConfig::new(&topic, queues, metadata::perm::READ_WRITE));
        }
    }

    /// A slave creates the topics (and queues) its master's log brought, so it serves them.
    /// Topics the master deleted (their messages stay in the log) are not brought back.
    pub fn note_replicated_topics(&self) {
        for (topic, queues) in self.topics_missing_from_table() {
            log::info!(
                "shard {}: replicated topic {topic} with {queues} queues",
                self.config.shard_id
            );
            self.put_topic(TopicConfig::new(&topic, queues, metadata::perm::READ_WRITE));
        }
    }

    /// A slave takes its master's topic and group tables.
    pub fn replace_tables(&self, topics: metadata::TopicTable, groups: metadata::GroupTable) {
        fn json(table: &impl serde::Serialize) -> serde_json::Value {
            serde_json::to_value(table).expect("tables serialize")
        }
        let mut meta = self.meta.borrow_mut();
        let topics_changed =
            json(&meta.topics.topic_config_table) != json(&topics.topic_config_table);
        let groups_changed =
            json(&meta.groups.subscription_group_table) != json(&groups.subscription_group_table);
        if topics_changed {
            meta.topics.topic_config_table = topics.topic_config_table;
            meta.topics.deleted_topics = topics.deleted_topics;
            meta.topics.data_version.bump();
            self.register_now.raise();
        }
        if groups_changed {
            meta.groups.subscription_group_table = groups.subscription_group_table;
            meta.groups.data_version.bump();
        }
        if topics_changed || groups_changed {
            self.metadata_changed.raise();
        }
    }

    /// Topics with queues in the store that the table lacks or has fewer of, except those
    /// deleted (their messages stay in the log).
    fn topics_missing_from_table(&self) -> Vec<(String, i32)> {
        let meta = self.meta.borrow();
        self.store
            .queues()
            .topics()
            .map(|(topic, queues)| (topic, queues.len() as i32))
            .filter(|(topic, _)| !meta.topics.deleted_topics.contains(*topic))
            .filter(|(topic, queues)| meta.topic(topic).is_none_or(|t| t.queue_count() < *queues))
            .map(|(topic, queues)| (topic.clone(), queues))
            .collect()
    }

    /// Runs the shard's background tasks until the executor ends.
    pub fn spawn_background(self: &Rc<Self>) {
        glommio::spawn_local(self.store.clone().run_writer()).detach();
        glommio::spawn_local_into(self.store.log().clone().run_preallocator(), self.background)
            .expect("the background queue exists")
            .detach();
        glommio::spawn_local(self.store.clone().run_flusher(self.config.flush_interval)).detach();
        glommio::spawn_local_into(
            crate::store::retention::run(self.store.clone()),
            self.background,
        )
        .expect("the background queue exists")
        .detach();
        glommio::spawn_local(
            self.store
                .clone()
                .run_queue_persister(Duration::from_secs(1)),
        )
        .detach();
        glommio::spawn_local(register::run(self.clone())).detach();
        if self.config.shard_id == 0 {
            glommio::spawn_local_into(run_memory_trim(), self.background)
                .expect("the background queue exists")
                .detach();
        }
        if let Some(acl) = &self.acl {
            let watch = acl
                .clone()
                .run(self.config.shard_id, Duration::from_secs(2));
            glommio::spawn_local_into(watch, self.background)
                .expect("the background queue exists")
                .detach();
        }
        let shard = self.clone();
        let sampling = async move {
            loop {
                glommio::timer::sleep(stats::SAMPLE_EVERY).await;
                shard.stats.borrow_mut().sample(Instant::now());
            }
        };
        glommio::spawn_local_into(sampling, self.background)
            .expect("the background queue exists")
            .detach();
        if let Some(to) = self.config.metrics.clone() {
            glommio::spawn_local_into(metrics::publish(self.clone(), to), self.background)
                .expect("the background queue exists")
                .detach();
        }
        glommio::spawn_local(holds::run_arrivals(self.clone())).detach();
        glommio::spawn_local(holds::run_expiry(self.clone())).detach();
        if self.config.replication.role.is_slave() || self.ha.controller {
            // A slave writes only what its master's log holds; it follows while it is one.
            glommio::spawn_local_into(
                crate::replication::slave::run(self.clone()),
                self.background,
            )
            .expect("the background queue exists")
            .detach();
        }
        if let Some(link) = self.config.replication.controller.clone() {
            glommio::spawn_local(crate::replication::controller::run(self.clone(), link)).detach();
        }
        // Delayed delivery and transaction checks write the log: they act while master only.
        glommio::spawn_local(schedule::run(self.clone())).detach();
        glommio::spawn_local(transaction::run(self.clone())).detach();
        let shard = self.clone();
        glommio::spawn_local(async move {
            shard.locks.run_persister(shard.config.shard_id).await;
        })
        .detach();
        let shard = self.clone();
        glommio::spawn_local(async move {
            loop {
                shard.metadata_changed.wait().await;
                shard.persist_metadata().await;
            }
        })
        .detach();
        let shard = self.clone();
        glommio::spawn_local(async move {
            loop {
                glommio::timer::sleep(Duration::from_secs(5)).await;
                shard.persist().await;
                let changed = shard.clients.borrow_mut().expire(Instant::now());
                for group in changed {
                    shard.notify_consumer_ids_changed(&group);
                }
            }
        })
        .detach();
    }

    /// Persists offsets and (when changed) metadata.
    pub async fn persist(&self) {
        if let Err(e) = self.store.persist_offsets().await {
            log::error!(
                "shard {}: persisting consumer offsets failed: {e}",
                self.config.shard_id
            );
        }
        if let Err(e) = self.delay.persist().await {
            log::error!(
                "shard {}: persisting delay progress failed: {e}",
                self.config.shard_id
            );
        }
        if let Err(e) = self.transactions.persist().await {
            log::error!(
                "shard {}: persisting transaction state failed: {e}",
                self.config.shard_id
            );
        }
        if let Err(e) = self.locks.persist().await {
            log::error!(
                "shard {}: persisting queue locks failed: {e}",
                self.config.shard_id
            );
        }
        self.persist_metadata().await;
    }

    /// Writes the topic and group tables if they changed since the last write.
    async fn persist_metadata(&self) {
        let (topics_version, groups_version, topics, groups) = {
            let meta = self.meta.borrow();
            (
                meta.topics.data_version.counter,
                meta.groups.data_version.counter,
                meta.topics_json(),
                meta.groups_json(),
            )
        };
        if self.persisted_metadata.get() == (topics_version, groups_version) {
            return;
        }
        let dir = self.config.store_dir.clone();
        let result = async {
            crate::store::atomic_file::write_off_shard(dir.join("topics.json"), topics).await?;
            crate::store::atomic_file::write_off_shard(dir.join("subscriptionGroup.json"), groups)
                .await
        }
        .await;
        match result {
            Ok(()) => self
                .persisted_metadata
                .set((topics_version, groups_version)),
            Err(e) => log::error!(
                "shard {}: persisting metadata failed: {e}",
                self.config.shard_id
            ),
        }
    }

    /// Clean shutdown: flush the log, persist offsets and metadata, leave the name servers.
    pub async fn shutdown(&self) {
        if let Err(e) = self.store.flush_all().await {
            log::error!("shard {}: final flush failed: {e}", self.config.shard_id);
        }
        self.persist().await;
        register::unregister(self).await;
    }
}

fn physical_memory_bytes() -> u64 {
    // SAFETY: sysconf has no preconditions; it returns -1 for unknown names.
    let pages = unsafe { libc::sysconf(libc::_SC_PHYS_PAGES) };
    // SAFETY: as above.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if pages <= 0 || page <= 0 {
        return 1 << 30;
    }
    pages as u64 * page as u64
}
