//! `broker.conf`: RocketMQ's key names (C2), read from a Java properties file (`-c FILE`) and
//! `-p key=value` overrides. An unknown key or a bad value is an error naming both.

mod render;

use std::path::{Path, PathBuf};
use std::time::Duration;

use petrel_shards::acl::Credentials;
use petrel_shards::broker::schedule;
use petrel_shards::broker::throttle::TpsConfig;
use petrel_shards::broker::transaction::TransactionConfig;
use petrel_shards::commitlog::FlushDiskType;
use petrel_shards::index::IndexConfig;
use petrel_shards::net::connection::ConnectionLimits;
use petrel_shards::replication::BrokerRole;
use petrel_shards::store::flow::FlowConfig;
use petrel_shards::store::retention::RetentionConfig;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("unknown config key `{0}`")]
    UnknownKey(String),
    #[error("config key `{key}`: bad value {value:?}: {reason}")]
    BadValue {
        key: String,
        value: String,
        reason: String,
    },
    #[error("config file {path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error("-p {0:?}: expected key=value")]
    BadOverride(String),
}

#[derive(Debug, Clone)]
pub struct Config {
    pub broker_cluster_name: String,
    pub broker_name: String,
    pub broker_id: i64,
    pub namesrv_addr: Option<String>,
    pub broker_ip1: String,
    pub bind_address: String,
    /// `metricsExporterType=PROM`: serve Prometheus metrics (`DISABLE` by default).
    pub metrics_prom: bool,
    /// `metricsPromExporterHost` (empty: `bindAddress`) and `metricsPromExporterPort`.
    pub metrics_prom_host: String,
    pub metrics_prom_port: u16,
    pub listen_port: u16,
    pub namesrv_listen_port: u16,
    pub shard_listen_port_base: Option<u16>,
    pub shards: usize,
    pub shard_pinning: bool,
    pub shard_io_memory_bytes: usize,
    pub store_path_root_dir: PathBuf,
    pub mapped_file_size_commit_log: u64,
    pub flush_disk_type: FlushDiskType,
    pub flush_interval_commit_log: Duration,
    pub max_message_size: usize,
    pub auto_create_topic_enable: bool,
    pub auto_create_subscription_group: bool,
    pub default_topic_queue_nums: i32,
    pub region_id: String,
    pub trace_topic_enable: bool,
    pub register_name_server_period: Duration,
    pub long_polling_enable: bool,
    pub short_polling_time_mills: Duration,
    /// `frameMaxLength`, `frameReadTimeoutMillis`, `serverChannelMaxIdleTimeSeconds`.
    pub connection: ConnectionLimits,
    /// `clientConnectionsMax` (Petrel's): client connections the broker process serves at
    /// once, split evenly across its shards; more are closed as they arrive.
    pub client_connections_max: usize,
    pub message_delay_level: Vec<Duration>,
    /// `transactionTimeOut`, `transactionCheckMax`, `transactionCheckInterval`,
    /// `rejectTransactionMessage`.
    pub transactions: TransactionConfig,
    /// `messageIndexEnable`, `maxHashSlotNum`, `maxIndexNum`.
    pub index: IndexConfig,
    /// `fileReservedTime`, `deleteWhen`, `diskMaxUsedSpaceRatio`,
    /// `diskSpaceCleanForciblyRatio`, `diskSpaceWarningLevelRatio`,
    /// `cleanFileForciblyEnable`, `deleteFileBatchMax`, `cleanResourceInterval`.
    pub retention: RetentionConfig,
    /// `waitTimeMillsInSendQueue`, `sendThreadPoolQueueCapacity`, `sendQueueMaxBytes`.
    pub flow: FlowConfig,
    /// `topicProduceTpsLimit`, `topicConsumeTpsLimit`, `groupConsumeTpsLimit` (Petrel's).
    pub tps: TpsConfig,
    /// `topicCountMax` (Petrel's): topics each shard holds at most.
    pub topic_count_max: usize,
    /// `splitRegistrationSize`: topics per registration request to a name server.
    pub split_registration_size: usize,
    /// `brokerRole`: ASYNC_MASTER (default), SYNC_MASTER or SLAVE.
    pub broker_role: BrokerRole,
    /// `haListenPort`: where a master's slaves connect; `listenPort + 1` if unset.
    pub ha_listen_port: Option<u16>,
    /// `syncFlushTimeout`: how long a SYNC_MASTER's send waits for its slave.
    pub sync_flush_timeout: Duration,
    /// `haHousekeepingInterval`: a replication peer silent this long is dropped.
    pub ha_housekeeping: Duration,
    /// `haMasterAddress`: the master's HA `ip:port` a slave follows.
    pub ha_master_address: Option<String>,
    /// `slaveReadEnable`: a consumer far behind is sent to a slave (its group's
    /// `whichBrokerWhenConsumeSlowly`), one caught up back to the master.
    pub slave_read_enable: bool,
    /// `accessMessageInMemoryMaxRatio` (percent of RAM): how far behind the log's end a
    /// consumer may read before it counts as far behind.
    pub access_message_in_memory_max_ratio: u64,
    /// `rebalanceLockMaxLiveTime`: a queue lock's life after its last refresh.
    pub rebalance_lock_max_live_time: Duration,
    /// Name server: routes carry `orderTopicConf` from the KV store.
    pub order_message_enable: bool,
    /// Name server: the KV store's file; `<storePathRootDir>/namesrv/kvConfig.json` if unset.
    pub kv_config_path: Option<PathBuf>,
    /// `enableControllerMode`: the controller elects the master; `brokerRole` only says
    /// whether this broker, as master, waits for its in-sync slaves (SYNC_MASTER) or not.
    pub enable_controller_mode: bool,
    /// `controllerAddr`: the controller (`ip:port`); the name server's if unset.
    pub controller_addr: Option<String>,
    /// `brokerHeartbeatInterval` (ms): how often a broker tells the controller it lives.
    pub broker_heartbeat_interval: Duration,
    /// `controllerHeartBeatTimeoutMills`: a broker silent this long is dead to the controller.
    pub controller_heartbeat_timeout: Duration,
    /// Name server: `enableControllerInNamesrv` runs the controller in it.
    pub enable_controller_in_namesrv: bool,
    /// Name server: where the controller keeps its state; `<storePathRootDir>/controller`.
    pub controller_store_path: Option<PathBuf>,
    /// Name server: `controllerDLegerPeers` (`n0-ip:port;n1-ip:port;…`), the controllers that
    /// agree on the controller's state, and `controllerDLegerSelfId`, which one this is.
    pub controller_peers: Option<String>,
    pub controller_self_id: Option<String>,
    /// Name server: `enableElectUncleanMaster` lets the controller elect a replica outside
    /// the in-sync set when none in it lives (acknowledged messages may be lost).
    pub enable_elect_unclean_master: bool,
    /// `aclEnable`: every client request to a broker port is checked against `aclFile`.
    pub acl_enable: bool,
    /// `aclFile` (Petrel's; RocketMQ's `-Drocketmq.acl.plain.file`): the accounts' YAML.
    pub acl_file: PathBuf,
    /// `innerClientAuthenticationCredentials`: `{"accessKey":…,"secretKey":…}`, the account a
    /// broker signs its registrations and controller requests with.
    pub inner_credentials: Option<Credentials>,
}

