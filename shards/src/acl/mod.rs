//! ACL 1.0 (F40, ops-surface §6.1): accounts of `plain_acl.yml` with their rights on topics and
//! groups, white-listed addresses, and the check every request to a broker port passes when
//! `aclEnable=true`. Stock clients sign with their own `AclClientRPCHook`; a refusal is
//! NO_PERMISSION with a remark naming what was wrong, and the request does nothing else.
//!
//! Each shard holds its own copy of the rules ([`AclWatch`]) and reloads it when the file
//! changes; nothing is shared between cores.

pub mod address;
pub mod signature;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, SystemTime};

use serde::Deserialize;

use crate::broker::clients::HeartbeatData;
use crate::remoting::{request, RemotingCommand};
use address::AddressPattern;

/// An account's keys, as a client signs with them (`petrel admin --accessKey`, a broker's
/// `innerClientAuthenticationCredentials`).
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Credentials {
    pub access_key: String,
    pub secret_key: String,
}

impl Credentials {
    /// Adds `AccessKey` and `Signature` to `cmd`.
    pub fn sign(&self, cmd: &mut RemotingCommand) {
        signature::sign_request(cmd, &self.access_key, &self.secret_key, None);
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key", &self.access_key)
            .finish_non_exhaustive()
    }
}

/// A right as `plain_acl.yml` spells it: `DENY`, `PUB`, `SUB`, `PUB|SUB` (or `SUB|PUB`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Perm(u8);

impl Perm {
    pub const DENY: Perm = Perm(1);
    pub const PUB: Perm = Perm(4);
    pub const SUB: Perm = Perm(8);

    pub fn parse(text: &str) -> Result<Perm, String> {
        match text.trim() {
            "DENY" => Ok(Perm::DENY),
            "PUB" => Ok(Perm::PUB),
            "SUB" => Ok(Perm::SUB),
            "PUB|SUB" | "SUB|PUB" => Ok(Perm(Perm::PUB.0 | Perm::SUB.0)),
            other => Err(format!(
                "`{other}` is not a right (expected DENY, PUB, SUB or PUB|SUB)"
            )),
        }
    }

    /// Whether holding `self` grants `needed`.
    fn grants(self, needed: Perm) -> bool {
        self.0 & Perm::DENY.0 == 0 && self.0 & needed.0 != 0
    }
}

/// One application user.
#[derive(Clone)]
pub struct Account {
    pub access_key: String,
    secret_key: String,
    white_remote_address: AddressPattern,
    pub admin: bool,
    default_topic_perm: Perm,
    default_group_perm: Perm,
    topic_perms: HashMap<String, Perm>,
    group_perms: HashMap<String, Perm>,
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret key: accounts end up in logs.
        f.debug_struct("Account")
            .field("access_key", &self.access_key)
            .field("admin", &self.admin)
            .finish_non_exhaustive()
    }
}

/// The rules of one `plain_acl.yml`.
#[derive(Debug, Clone, Default)]
pub struct Acl {
    global_white: Vec<AddressPattern>,
    accounts: HashMap<String, Account>,
}

/// `plain_acl.yml` as written; numbers and booleans where strings belong are taken as text
/// (a secret key of `12345678` is a YAML integer).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AclFile {
    #[serde(default)]
    global_white_remote_addresses: Vec<serde_yaml_ng::Value>,
    #[serde(default)]
    accounts: Vec<AccountFile>,
    /// Kept by RocketMQ's remote editing; read and ignored.
    #[serde(default)]
    #[allow(dead_code, reason = "accepted so RocketMQ's files load")]
    data_version: serde_yaml_ng::Value,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AccountFile {
    access_key: serde_yaml_ng::Value,
    secret_key: serde_yaml_ng::Value,
    #[serde(default)]
    white_remote_address: serde_yaml_ng::Value,
    #[serde(default)]
    admin: bool,
    #[serde(default)]
    default_topic_perm: Option<String>,
    #[serde(default)]
    default_group_perm: Option<String>,
    #[serde(default)]
    topic_perms: Vec<String>,
    #[serde(default)]
    group_perms: Vec<String>,
}

