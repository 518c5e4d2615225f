//! Topic and subscription-group configuration of one shard, in RocketMQ's JSON shapes
//! (`TopicConfig`, `SubscriptionGroupConfig`, spec §4.13), persisted atomically as
//! `topics.json` and `subscriptionGroup.json` in the shard directory.

use std::collections::{BTreeMap, BTreeSet};

use crate::store::atomic_file::read_json;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Permission bits (spec §6.12).
pub mod perm {
    pub const INHERIT: i32 = 1;
    pub const WRITE: i32 = 2;
    pub const READ: i32 = 4;
    pub const READ_WRITE: i32 = READ | WRITE;
}

/// The auto-create template topic.
pub const AUTO_CREATE_TOPIC_KEY: &str = "TBW102";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TopicConfig {
    pub topic_name: String,
    pub read_queue_nums: i32,
    pub write_queue_nums: i32,
    pub perm: i32,
    pub topic_filter_type: String,
    pub topic_sys_flag: i32,
    pub order: bool,
    pub attributes: BTreeMap<String, String>,
}

impl Default for TopicConfig {
    fn default() -> Self {
        TopicConfig {
            topic_name: String::new(),
            read_queue_nums: 16,
            write_queue_nums: 16,
            perm: perm::READ_WRITE,
            topic_filter_type: "SINGLE_TAG".into(),
            topic_sys_flag: 0,
            order: false,
            attributes: BTreeMap::new(),
        }
    }
}

impl TopicConfig {
    pub fn new(name: &str, queues: i32, perm: i32) -> TopicConfig {
        TopicConfig {
            topic_name: name.to_string(),
            read_queue_nums: queues,
            write_queue_nums: queues,
            perm,
            ..TopicConfig::default()
        }
    }

    /// Queue ids a send or pull may name: below the larger of the two counts.
    pub fn queue_count(&self) -> i32 {
        self.read_queue_nums.max(self.write_queue_nums)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SubscriptionGroupConfig {
    pub group_name: String,
    pub consume_enable: bool,
    pub consume_from_min_enable: bool,
    pub consume_broadcast_enable: bool,
    pub consume_message_orderly: bool,
    pub retry_queue_nums: i32,
    pub retry_max_times: i32,
    pub broker_id: i64,
    pub which_broker_when_consume_slowly: i64,
    pub notify_consumer_ids_changed_enable: bool,
    pub group_sys_flag: i32,
    pub consume_timeout_minute: i32,
    pub attributes: BTreeMap<String, String>,
}

impl Default for SubscriptionGroupConfig {
    fn default() -> Self {
        SubscriptionGroupConfig {
            group_name: String::new(),
            consume_enable: true,
            consume_from_min_enable: true,
            consume_broadcast_enable: true,
            consume_message_orderly: false,
            retry_queue_nums: 1,
            retry_max_times: 16,
            broker_id: 0,
            which_broker_when_consume_slowly: 1,
            notify_consumer_ids_changed_enable: true,
            group_sys_flag: 0,
            consume_timeout_minute: 15,
            attributes: BTreeMap::new(),
        }
    }
}

/// RocketMQ's `DataVersion`: bumped on every change so name servers see fresh tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DataVersion {
    pub counter: i64,
    pub state_version: i64,
    pub timestamp: i64,
}

impl Default for DataVersion {
    fn default() -> Self {
        DataVersion {
            counter: 0,
            state_version: 0,
            timestamp: now_ms(),
        }
    }
}

impl DataVersion {
    pub fn bump(&mut self) {
        self.counter += 1;
        self.timestamp = now_ms();
    }
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TopicTable {
    pub data_version: DataVersion,
    pub topic_config_table: BTreeMap<String, TopicConfig>,
    /// Topics deleted since their messages were stored: recovery must not bring them back.
    #[serde(
        rename = "petrelDeletedTopics",
        skip_serializing_if = "BTreeSet::is_empty"
    )]
    pub deleted_topics: BTreeSet<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GroupTable {
    pub data_version: DataVersion,
    pub subscription_group_table: BTreeMap<String, SubscriptionGroupConfig>,
}

/// A shard's metadata and where it is kept.
#[derive(Debug)]
pub struct Metadata {
    pub dir: PathBuf,
    pub topics: TopicTable,
    pub groups: GroupTable,
}

impl Metadata {
    /// Loads the shard's tables, creating TBW102 (when auto-create is on) as RocketMQ does.
    pub fn load(
        dir: &Path,
        auto_create_topic: bool,
        default_queue_nums: i32,
    ) -> std::io::Result<Metadata> {
        let mut topics: TopicTable = read_json(&dir.join("topics.json"))?;
        let groups: GroupTable = read_json(&dir.join("subscriptionGroup.json"))?;
        if auto_create_topic {
            topics
                .topic_config_table
                .entry(AUTO_CREATE_TOPIC_KEY.to_string())
                .or_insert_with(|| {
                    TopicConfig::new(
                        AUTO_CREATE_TOPIC_KEY,
                        default_queue_nums,
                        perm::READ_WRITE | perm::INHERIT,
                    )
                });
        } else {
            topics.topic_config_table.remove(AUTO_CREATE_TOPIC_KEY);
        }
        Ok(Metadata {
            dir: dir.to_path_buf(),
            topics,
            groups,
        })
    }