fn online_cpus() -> usize {
    glommio::CpuSet::online().map_or(1, |set| set.len().max(1))
}

impl Default for Config {
    fn default() -> Self {
        Config {
            broker_cluster_name: "DefaultCluster".into(),
            broker_name: "broker-a".into(),
            broker_id: 0,
            namesrv_addr: None,
            broker_ip1: "127.0.0.1".into(),
            bind_address: "0.0.0.0".into(),
            metrics_prom: false,
            metrics_prom_host: String::new(),
            metrics_prom_port: 5557,
            listen_port: 10911,
            namesrv_listen_port: 9876,
            shard_listen_port_base: None,
            shards: online_cpus(),
            shard_pinning: true,
            shard_io_memory_bytes: 1 << 20,
            store_path_root_dir: PathBuf::from("./petrel-data"),
            mapped_file_size_commit_log: 1 << 30,
            flush_disk_type: FlushDiskType::Async,
            flush_interval_commit_log: Duration::from_millis(500),
            max_message_size: 4 << 20,
            auto_create_topic_enable: true,
            auto_create_subscription_group: true,
            default_topic_queue_nums: 8,
            region_id: "DefaultRegion".into(),
            trace_topic_enable: false,
            register_name_server_period: Duration::from_secs(30),
            long_polling_enable: true,
            short_polling_time_mills: Duration::from_millis(1000),
            connection: ConnectionLimits::default(),
            client_connections_max: 100_000,
            message_delay_level: schedule::parse_levels(schedule::DEFAULT_LEVELS)
                .expect("the default levels parse"),
            order_message_enable: false,
            transactions: TransactionConfig::default(),
            index: IndexConfig::default(),
            retention: RetentionConfig::default(),
            flow: FlowConfig::default(),
            tps: TpsConfig::default(),
            topic_count_max: 10_000,
            split_registration_size: 800,
            kv_config_path: None,
            rebalance_lock_max_live_time: petrel_shards::broker::locks::LOCK_MAX_LIVE,
            broker_role: BrokerRole::AsyncMaster,
            ha_listen_port: None,
            ha_master_address: None,
            slave_read_enable: false,
            access_message_in_memory_max_ratio: 40,
            sync_flush_timeout: Duration::from_secs(5),
            ha_housekeeping: Duration::from_secs(20),
            enable_controller_mode: false,
            controller_addr: None,
            broker_heartbeat_interval: Duration::from_millis(1000),
            controller_heartbeat_timeout: Duration::from_secs(3),
            enable_controller_in_namesrv: false,
            controller_store_path: None,
            controller_peers: None,
            controller_self_id: None,
            enable_elect_unclean_master: false,
            acl_enable: false,
            acl_file: PathBuf::from("conf/plain_acl.yml"),
            inner_credentials: None,
        }
    }
}

