//! The broker's configuration over the wire (F38), as mqadmin getBrokerConfig and
//! updateBrokerConfig use it.
//!
//! GET_BROKER_CONFIG (26) answers every key with the value in force, as `key=value` lines.
//! UPDATE_BROKER_CONFIG (25) carries `key=value` lines (Java properties) and changes the keys
//! that can change while the broker runs, on every shard of the process, all or nothing: a
//! key read only at start-up, an unknown key or a bad value refuses the whole update with a
//! remark naming it. A shard that gets one forwards it to shard 0, which applies it, tells the
//! other shards over the mesh, and keeps every key changed so far in
//! `<storePathRootDir>/config/runtime.properties`, which the next start reads after
//! broker.conf.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::rc::Rc;

use bytes::Bytes;

use super::metadata::DataVersion;
use super::throttle::TpsConfig;
use super::{Shard, ShardConfig};
use crate::net::Connection;
use crate::remoting::{response, RemotingCommand};
use crate::store::flow::FlowConfig;
use crate::store::retention::RetentionConfig;

/// Marks an update shard 0 passes to the other shards: apply it here, tell no one.
const APPLY_HERE: &str = "petrelApplyHere";

/// Keys besides retention's, flow control's and the TPS limits' that change while running.
const LIVE_SWITCHES: [&str; 3] = [
    "autoCreateTopicEnable",
    "autoCreateSubscriptionGroup",
    "slaveReadEnable",
];

pub struct BrokerConfig {
    /// Every key as the process started, in order.
    start: Vec<(String, String)>,
    /// Keys changed at runtime, with their values (also those read back from the file).
    changed: RefCell<BTreeMap<String, String>>,
    version: RefCell<DataVersion>,
    path: PathBuf,
    persisting: Cell<bool>,
    pub auto_create_topic: Cell<bool>,
    pub auto_create_group: Cell<bool>,
    pub slave_read: Cell<bool>,
}

impl BrokerConfig {
    /// The shard's configuration at start-up, with the keys read back from the runtime file.
    pub fn new(config: &ShardConfig) -> BrokerConfig {
        let store_dir = &config.store_dir;
        let root = store_dir.parent().unwrap_or(store_dir);
        let path = root.join("config").join("runtime.properties");
        let changed = read_changed(&path);
        BrokerConfig {
            auto_create_topic: Cell::new(config.auto_create_topic_enable),
            auto_create_group: Cell::new(config.auto_create_subscription_group),
            slave_read: Cell::new(config.replication.slave_read_enable),
            start: config.broker_properties.clone(),
            changed: RefCell::new(changed),
            version: RefCell::new(DataVersion::default()),
            path,
            persisting: Cell::new(false),
        }
    }

    /// Every key with the value in force, as `key=value` lines.
    fn text(&self) -> String {
        let changed = self.changed.borrow();
        let mut out = String::new();
        for (key, value) in &self.start {
            let value = changed.get(key).unwrap_or(value);
            out.push_str(&format!("{key}={value}\n"));
        }
        out
    }
}

#[allow(
    clippy::disallowed_methods,
    reason = "start-up, before the shard serves"
)]
fn read_changed(path: &std::path::Path) -> BTreeMap<String, String> {
    std::fs::File::open(path)
        .ok()
        .and_then(|f| java_properties::read(std::io::BufReader::new(f)).ok())
        .map(|m| m.into_iter().collect())
        .unwrap_or_default()
}

