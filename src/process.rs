//! Process wiring for `petrel namesrv | broker | standalone`: bind every port first (a taken
//! port fails before anything starts, F32), check the store's broker-name binding (F31), start
//! the name server and one executor per shard, print the ready line, and stop cleanly on
//! SIGTERM or SIGINT.

use std::fs::OpenOptions;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use petrel_shards::acl::{Acl, AclConfig};
use petrel_shards::broker::{shard_broker_name, ShardConfig};
use petrel_shards::mesh::{MeshBuilder, MESH_CHANNEL_CAPACITY};
use petrel_shards::net::listener::bind;
use petrel_shards::net::open_files;
use petrel_shards::replication::{ControllerLink, ReplicationConfig};
use petrel_shards::runtime::shard::{self, ShardStart};
use serde::Serialize;
use signal_hook::consts::{SIGINT, SIGTERM};

use crate::config::Config;
use crate::namesrv::{self, NamesrvStart, NAMESRV_READY_ID};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Namesrv,
    Broker,
    Standalone,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReadyBroker {
    broker_name: String,
    addr: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Ready {
    role: &'static str,
    pid: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    namesrv_addr: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    front_door: Option<String>,
    brokers: Vec<ReadyBroker>,
    #[serde(skip_serializing_if = "Option::is_none")]
    store_path_root_dir: Option<String>,
    /// A master's HA port (`haListenPort`).
    #[serde(skip_serializing_if = "Option::is_none")]
    ha_addr: Option<String>,
    /// The Prometheus exporter (`metricsExporterType=PROM`).
    #[serde(skip_serializing_if = "Option::is_none")]
    metrics_addr: Option<String>,
}

/// A started executor and the socket that tells it to stop.
struct Running {
    stop: UnixStream,
    join: glommio::ExecutorJoinHandle<()>,
}

fn shutdown_pair() -> anyhow::Result<(UnixStream, OwnedFd)> {
    let (ours, theirs) = UnixStream::pair().context("socketpair for shutdown")?;
    theirs.set_nonblocking(true)?;
    Ok((ours, OwnedFd::from(theirs)))
}

/// `clientConnectionsMax`, or fewer where the open-files limit (raised to its hard value
/// first) has no room for that many: past it a connection could not even be accepted to be
/// refused.
fn connections_max(configured: usize) -> anyhow::Result<usize> {
    let limit = open_files::raise_limit().context("reading RLIMIT_NOFILE")?;
    let allowed = open_files::connections_allowed(limit);
    if allowed < configured {
        log::warn!(
            "clientConnectionsMax={configured} needs more descriptors than the open-files limit ({limit}, at {} per connection) has: serving at most {allowed} connections; raise `ulimit -n` (see tuning/) for more",
            open_files::DESCRIPTORS_PER_CONNECTION
        );
    }
    Ok(configured.min(allowed))
}

fn addr(ip: &str, port: u16) -> anyhow::Result<SocketAddr> {
    let ip: IpAddr = ip.parse().map_err(|_| anyhow!("bad address {ip}"))?;
    Ok(SocketAddr::new(ip, port))
}

pub fn run(role: Role, config: Config) -> anyhow::Result<()> {
    // Before anything can print the ready line: a SIGTERM that follows it must drain, not kill.
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT])
        .context("installing signal handlers")?;
    let (ready_tx, ready_rx) = mpsc::channel();
    let mut namesrv_running = None;
    let mut shards_running = Vec::new();
    let mut ready = Ready {
        role: match role {
            Role::Namesrv => "namesrv",
            Role::Broker => "broker",
            Role::Standalone => "standalone",
        },
        pid: std::process::id(),
        namesrv_addr: None,
        front_door: None,
        brokers: Vec::new(),
        store_path_root_dir: None,
        ha_addr: None,
        metrics_addr: None,
    };

    // Bind everything first.
    let namesrv_listener = if role != Role::Broker {
        let (fd, local) = bind(
            "namesrvListenPort",
            addr(&config.bind_address, config.namesrv_listen_port)?,
        )?;
        ready.namesrv_addr = Some(format!("{}:{}", config.broker_ip1, local.port()));
        Some(fd)
    } else {
        None
    };
    let mut broker_sockets = Vec::new();
    let mut store_lock = None;
    let mut ha_listener = None;
    let mut metrics = None;
    if role != Role::Namesrv {
        config.check_roles().map_err(|e| anyhow!(e))?;
        store_lock = Some(claim_store(&config)?);
        let (front_fd, front) = bind(
            "listenPort",
            addr(&config.bind_address, config.listen_port)?,
        )?;
        ready.front_door = Some(format!("{}:{}", config.broker_ip1, front.port()));
        let mut front_fd = Some(front_fd);
        for i in 0..config.shards {
            let (fd, local) = bind(
                &format!("shardListenPortBase+{i}"),
                addr(&config.bind_address, config.shard_port(i))?,
            )?;
            broker_sockets.push((i, fd, local, if i == 0 { front_fd.take() } else { None }));
        }
        // Under a controller any replica may become master, so each listens for slaves.
        if !config.broker_role.is_slave() || config.enable_controller_mode {
            let (fd, local) = bind(
                "haListenPort",
                addr(&config.bind_address, config.ha_port())?,
            )?;
            ready.ha_addr = Some(format!("{}:{}", config.broker_ip1, local.port()));
            ha_listener = Some(fd);
        }
        if config.metrics_prom {
            let host = match config.metrics_prom_host.as_str() {
                "" => &config.bind_address,
                host => host,
            };
            let (to_exporter, bound) =
                crate::metrics::start(addr(host, config.metrics_prom_port)?)?;
            ready.metrics_addr = Some(format!("{}:{}", config.broker_ip1, bound.port()));
            metrics = Some(to_exporter);
        }
        ready.store_path_root_dir = Some(config.store_path_root_dir.display().to_string());
    }

    // A file that does not parse stops the start, naming the file and the fault.
    let acl = if config.acl_enable {
        let rules = Acl::load(&config.acl_file).map_err(|e| anyhow!(e))?;
        log::info!(
            "ACL on: {} accounts from {}",
            rules.accounts(),
            config.acl_file.display()
        );
        Some(AclConfig {
            path: config.acl_file.clone(),
            rules,
        })
    } else {
        None
    };
    if let Some(listener) = namesrv_listener {
        let (stop, shutdown) = shutdown_pair()?;
        let kv = namesrv::kv::KvConfig::load(&config.kv_config_path())
            .map_err(|e| anyhow!("kvConfigPath {e}"))?;
        // Keys changed by updateNamesrvConfig before the last stop, over the config file.
        let changed_path = namesrv::live_config::runtime_path(&config.kv_config_path());
        let changed = namesrv::live_config::read_changed(&changed_path).map_err(|e| anyhow!(e))?;
        let mut ns_config = config.clone();
        for (k, v) in &changed {
            ns_config
                .set(k, v)
                .map_err(|e| anyhow!("{}: {e}", changed_path.display()))?;
        }
        let join = namesrv::spawn(NamesrvStart {
            acl: acl.clone(),
            listener,
            shutdown,
            ready: ready_tx.clone(),
            connection: config.connection,
            kv,
            order_message_enable: ns_config.order_message_enable,
            properties: ns_config.namesrv_properties(),
            changed,
            changed_path,
            controller: load_controller(&config)?,
        })?;
        namesrv_running = Some(Running { stop, join });
    }

    if role != Role::Namesrv {
        let mut namesrv_addrs = config.namesrv_list();
        if namesrv_addrs.is_empty() {
            match &ready.namesrv_addr {
                Some(own) => namesrv_addrs.push(own.clone()),
                None => bail!("namesrvAddr is not set: a broker needs at least one name server"),
            }
        }
        let controller = if config.enable_controller_mode {
            Some(ControllerLink {
                addrs: config
                    .controller_addrs(&namesrv_addrs)
                    .map_err(|e| anyhow!(e))?,
                heartbeat_interval: config.broker_heartbeat_interval,
                heartbeat_timeout: config.controller_heartbeat_timeout,
            })
        } else {
            None
        };
        let connections_max = connections_max(config.client_connections_max)?;
        let cpus: Vec<usize> = glommio::CpuSet::online()
            .map(|s| s.iter().map(|c| c.cpu).collect())
            .unwrap_or_default();
        let mesh =
            (config.shards > 1).then(|| MeshBuilder::full(config.shards, MESH_CHANNEL_CAPACITY));
        for (i, listener, local, front_door) in broker_sockets {
            let advertised: SocketAddr = addr(&config.broker_ip1, local.port())?;
            let broker_name = shard_broker_name(&config.broker_name, i);
            ready.brokers.push(ReadyBroker {
                broker_name: broker_name.clone(),
                addr: advertised.to_string(),
            });
            let shard_config = ShardConfig {
                shard_id: i,
                shard_count: config.shards,
                broker_name,
                process_broker_name: config.broker_name.clone(),
                cluster_name: config.broker_cluster_name.clone(),
                advertised_addr: advertised,
                namesrv_addrs: namesrv_addrs.clone(),
                store_dir: config.store_path_root_dir.join(format!("shard-{i}")),
                segment_bytes: config.mapped_file_size_commit_log,
                flush: config.flush_disk_type,
                flush_interval: config.flush_interval_commit_log,
                max_message_size: config.max_message_size,
                auto_create_topic_enable: config.auto_create_topic_enable,
                auto_create_subscription_group: config.auto_create_subscription_group,
                default_topic_queue_nums: config.default_topic_queue_nums,
                region_id: config.region_id.clone(),
                in_memory_ratio_percent: config.access_message_in_memory_max_ratio,
                trace_topic_enable: config.trace_topic_enable,
                register_interval: config.register_name_server_period,
                connection: petrel_shards::net::connection::ConnectionLimits {
                    shard_connections_max: connections_max.div_ceil(config.shards),
                    ..config.connection
                },
                long_polling_enable: config.long_polling_enable,
                short_polling_time: config.short_polling_time_mills,
                delay_levels: config.message_delay_level.clone(),
                transactions: config.transactions,
                index: config.index,
                retention: config.retention,
                flow: config.flow,
                tps: config.tps,
                topic_count_max: config.topic_count_max,
                split_registration_size: config.split_registration_size,
                broker_properties: config.properties(),
                acl: acl.clone(),
                inner_credentials: config.inner_credentials.clone(),
                metrics: metrics.clone(),
                lock_max_live: config.rebalance_lock_max_live_time,
                replication: ReplicationConfig {
                    role: config.broker_role,
                    broker_id: config.broker_id,
                    master_ha_addr: config.ha_master_address.clone(),
                    ha_addr: ready.ha_addr.clone(),
                    sync_flush_timeout: config.sync_flush_timeout,
                    housekeeping: config.ha_housekeeping,
                    controller: controller.clone(),
                    slave_read_enable: config.slave_read_enable,
                },
            };
            let (stop, shutdown) = shutdown_pair()?;
            let cpu = if config.shard_pinning {
                cpus.get(i).copied()
            } else {
                None
            };
            let join = shard::spawn(ShardStart {
                config: shard_config,
                listener,
                front_door,
                ha_listener: if i == 0 { ha_listener.take() } else { None },
                mesh: mesh.clone(),
                shutdown,
                cpu,
                io_memory_bytes: config.shard_io_memory_bytes,
                ready: ready_tx.clone(),
            })?;
            shards_running.push(Running { stop, join });
        }
    }
    drop(ready_tx);

    let expected = shards_running.len() + usize::from(namesrv_running.is_some());
    let mut started = 0;
    if shards_running.len() > 1 && std::env::var_os(FAULT_MESH_JOIN).is_some() && attempt() == 1 {
        return Err(start_again(&format!(
            "shard 1: {} ({FAULT_MESH_JOIN} is set)",
            shard::MESH_NOT_FORMED
        )));
    }
    while started < expected {
        match ready_rx.recv_timeout(Duration::from_secs(120)) {
            Ok((_, Ok(()))) => started += 1,
            Ok((id, Err(e))) if e.starts_with(shard::MESH_NOT_FORMED) => {
                // Nothing was served yet; stopping the other shards may hang on the same
                // lost wake-up, so the process image is replaced instead.
                return Err(start_again(&format!("shard {id}: {e}")));
            }
            Ok((id, Err(e))) => {
                let who = if id == NAMESRV_READY_ID {
                    "namesrv".to_string()
                } else {
                    format!("shard {id}")
                };
                stop_all(shards_running, namesrv_running);
                bail!("{who} failed to start: {e}");
            }
            Err(_) => {
                stop_all(shards_running, namesrv_running);
                bail!("timed out waiting for shards to start");
            }
        }
    }
    println!(
        "PETREL READY {}",
        serde_json::to_string(&ready).expect("ready line serializes")
    );
    use std::io::Write;
    let _ = std::io::stdout().flush();
    log::info!("petrel {} serving", ready.role);

    loop {
        if let Some(signal) = signals.pending().next() {
            log::info!("signal {signal}: draining and stopping");
            break;
        }
        match ready_rx.recv_timeout(Duration::from_millis(100)) {
            Ok((id, Err(e))) => {
                stop_all(shards_running, namesrv_running);
                bail!("shard {id} failed: {e}");
            }
            Ok(_) | Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {}
        }
    }
    stop_all(shards_running, namesrv_running);
    if let Some(lock) = store_lock {
        lock.release();
    }
    Ok(())
}