fn parse<T: std::str::FromStr>(key: &str, value: &str) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    value
        .trim()
        .parse()
        .map_err(|e: T::Err| ConfigError::BadValue {
            key: key.to_string(),
            value: value.to_string(),
            reason: e.to_string(),
        })
}

fn bounded<T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy>(
    key: &str,
    value: &str,
    min: T,
    max: T,
) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    let v: T = parse(key, value)?;
    if v < min || v > max {
        return Err(ConfigError::BadValue {
            key: key.into(),
            value: value.into(),
            reason: format!("must be between {min} and {max}"),
        });
    }
    Ok(v)
}

fn millis(key: &str, value: &str) -> Result<Duration, ConfigError> {
    Ok(Duration::from_millis(bounded(key, value, 1u64, 3_600_000)?))
}

impl Config {
    /// Applies one `key=value`.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), ConfigError> {
        let v = value.trim();
        let shared = self
            .retention
            .set(key, v)
            .or_else(|| self.flow.set(key, v))
            .or_else(|| self.tps.set(key, v));
        if let Some(result) = shared {
            return result.map_err(|reason| ConfigError::BadValue {
                key: key.into(),
                value: v.into(),
                reason,
            });
        }
        match key {
            "brokerClusterName" => self.broker_cluster_name = name(key, v)?,
            "brokerName" => self.broker_name = name(key, v)?,
            "brokerId" => self.broker_id = bounded(key, v, 0i64, 1024)?,
            "brokerRole" => {
                self.broker_role = BrokerRole::parse(v).ok_or_else(|| ConfigError::BadValue {
                    key: key.into(),
                    value: v.into(),
                    reason: "expected ASYNC_MASTER, SYNC_MASTER or SLAVE".into(),
                })?
            }
            "syncFlushTimeout" => self.sync_flush_timeout = millis(key, v)?,
            "haHousekeepingInterval" => {
                // Both ends send at least once a second: less than two would drop live peers.
                self.ha_housekeeping = Duration::from_millis(bounded(key, v, 2_000, 3_600_000)?)
            }
            "slaveReadEnable" => self.slave_read_enable = parse(key, v)?,
            "accessMessageInMemoryMaxRatio" => {
                self.access_message_in_memory_max_ratio = bounded(key, v, 0u64, 100)?
            }
            "haListenPort" => self.ha_listen_port = Some(parse(key, v)?),
            "haMasterAddress" => {
                self.ha_master_address = Some(v.to_string()).filter(|s| !s.is_empty())
            }
            "namesrvAddr" => self.namesrv_addr = Some(v.to_string()).filter(|s| !s.is_empty()),
            "brokerIP1" => self.broker_ip1 = parse::<std::net::IpAddr>(key, v)?.to_string(),
            "bindAddress" => self.bind_address = parse::<std::net::IpAddr>(key, v)?.to_string(),
            "listenPort" => self.listen_port = parse(key, v)?,
            "metricsExporterType" => {
                self.metrics_prom = match v {
                    "PROM" => true,
                    "DISABLE" => false,
                    _ => {
                        return Err(ConfigError::BadValue {
                            key: key.into(),
                            value: v.into(),
                            reason: "expected PROM or DISABLE (OTLP_GRPC and LOG are not built)"
                                .into(),
                        })
                    }
                }
            }
            "metricsPromExporterHost" => {
                self.metrics_prom_host = match v {
                    "" => String::new(),
                    ip => parse::<std::net::IpAddr>(key, ip)?.to_string(),
                }
            }
            "metricsPromExporterPort" => self.metrics_prom_port = parse(key, v)?,
            "namesrvListenPort" => self.namesrv_listen_port = parse(key, v)?,
            "shardListenPortBase" => self.shard_listen_port_base = Some(parse(key, v)?),
            "shards" => self.shards = bounded(key, v, 1usize, 256)?,
            "shardPinning" => self.shard_pinning = parse(key, v)?,
            "shardIoMemoryBytes" => {
                self.shard_io_memory_bytes = bounded(key, v, 64usize << 10, 64 << 20)?
            }
            "storePathRootDir" => self.store_path_root_dir = PathBuf::from(v),
            "mappedFileSizeCommitLog" => {
                self.mapped_file_size_commit_log = bounded(key, v, 64u64 << 10, 16 << 30)?
            }
            "flushDiskType" => {
                self.flush_disk_type = match v {
                    "ASYNC_FLUSH" => FlushDiskType::Async,
                    "SYNC_FLUSH" => FlushDiskType::Sync,
                    _ => {
                        return Err(ConfigError::BadValue {
                            key: key.into(),
                            value: v.into(),
                            reason: "expected ASYNC_FLUSH or SYNC_FLUSH".into(),
                        })
                    }
                }
            }
            "flushIntervalCommitLog" => self.flush_interval_commit_log = millis(key, v)?,
            "maxMessageSize" => self.max_message_size = bounded(key, v, 1usize, 64 << 20)?,
            "autoCreateTopicEnable" => self.auto_create_topic_enable = parse(key, v)?,
            "autoCreateSubscriptionGroup" => self.auto_create_subscription_group = parse(key, v)?,
            "defaultTopicQueueNums" => self.default_topic_queue_nums = bounded(key, v, 1i32, 1024)?,
            "regionId" => self.region_id = v.to_string(),
            "messageDelayLevel" => {
                self.message_delay_level =
                    schedule::parse_levels(v).map_err(|reason| ConfigError::BadValue {
                        key: key.into(),
                        value: v.into(),
                        reason,
                    })?
            }
            "transactionTimeOut" => self.transactions.timeout = millis(key, v)?,
            "transactionCheckMax" => self.transactions.check_max = bounded(key, v, 1u32, 1000)?,
            "transactionCheckInterval" => self.transactions.check_interval = millis(key, v)?,
            "rejectTransactionMessage" => self.transactions.reject = parse(key, v)?,
            "messageIndexEnable" => self.index.enabled = parse(key, v)?,
            "maxHashSlotNum" => self.index.slots = bounded(key, v, 1u32, 50_000_000)?,
            "maxIndexNum" => self.index.entries = bounded(key, v, 1u32, 100_000_000)?,
            "rebalanceLockMaxLiveTime" => self.rebalance_lock_max_live_time = millis(key, v)?,
            "orderMessageEnable" => self.order_message_enable = parse(key, v)?,
            "kvConfigPath" => self.kv_config_path = Some(PathBuf::from(v)),
            "traceTopicEnable" => self.trace_topic_enable = parse(key, v)?,
            "registerNameServerPeriod" => {
                self.register_name_server_period =
                    Duration::from_millis(bounded(key, v, 1000u64, 60_000)?)
            }
            "longPollingEnable" => self.long_polling_enable = parse(key, v)?,
            "shortPollingTimeMills" => self.short_polling_time_mills = millis(key, v)?,
            "frameMaxLength" => {
                self.connection.frame_bytes_max = bounded(key, v, 1u32 << 16, 1 << 30)?
            }
            "topicCountMax" => self.topic_count_max = bounded(key, v, 1usize, 1_000_000)?,
            "splitRegistrationSize" => {
                self.split_registration_size = bounded(key, v, 1usize, 10_000)?
            }
            "clientConnectionsMax" => {
                self.client_connections_max = bounded(key, v, 1usize, 10_000_000)?
            }
            "frameReadTimeoutMillis" => self.connection.frame_read_timeout = millis(key, v)?,
            "serverChannelMaxIdleTimeSeconds" => {
                self.connection.idle_timeout = Duration::from_secs(bounded(key, v, 1u64, 86_400)?)
            }
            "enableControllerMode" => self.enable_controller_mode = parse(key, v)?,
            "controllerAddr" => {
                self.controller_addr = Some(v.to_string()).filter(|s| !s.is_empty())
            }
            "brokerHeartbeatInterval" => {
                self.broker_heartbeat_interval =
                    Duration::from_millis(bounded(key, v, 100u64, 60_000)?)
            }
            "controllerHeartBeatTimeoutMills" => {
                self.controller_heartbeat_timeout =
                    Duration::from_millis(bounded(key, v, 500u64, 600_000)?)
            }
            "enableControllerInNamesrv" => self.enable_controller_in_namesrv = parse(key, v)?,
            "controllerStorePath" => self.controller_store_path = Some(PathBuf::from(v)),
            "controllerDLegerPeers" => {
                self.controller_peers = Some(v.to_string()).filter(|s| !s.is_empty())
            }
            "controllerDLegerSelfId" => {
                self.controller_self_id = Some(v.to_string()).filter(|s| !s.is_empty())
            }
            // One Raft group per name-server set; the name is accepted for RocketMQ's files.
            "controllerDLegerGroup" => {}
            "enableElectUncleanMaster" => self.enable_elect_unclean_master = parse(key, v)?,
            "aclEnable" => self.acl_enable = parse(key, v)?,
            "aclFile" => self.acl_file = PathBuf::from(v),
            "innerClientAuthenticationCredentials" => {
                self.inner_credentials = if v.is_empty() {
                    None
                } else {
                    Some(serde_json::from_str(v).map_err(|e| ConfigError::BadValue {
                        key: key.into(),
                        value: "(hidden)".into(),
                        // Not serde's message: it would quote the secret.
                        reason: format!(
                            "expected {{\"accessKey\":\"…\",\"secretKey\":\"…\"}} (both strings; fault at column {})",
                            e.column()
                        ),
                    })?)
                }
            }
            _ => return Err(ConfigError::UnknownKey(key.to_string())),
        }
        Ok(())
    }

    /// Loads `file` (if any), then the `-p key=value` overrides in order.
    pub fn load(
        file: Option<&std::path::Path>,
        overrides: &[String],
    ) -> Result<Config, ConfigError> {
        let mut config = Self::layered(&[file], overrides)?;
        // Keys changed at runtime (UPDATE_BROKER_CONFIG) come after broker.conf, before -p.
        let runtime = runtime_config_path(&config.store_path_root_dir);
        if runtime.exists() {
            config = Self::layered(&[file, Some(&runtime)], overrides)?;
            log::info!(
                "config: keys changed at runtime are read from {} after broker.conf",
                runtime.display()
            );
        }
        if config.max_message_size as u64 + (64 << 10) > config.mapped_file_size_commit_log {
            return Err(ConfigError::BadValue {
                key: "maxMessageSize".into(),
                value: config.max_message_size.to_string(),
                reason: format!(
                    "must leave room in a commit-log segment of {} bytes",
                    config.mapped_file_size_commit_log
                ),
            });
        }
        Ok(config)
    }

    /// Defaults, then each properties file in order, then the `-p` overrides.
    fn layered(files: &[Option<&Path>], overrides: &[String]) -> Result<Config, ConfigError> {
        let mut config = Config::default();
        for path in files.iter().flatten() {
            let file_error = |reason: String| ConfigError::File {
                path: path.to_path_buf(),
                reason,
            };
            let f = std::fs::File::open(path).map_err(|e| file_error(e.to_string()))?;
            let props = java_properties::read(std::io::BufReader::new(f))
                .map_err(|e| file_error(e.to_string()))?;
            let mut keys: Vec<_> = props.into_iter().collect();
            keys.sort();
            for (k, v) in keys {
                config.set(&k, &v)?;
            }
        }
        for item in overrides {
            let (k, v) = item
                .split_once('=')
                .ok_or_else(|| ConfigError::BadOverride(item.clone()))?;
            config.set(k.trim(), v)?;
        }
        Ok(config)
    }

    pub fn kv_config_path(&self) -> PathBuf {
        self.kv_config_path.clone().unwrap_or_else(|| {
            self.store_path_root_dir
                .join("namesrv")
                .join("kvConfig.json")
        })
    }

    /// Name servers to register with: the `;`-separated `namesrvAddr`.
    pub fn namesrv_list(&self) -> Vec<String> {
        self.namesrv_addr
            .as_deref()
            .unwrap_or("")
            .split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    }

    /// Port of shard `i`: `shardListenPortBase + i`, by default `listenPort + 100 + i`, so it
    /// never meets the front door, the VIP port (`listenPort - 2`) or HA (`listenPort + 1`).
    /// With `listenPort=0` every shard takes any free port.
    /// `haListenPort`, by default `listenPort + 1` (0 with `listenPort` 0: any free port).
    pub fn ha_port(&self) -> u16 {
        match (self.ha_listen_port, self.listen_port) {
            (Some(port), _) => port,
            (None, 0) => 0,
            (None, port) => port.saturating_add(1),
        }
    }

    /// Keys that only make sense together: a slave has a brokerId ≥ 1, a master 0; under a
    /// controller every replica has its own brokerId ≥ 1.
    pub fn check_roles(&self) -> Result<(), String> {
        if self.enable_controller_mode {
            if self.broker_id == 0 {
                return Err("enableControllerMode needs brokerId 1 or more: it names the replica (routes show the elected master as 0)".into());
            }
            if self.broker_role.is_slave() {
                return Err("enableControllerMode: the controller elects the master, so brokerRole is SYNC_MASTER or ASYNC_MASTER (how this broker acks as master), not SLAVE".into());
            }
            return Ok(());
        }
        match self.broker_role {
            BrokerRole::Slave if self.broker_id == 0 => {
                Err("brokerRole=SLAVE needs brokerId 1 or more (0 is the master)".into())
            }
            BrokerRole::AsyncMaster | BrokerRole::SyncMaster if self.broker_id != 0 => {
                Err(format!(
                    "brokerId {} with a master role: a master is brokerId 0",
                    self.broker_id
                ))
            }
            _ => Ok(()),
        }
    }

    /// Where a broker in controller mode sends its heartbeats: `controllerAddr` (`;`-separated),
    /// else its name servers (`namesrv`). Each is told; the leader answers.
    pub fn controller_addrs(&self, namesrv: &[String]) -> Result<Vec<String>, String> {
        let addrs: Vec<String> = match self.controller_addr.as_deref() {
            Some(list) => list
                .split(';')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
            None => namesrv.to_vec(),
        };
        if addrs.is_empty() {
            return Err(
                "enableControllerMode needs a controller: set controllerAddr or namesrvAddr".into(),
            );
        }
        Ok(addrs)
    }

    pub fn controller_store_path(&self) -> PathBuf {
        self.controller_store_path
            .clone()
            .unwrap_or_else(|| self.store_path_root_dir.join("controller"))
    }

    pub fn shard_port(&self, shard: usize) -> u16 {
        match (self.shard_listen_port_base, self.listen_port) {
            (Some(0), _) | (None, 0) => 0,
            (Some(base), _) => base.saturating_add(shard as u16),
            (None, port) => port.saturating_add(100).saturating_add(shard as u16),
        }
    }
}