fn text(value: &serde_yaml_ng::Value) -> Option<String> {
    match value {
        serde_yaml_ng::Value::String(s) => Some(s.clone()),
        serde_yaml_ng::Value::Number(n) => Some(n.to_string()),
        serde_yaml_ng::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// `name=RIGHT` lines of `topicPerms` / `groupPerms`.
fn rights(lines: &[String], what: &str, who: &str) -> Result<HashMap<String, Perm>, String> {
    lines
        .iter()
        .map(|line| {
            let (name, perm) = line
                .split_once('=')
                .ok_or_else(|| format!("account {who}: {what} `{line}` is not name=RIGHT"))?;
            let perm = Perm::parse(perm).map_err(|e| format!("account {who}: {what} {e}"))?;
            Ok((name.trim().to_string(), perm))
        })
        .collect()
}

impl Acl {
    pub fn parse(yaml: &str) -> Result<Acl, String> {
        let file: AclFile = serde_yaml_ng::from_str(yaml).map_err(|e| e.to_string())?;
        let mut global_white = Vec::new();
        for value in &file.global_white_remote_addresses {
            let pattern = text(value)
                .ok_or("globalWhiteRemoteAddresses holds something that is not an address")?;
            global_white.push(
                AddressPattern::parse(&pattern)
                    .map_err(|e| format!("globalWhiteRemoteAddresses: {e}"))?,
            );
        }
        let mut accounts = HashMap::new();
        for (i, account) in file.accounts.iter().enumerate() {
            let access_key = text(&account.access_key)
                .filter(|k| !k.is_empty())
                .ok_or(format!("account {}: accessKey is missing", i + 1))?;
            let secret_key = text(&account.secret_key)
                .filter(|k| !k.is_empty())
                .ok_or(format!("account {access_key}: secretKey is missing"))?;
            let white = match &account.white_remote_address {
                serde_yaml_ng::Value::Null => AddressPattern::default(),
                value => AddressPattern::parse(&text(value).unwrap_or_default())
                    .map_err(|e| format!("account {access_key}: whiteRemoteAddress: {e}"))?,
            };
            let default = |perm: &Option<String>, what: &str| match perm {
                None => Ok(Perm::DENY),
                Some(p) => Perm::parse(p).map_err(|e| format!("account {access_key}: {what} {e}")),
            };
            let parsed = Account {
                white_remote_address: white,
                admin: account.admin,
                default_topic_perm: default(&account.default_topic_perm, "defaultTopicPerm")?,
                default_group_perm: default(&account.default_group_perm, "defaultGroupPerm")?,
                topic_perms: rights(&account.topic_perms, "topicPerms", &access_key)?,
                group_perms: rights(&account.group_perms, "groupPerms", &access_key)?,
                access_key: access_key.clone(),
                secret_key,
            };
            if accounts.insert(access_key.clone(), parsed).is_some() {
                return Err(format!("account {access_key} is listed twice"));
            }
        }
        Ok(Acl {
            global_white,
            accounts,
        })
    }

    pub fn load(path: &Path) -> Result<Acl, String> {
        let yaml = std::fs::read_to_string(path)
            .map_err(|e| format!("reading ACL file {}: {e}", path.display()))?;
        Acl::parse(&yaml).map_err(|e| format!("ACL file {}: {e}", path.display()))
    }

    pub fn accounts(&self) -> usize {
        self.accounts.len()
    }

    /// The account `cmd` is signed by, or `None` when `peer` is white-listed, globally or for
    /// the account named (ops-surface §6.1, steps 1–5: either allows the whole request); `Err`
    /// holds the remark of a refusal.
    fn authenticate(
        &self,
        peer: IpAddr,
        cmd: &RemotingCommand,
    ) -> Result<Option<&Account>, String> {
        if self.global_white.iter().any(|p| p.matches(peer)) {
            return Ok(None);
        }
        let access_key = cmd
            .ext_fields
            .get(signature::ACCESS_KEY)
            .ok_or("No accessKey is configured")?;
        let account = self
            .accounts
            .get(access_key)
            .ok_or_else(|| format!("No acl config for {access_key}"))?;
        if account.white_remote_address.matches(peer) {
            return Ok(None);
        }
        if !signature::verify(cmd, &account.secret_key) {
            return Err(format!("Check signature failed for accessKey={access_key}"));
        }
        Ok(Some(account))
    }

    /// Checks a request that changes a name server's state (registrations, topic deletions,
    /// KV changes, controller requests): only an admin account, or a white-listed address.
    pub fn check_admin(&self, peer: IpAddr, cmd: &RemotingCommand) -> Result<(), String> {
        match self.authenticate(peer, cmd)? {
            Some(account) if !account.admin => Err(format!(
                "accessKey={} is not an admin: request code {} needs one",
                account.access_key, cmd.code
            )),
            _ => Ok(()),
        }
    }

    /// Checks one request from `peer` to a broker: `Err` holds the remark of the refusal (the
    /// order of ops-surface §6.1).
    pub fn check(&self, peer: IpAddr, cmd: &RemotingCommand) -> Result<(), String> {
        let Some(account) = self.authenticate(peer, cmd)? else {
            return Ok(());
        };
        let access_key = &account.access_key;
        if account.admin {
            return Ok(());
        }
        if needs_admin(cmd.code) {
            return Err(format!(
                "accessKey={access_key} is not an admin: request code {} needs one",
                cmd.code
            ));
        }
        let touched = resources(cmd)?;
        if let [(Resource::Topic(t), Perm::PUB)] = touched.as_slice() {
            if t == TRACE_TOPIC {
                return Ok(()); // message traces are written by every producer that traces
            }
        }
        for (resource, needed) in touched {
            let held = match &resource {
                Resource::Topic(t) => account.topic_perms.get(t.as_str()),
                Resource::Group(g) => account.group_perms.get(g.as_str()),
            };
            let held = held.copied().unwrap_or(match resource {
                Resource::Topic(_) => account.default_topic_perm,
                Resource::Group(_) => account.default_group_perm,
            });
            if !held.grants(needed) {
                let (kind, name) = match &resource {
                    Resource::Topic(t) => ("topic", t),
                    Resource::Group(g) => ("group", g),
                };
                let right = if needed == Perm::PUB { "PUB" } else { "SUB" };
                return Err(format!(
                    "accessKey={access_key} has no {right} right on {kind} {name}"
                ));
            }
        }
        Ok(())
    }
}

/// The default topic of message traces, which any authenticated producer may write.
const TRACE_TOPIC: &str = "RMQ_SYS_TRACE_TOPIC";

/// Where a broker's rules come from (`aclFile`), and the rules read there at start.
#[derive(Debug, Clone)]
pub struct AclConfig {
    pub path: PathBuf,
    pub rules: Acl,
}

/// Requests only an admin account may make: they change or remove topics, groups, the
/// broker's configuration or stored data.
fn needs_admin(code: i32) -> bool {
    matches!(
        code,
        request::UPDATE_AND_CREATE_TOPIC
            | request::UPDATE_BROKER_CONFIG
            | request::DELETE_TOPIC_IN_BROKER
            | request::UPDATE_AND_CREATE_SUBSCRIPTIONGROUP
            | request::DELETE_SUBSCRIPTIONGROUP
            | request::INVOKE_BROKER_TO_RESET_OFFSET
            | request::DELETE_EXPIRED_COMMITLOG
    )
}

#[derive(Debug, PartialEq, Eq)]
enum Resource {
    Topic(String),
    Group(String),
}

/// A topic as a resource: a retry topic stands for its group.
fn topic(name: &str) -> Resource {
    match name.strip_prefix("%RETRY%") {
        Some(group) => Resource::Group(group.to_string()),
        None => Resource::Topic(name.to_string()),
    }
}

/// What `cmd` reads or writes, with the right each needs (ops-surface §6.1's table).
fn resources(cmd: &RemotingCommand) -> Result<Vec<(Resource, Perm)>, String> {
    let field = |name: &str| {
        cmd.ext_fields
            .get(name)
            .map(str::to_string)
            .ok_or_else(|| format!("request code {} lacks its `{name}` field", cmd.code))
    };
    let group = |name: &str| field(name).map(|g| (Resource::Group(g), Perm::SUB));
    let read = |name: &str| field(name).map(|t| (topic(&t), Perm::SUB));
    let sent = |name: &str| {
        field(name).map(|t| {
            let resource = topic(&t);
            let needed = match resource {
                Resource::Group(_) => Perm::SUB,
                Resource::Topic(_) => Perm::PUB,
            };
            (resource, needed)
        })
    };
    Ok(match cmd.code {
        request::SEND_MESSAGE => vec![sent("topic")?],
        request::SEND_MESSAGE_V2 | request::SEND_BATCH_MESSAGE => vec![sent("b")?],
        request::CONSUMER_SEND_MSG_BACK => vec![group("group")?],
        request::PULL_MESSAGE | request::LITE_PULL_MESSAGE => {
            vec![read("topic")?, group("consumerGroup")?]
        }
        request::QUERY_MESSAGE => vec![read("topic")?],
        // A producer unregisters without a consumer group: nothing of a group's is touched.
        request::UNREGISTER_CLIENT | request::GET_CONSUMER_LIST_BY_GROUP => {
            match cmd.ext_fields.get("consumerGroup") {
                Some(g) if !g.is_empty() => vec![(Resource::Group(g.to_string()), Perm::SUB)],
                _ => Vec::new(),
            }
        }
        request::UPDATE_CONSUMER_OFFSET => vec![group("consumerGroup")?, read("topic")?],
        request::HEART_BEAT => {
            let data: HeartbeatData = serde_json::from_slice(&cmd.body)
                .map_err(|e| format!("heartbeat body is not a heartbeat: {e}"))?;
            let mut touched = Vec::new();
            for consumer in data.consumer_data_set {
                for subscription in &consumer.subscription_data_set {
                    touched.push((topic(&subscription.topic), Perm::SUB));
                }
                touched.push((Resource::Group(consumer.group_name), Perm::SUB));
            }
            touched
        }
        _ => Vec::new(),
    })
}

/// A shard's copy of the rules, reloaded when the file's modification time changes.
pub struct AclWatch {
    path: PathBuf,
    acl: RefCell<Rc<Acl>>,
    /// The file's modification time and length when last read.
    modified: Cell<Option<(SystemTime, u64)>>,
}

/// What tells one version of the file from the next: its modification time and its length
/// (a file rewritten in place within one tick of the clock changes length, mostly).
fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

impl AclWatch {
    pub fn new(config: AclConfig) -> AclWatch {
        let modified = stamp(&config.path);
        AclWatch {
            path: config.path,
            acl: RefCell::new(Rc::new(config.rules)),
            modified: Cell::new(modified),
        }
    }

    pub fn current(&self) -> Rc<Acl> {
        self.acl.borrow().clone()
    }

    /// Reloads the file if it changed since it was last read. A file that no longer parses
    /// keeps the rules in force and is reported; `shard` names who says so.
    pub fn reload_if_changed(&self, shard: usize) {
        let modified = stamp(&self.path);
        if modified == self.modified.get() {
            return;
        }
        self.modified.set(modified);
        match Acl::load(&self.path) {
            Ok(acl) => {
                log::info!(
                    "shard {shard}: ACL file {} reloaded ({} accounts)",
                    self.path.display(),
                    acl.accounts()
                );
                *self.acl.borrow_mut() = Rc::new(acl);
            }
            Err(e) => log::error!("shard {shard}: {e}; the rules loaded before stay in force"),
        }
    }

    /// Watches the file every `period` until the task is dropped.
    pub async fn run(self: Rc<Self>, shard: usize, period: Duration) {
        loop {
            glommio::timer::sleep(period).await;
            self.reload_if_changed(shard);
        }
    }
}

#[cfg(test)]
mod tests;