    pub fn topic(&self, name: &str) -> Option<&TopicConfig> {
        self.topics.topic_config_table.get(name)
    }

    pub fn topic_configs(&self) -> impl Iterator<Item = &TopicConfig> {
        self.topics.topic_config_table.values()
    }

    pub fn group(&self, name: &str) -> Option<&SubscriptionGroupConfig> {
        self.groups.subscription_group_table.get(name)
    }

    pub fn put_topic(&mut self, config: TopicConfig) {
        self.topics.deleted_topics.remove(&config.topic_name);
        self.topics
            .topic_config_table
            .insert(config.topic_name.clone(), config);
        self.topics.data_version.bump();
    }

    /// Removes a topic's config and remembers that it was deleted; false if it is unknown.
    pub fn remove_topic(&mut self, name: &str) -> bool {
        if self.topics.topic_config_table.remove(name).is_none() {
            return false;
        }
        self.topics.deleted_topics.insert(name.to_string());
        self.topics.data_version.bump();
        true
    }

    /// Removes a group's config; false if it is unknown.
    pub fn remove_group(&mut self, name: &str) -> bool {
        if self.groups.subscription_group_table.remove(name).is_none() {
            return false;
        }
        self.groups.data_version.bump();
        true
    }

    pub fn put_group(&mut self, config: SubscriptionGroupConfig) {
        self.groups
            .subscription_group_table
            .insert(config.group_name.clone(), config);
        self.groups.data_version.bump();
    }

    pub fn topic_count(&self) -> usize {
        self.topics.topic_config_table.len()
    }

    pub fn topics_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(&self.topics).expect("topics serialize")
    }

    pub fn groups_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(&self.groups).expect("groups serialize")
    }
}

/// Name validation (F34, spec §6.11). User-facing names allow `[A-Za-z0-9_-]`; system
/// prefixes `%RETRY%` and `%DLQ%` are allowed in front of a valid group name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("the {kind} name is blank")]
    Blank { kind: &'static str },
    #[error("the {kind} name {name:?} contains characters outside [A-Za-z0-9_-]")]
    BadChars { kind: &'static str, name: String },
    #[error("the {kind} name {name:?} is longer than {max} characters")]
    TooLong {
        kind: &'static str,
        name: String,
        max: usize,
    },
}

pub const TOPIC_NAME_MAX: usize = 127;
pub const GROUP_NAME_MAX: usize = 120;

pub fn validate_name(kind: &'static str, name: &str, max: usize) -> Result<(), NameError> {
    if name.trim().is_empty() {
        return Err(NameError::Blank { kind });
    }
    if name.len() > max {
        return Err(NameError::TooLong {
            kind,
            name: name.to_string(),
            max,
        });
    }
    let core = name
        .strip_prefix("%RETRY%")
        .or_else(|| name.strip_prefix("%DLQ%"))
        .unwrap_or(name);
    if core.is_empty()
        || !core
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(NameError::BadChars {
            kind,
            name: name.to_string(),
        });
    }
    Ok(())
}

/// Topics clients may not send to (spec §6.10).
pub fn send_forbidden(topic: &str) -> bool {
    matches!(
        topic,
        "SCHEDULE_TOPIC_XXXX"
            | "RMQ_SYS_TRANS_HALF_TOPIC"
            | "RMQ_SYS_TRANS_OP_HALF_TOPIC"
            | "TRANS_CHECK_MAX_TIME_TOPIC"
            | "SELF_TEST_TOPIC"
            | "OFFSET_MOVED_EVENT"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_outside_the_allowed_set_are_refused() {
        assert!(validate_name("topic", "Topic_A-1", TOPIC_NAME_MAX).is_ok());
        assert!(validate_name("topic", "%RETRY%group-1", TOPIC_NAME_MAX).is_ok());
        assert!(matches!(
            validate_name("topic", "a b", 127),
            Err(NameError::BadChars { .. })
        ));
        assert!(matches!(
            validate_name("topic", "a.b", 127),
            Err(NameError::BadChars { .. })
        ));
        assert!(matches!(
            validate_name("topic", "%RETRY%", 127),
            Err(NameError::BadChars { .. })
        ));
        assert!(matches!(
            validate_name("group", "", 120),
            Err(NameError::Blank { .. })
        ));
        let long = "x".repeat(128);
        assert!(matches!(
            validate_name("topic", &long, 127),
            Err(NameError::TooLong { .. })
        ));
        assert_eq!(
            validate_name("topic", "a/b", 127).unwrap_err().to_string(),
            "the topic name \"a/b\" contains characters outside [A-Za-z0-9_-]"
        );
    }

    #[test]
    fn topic_config_reads_java_json() {
        let json = r#"{"attributes":{},"order":false,"perm":6,"readQueueNums":8,"topicFilterType":"SINGLE_TAG","topicName":"T1","topicSysFlag":0,"writeQueueNums":8}"#;
        let config: TopicConfig = serde_json::from_str(json).unwrap();
        assert_eq!(config, TopicConfig::new("T1", 8, 6));
    }
}