fn name(key: &str, value: &str) -> Result<String, ConfigError> {
    petrel_shards::broker::metadata::validate_name("broker", value, 64).map_err(|e| {
        ConfigError::BadValue {
            key: key.into(),
            value: value.into(),
            reason: e.to_string(),
        }
    })?;
    Ok(value.to_string())
}

/// Where keys changed at runtime are kept: `<storePathRootDir>/config/runtime.properties`.
pub fn runtime_config_path(root: &Path) -> PathBuf {
    root.join("config").join("runtime.properties")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_apply_and_bad_input_names_the_key() {
        let c = Config::load(
            None,
            &["listenPort=0".into(), "flushDiskType=SYNC_FLUSH".into()],
        )
        .unwrap();
        assert_eq!(c.listen_port, 0);
        assert_eq!(c.flush_disk_type, FlushDiskType::Sync);
        let e = Config::load(None, &["listenPrt=1".into()]).unwrap_err();
        assert_eq!(e.to_string(), "unknown config key `listenPrt`");
        let e = Config::load(None, &["listenPort=abc".into()]).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("config key `listenPort`: bad value \"abc\""),
            "{e}"
        );
        let e = Config::load(None, &["flushDiskType=SOMETIMES".into()]).unwrap_err();
        assert!(e.to_string().contains("expected ASYNC_FLUSH or SYNC_FLUSH"));
        let e = Config::load(None, &["haHousekeepingInterval=500".into()]).unwrap_err();
        assert!(e.to_string().contains("haHousekeepingInterval"), "{e}");
        assert!(e.to_string().contains("must be between 2000"), "{e}");
    }

    #[test]
    fn metrics_keys_take_rocketmqs_values() {
        let c = Config::load(
            None,
            &[
                "metricsExporterType=PROM".into(),
                "metricsPromExporterPort=0".into(),
            ],
        )
        .unwrap();
        assert!(c.metrics_prom);
        assert_eq!(c.metrics_prom_port, 0);
        let e = Config::load(None, &["metricsExporterType=OTLP_GRPC".into()]).unwrap_err();
        assert!(e.to_string().contains("expected PROM or DISABLE"), "{e}");
        let e = Config::load(None, &["metricsPromExporterHost=example".into()]).unwrap_err();
        assert!(e.to_string().contains("metricsPromExporterHost"), "{e}");
    }

    #[test]
    fn reads_a_broker_conf_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broker.conf");
        std::fs::write(
            &path,
            "# comment\nbrokerName = broker-b\nnamesrvAddr=127.0.0.1:1;127.0.0.1:2\n",
        )
        .unwrap();
        let c = Config::load(Some(&path), &[]).unwrap();
        assert_eq!(c.broker_name, "broker-b");
        assert_eq!(c.namesrv_list(), vec!["127.0.0.1:1", "127.0.0.1:2"]);
        assert_eq!(c.shard_port(1), 11012);
    }
}