/// One key's new value, checked.
enum Change {
    Retention(RetentionConfig),
    Flow(FlowConfig),
    Tps(TpsConfig),
    Switch(&'static str, bool),
}

/// Checks every pair before anything changes: the changes to make, or why none is made.
fn plan(shard: &Shard, pairs: &[(String, String)]) -> Result<Vec<Change>, String> {
    let mut retention = shard.store.retention();
    let mut flow = shard.store.flow();
    let mut tps = shard.throttle.config();
    let mut changes = Vec::new();
    for (key, value) in pairs {
        let value = value.trim();
        let shared = retention
            .set(key, value)
            .or_else(|| flow.set(key, value))
            .or_else(|| tps.set(key, value));
        if let Some(result) = shared {
            result.map_err(|reason| format!("{key}={value}: {reason}"))?;
            continue;
        }
        if let Some(switch) = LIVE_SWITCHES.iter().find(|k| **k == key) {
            let on = match value {
                "true" => true,
                "false" => false,
                _ => return Err(format!("{key}={value}: expected true or false")),
            };
            changes.push(Change::Switch(switch, on));
            continue;
        }
        if shard.broker_config.start.iter().any(|(k, _)| k == key) {
            return Err(format!(
                "{key} is read at start-up only: change it in broker.conf and restart"
            ));
        }
        return Err(format!("{key} is not a broker config key"));
    }
    if retention != shard.store.retention() {
        changes.push(Change::Retention(retention));
    }
    if flow != shard.store.flow() {
        changes.push(Change::Flow(flow));
    }
    if tps != shard.throttle.config() {
        changes.push(Change::Tps(tps));
    }
    Ok(changes)
}

fn apply(shard: &Shard, pairs: &[(String, String)]) -> Result<(), String> {
    let changes = plan(shard, pairs)?;
    let live = &shard.broker_config;
    for change in changes {
        match change {
            Change::Retention(r) => shard.store.set_retention(r),
            Change::Flow(f) => shard.store.set_flow(f),
            Change::Tps(t) => shard.throttle.set_config(t),
            Change::Switch("autoCreateTopicEnable", on) => {
                live.auto_create_topic.set(on);
                if on {
                    shard.ensure_auto_create_topic();
                }
            }
            Change::Switch("autoCreateSubscriptionGroup", on) => live.auto_create_group.set(on),
            Change::Switch(_, on) => live.slave_read.set(on),
        }
    }
    let mut changed = live.changed.borrow_mut();
    for (key, value) in pairs {
        changed.insert(key.clone(), value.trim().to_string());
    }
    live.version.borrow_mut().bump();
    Ok(())
}

pub fn get(shard: &Shard, cmd: &RemotingCommand) -> RemotingCommand {
    let live = &shard.broker_config;
    let version = serde_json::to_string(&*live.version.borrow()).expect("version serializes");
    RemotingCommand::response(response::SUCCESS, cmd.opaque)
        .with_field("version", version)
        .with_body(Bytes::from(live.text()))
}

/// UPDATE_BROKER_CONFIG: answered through `conn` once every shard applied it.
pub fn update(shard: &Shard, conn: &Rc<Connection>, cmd: &RemotingCommand) {
    let answer = |code: i32, remark: Option<String>| {
        let reply = RemotingCommand::response(code, cmd.opaque);
        match remark {
            Some(r) => reply.with_remark(r),
            None => reply,
        }
    };
    let pairs = match java_properties::read(&cmd.body[..]) {
        Ok(map) => {
            let mut pairs: Vec<(String, String)> = map.into_iter().collect();
            pairs.sort();
            pairs
        }
        Err(e) => {
            let reply = answer(
                response::INVALID_PARAMETER,
                Some(format!(
                    "updateBrokerConfig: the body is not key=value lines: {e}"
                )),
            );
            return conn.send(&reply);
        }
    };
    let here_only = cmd.field(APPLY_HERE).is_some();
    let mesh = shard.mesh.clone();
    if !here_only && shard.config.shard_id != 0 {
        // Shard 0 decides, so that updates are applied and kept in one order.
        let Some(mesh) = mesh else {
            let reply = answer(response::SYSTEM_ERROR, Some("no mesh to shard 0".into()));
            return conn.send(&reply);
        };
        let (conn, cmd) = (conn.clone(), cmd.clone());
        glommio::spawn_local(async move {
            let reply = match mesh.call(0, &cmd).await {
                Ok(reply) => RemotingCommand {
                    opaque: cmd.opaque,
                    ..reply
                },
                Err(e) => RemotingCommand::response(response::SYSTEM_ERROR, cmd.opaque)
                    .with_remark(e.to_string()),
            };
            conn.send(&reply);
        })
        .detach();
        return;
    }
    if let Err(reason) = apply(shard, &pairs) {
        log::warn!(
            "shard {}: updateBrokerConfig refused: {reason}",
            shard.config.shard_id
        );
        let reply = answer(
            response::INVALID_PARAMETER,
            Some(format!("updateBrokerConfig: {reason}")),
        );
        return conn.send(&reply);
    }
    if here_only {
        return conn.send(&answer(response::SUCCESS, None));
    }
    log::info!(
        "shard 0: broker config updated: {}",
        pairs
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let others: Vec<usize> = (1..shard.config.shard_count).collect();
    let mut forward = cmd.clone();
    forward.ext_fields.insert(APPLY_HERE, "true");
    let (conn, opaque) = (conn.clone(), cmd.opaque);
    let live = shard.broker_config.clone();
    glommio::spawn_local(async move {
        let mut failure = None;
        if let Some(mesh) = mesh {
            for i in others {
                match mesh.call(i, &forward).await {
                    Ok(r) if r.code == response::SUCCESS => {}
                    Ok(r) => failure = Some(format!("shard {i}: {}", r.remark.unwrap_or_default())),
                    Err(e) => failure = Some(format!("shard {i}: {e}")),
                }
            }
        }
        if let Err(e) = persist(&live).await {
            failure.get_or_insert(format!("keeping the change failed: {e}"));
        }
        let reply = match failure {
            None => RemotingCommand::response(response::SUCCESS, opaque),
            Some(why) => {
                log::error!("shard 0: updateBrokerConfig: {why}");
                RemotingCommand::response(response::SYSTEM_ERROR, opaque)
                    .with_remark(format!("updateBrokerConfig: {why}"))
            }
        };
        conn.send(&reply);
    })
    .detach();
}

/// Writes every key changed so far; one write at a time, each with the keys changed by then,
/// so the last write has them all.
async fn persist(live: &BrokerConfig) -> std::io::Result<()> {
    while live.persisting.replace(true) {
        glommio::timer::sleep(std::time::Duration::from_millis(5)).await;
    }
    let mut text =
        String::from("# Keys changed at runtime (UPDATE_BROKER_CONFIG); read after broker.conf.\n");
    for (k, v) in live.changed.borrow().iter() {
        text.push_str(&format!("{k}={v}\n"));
    }
    let result =
        crate::store::atomic_file::write_off_shard(live.path.clone(), text.into_bytes()).await;
    live.persisting.set(false);
    result
}