/// The controller's state (`enableControllerInNamesrv`), read at start-up.
fn load_controller(config: &Config) -> anyhow::Result<Option<namesrv::ControllerStart>> {
    if !config.enable_controller_in_namesrv {
        return Ok(None);
    }
    let read = |path: &std::path::Path| match std::fs::read(path) {
        Ok(bytes) => Ok(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(anyhow!("controllerStorePath {}: {e}", path.display())),
    };
    let dir = config.controller_store_path();
    let now = std::time::Instant::now();
    // A state kept before the controllers agreed by Raft seeds a new log.
    let old = dir.join("controller.json");
    let seed = namesrv::controller::Controller::load(&read(&old)?, false, now)
        .map_err(|e| anyhow!("controllerStorePath {}: {e}", old.display()))?
        .encode();
    let membership = match (&config.controller_peers, &config.controller_self_id) {
        (None, _) => namesrv::consensus::Membership::alone(),
        (Some(peers), Some(me)) => {
            namesrv::consensus::Membership::parse(peers, me).map_err(|e| anyhow!(e))?
        }
        (Some(_), None) => bail!("controllerDLegerPeers is set: controllerDLegerSelfId must say which of them this controller is"),
    };
    let peer_listener = match membership.own_addr() {
        Some(own) => Some(bind("controllerDLegerPeers (this controller's)", own.parse()?)?.0),
        None => None,
    };
    let path = dir.join("controller-raft.json");
    Ok(Some(namesrv::ControllerStart {
        controller: namesrv::controller::Controller::new(
            Default::default(),
            config.enable_elect_unclean_master,
            now,
        ),
        membership,
        log: read(&path)?,
        path,
        seed,
        peer_listener,
    }))
}

/// Stops shards first (they unregister from the name server), then the name server.
/// Makes the first start attempt fail as if shard 1's mesh had not formed (for the test of
/// starting again).
const FAULT_MESH_JOIN: &str = "PETREL_FAULT_MESH_JOIN";
/// Which start attempt this is (1 at first), kept across `start_again`.
const START_ATTEMPT: &str = "PETREL_START_ATTEMPT";
const START_ATTEMPTS: u32 = 3;

fn attempt() -> u32 {
    std::env::var(START_ATTEMPT)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
}

/// Starts the process again from the beginning (exec of its own binary with its own
/// arguments, same pid, same stdout), after a start that failed before serving anything
/// because glommio lost a wake-up while the shards formed their mesh (GLOMMIO-NOTES.md); at
/// most `START_ATTEMPTS` attempts in all. Returns only the error that stops it.
fn start_again(reason: &str) -> anyhow::Error {
    use std::os::unix::process::CommandExt;
    let attempt = attempt();
    if attempt >= START_ATTEMPTS {
        return anyhow!("{reason} (start attempt {attempt} of {START_ATTEMPTS})");
    }
    log::error!("{reason}; starting again (attempt {})", attempt + 1);
    let mut args = std::env::args_os();
    let arg0 = args.next().unwrap_or_default();
    let err = std::process::Command::new("/proc/self/exe")
        .arg0(arg0)
        .args(args)
        .env(START_ATTEMPT, (attempt + 1).to_string())
        .exec();
    anyhow!("{reason}; starting again failed: {err}")
}

fn stop_all(shards: Vec<Running>, namesrv: Option<Running>) {
    for running in shards.into_iter().chain(namesrv) {
        use std::io::Write;
        let mut stop = running.stop;
        let _ = stop.write_all(&[1]);
        drop(stop);
        if running.join.join().is_err() {
            log::error!("an executor panicked while stopping");
        }
    }
}

/// The store's lock, abort marker and broker-name binding (F31). Held while the broker runs.
struct StoreLock {
    _lock: std::fs::File,
    abort: std::path::PathBuf,
}

impl StoreLock {
    fn release(self) {
        let _ = std::fs::remove_file(&self.abort);
    }
}

#[derive(Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Binding {
    broker_name: String,
    shards: usize,
}

