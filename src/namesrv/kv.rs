//! The name server's KV store (PUT_KV_CONFIG and friends, spec §4.12): namespace → key →
//! value, persisted in `kvConfigPath` as RocketMQ writes it (`{"configTable":{…}}`). The one
//! namespace with a meaning is `ORDER_TOPIC_CONFIG`: a topic's `brokerName:queueNums;…`,
//! returned in its route as `orderTopicConf` when `orderMessageEnable` is on.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub const ORDER_TOPIC_CONFIG: &str = "ORDER_TOPIC_CONFIG";

pub type Table = BTreeMap<String, BTreeMap<String, String>>;

#[derive(Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OnDisk {
    #[serde(default)]
    config_table: Table,
}

pub struct KvConfig {
    path: PathBuf,
    table: Table,
}

impl KvConfig {
    /// Reads `path`; a missing file is an empty store, a damaged one an error naming it.
    pub fn load(path: &Path) -> Result<KvConfig, String> {
        let table = petrel_shards::store::atomic_file::read_json::<OnDisk>(path)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::InvalidData => e.to_string(),
                _ => format!("{}: {e}", path.display()),
            })?
            .config_table;
        Ok(KvConfig {
            path: path.to_path_buf(),
            table,
        })
    }

    pub fn get(&self, namespace: &str, key: &str) -> Option<&str> {
        self.table.get(namespace)?.get(key).map(String::as_str)
    }

    pub fn namespace(&self, namespace: &str) -> Option<&BTreeMap<String, String>> {
        self.table.get(namespace).filter(|t| !t.is_empty())
    }

    pub fn put(&mut self, namespace: &str, key: &str, value: &str) {
        self.table
            .entry(namespace.to_string())
            .or_default()
            .insert(key.to_string(), value.to_string());
    }

    /// True if something was removed.
    pub fn delete(&mut self, namespace: &str, key: &str) -> bool {
        let Some(t) = self.table.get_mut(namespace) else {
            return false;
        };
        let removed = t.remove(key).is_some();
        if t.is_empty() {
            self.table.remove(namespace);
        }
        removed
    }

    /// The file and its bytes, for a write off the executor.
    pub fn snapshot(&self) -> (PathBuf, Vec<u8>) {
        let bytes = serde_json::to_vec_pretty(&OnDisk {
            config_table: self.table.clone(),
        })
        .expect("kv table serializes");
        (self.path.clone(), bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_through_the_file_and_damage_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kvConfig.json");
        let mut kv = KvConfig::load(&path).unwrap();
        kv.put(ORDER_TOPIC_CONFIG, "T", "b-s0:1");
        kv.put("NS", "k", "v");
        assert!(kv.delete("NS", "k"));
        assert!(!kv.delete("NS", "k"));
        let (p, bytes) = kv.snapshot();
        petrel_shards::store::atomic_file::write(&p, &bytes).unwrap();
        let again = KvConfig::load(&path).unwrap();
        assert_eq!(again.get(ORDER_TOPIC_CONFIG, "T"), Some("b-s0:1"));
        assert!(again.namespace("NS").is_none());
        std::fs::write(&path, b"{oops").unwrap();
        let err = KvConfig::load(&path).err().unwrap();
        assert!(err.contains("kvConfig.json"), "{err}");
    }
}