fn claim_store(config: &Config) -> anyhow::Result<StoreLock> {
    let root = &config.store_path_root_dir;
    std::fs::create_dir_all(root.join("config"))
        .with_context(|| format!("creating store {}", root.display()))?;
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(root.join("lock"))
        .with_context(|| format!("opening {}", root.join("lock").display()))?;
    // SAFETY: flock on a descriptor we own; it has no memory-safety preconditions.
    if unsafe {
        libc::flock(
            std::os::fd::AsRawFd::as_raw_fd(&lock),
            libc::LOCK_EX | libc::LOCK_NB,
        )
    } != 0
    {
        bail!(
            "store {} is locked by another running broker",
            root.display()
        );
    }
    check_binding(root, config)?;
    let abort = root.join("abort");
    if abort.exists() {
        log::warn!(
            "store {}: abort marker present, the last run did not stop cleanly; recovering",
            root.display()
        );
    }
    std::fs::write(&abort, b"").with_context(|| format!("writing {}", abort.display()))?;
    Ok(StoreLock { _lock: lock, abort })
}

fn check_binding(root: &Path, config: &Config) -> anyhow::Result<()> {
    let path = root.join("config").join("broker.json");
    match std::fs::read(&path) {
        Ok(bytes) => {
            let old: Binding = serde_json::from_slice(&bytes)
                .with_context(|| format!("reading {}", path.display()))?;
            if old.broker_name != config.broker_name {
                bail!(
                    "{} does not match the expected group name: {}",
                    config.broker_name,
                    old.broker_name
                );
            }
            if old.shards != config.shards {
                bail!(
                    "store {} was written by {} shards; this broker has shards={} (queues are owned by shards, so the count cannot change)",
                    root.display(),
                    old.shards,
                    config.shards
                );
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let binding = Binding {
                broker_name: config.broker_name.clone(),
                shards: config.shards,
            };
            petrel_shards::store::atomic_file::write(&path, &serde_json::to_vec_pretty(&binding)?)
                .with_context(|| format!("writing {}", path.display()))
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}
