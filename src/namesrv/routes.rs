//! The name server's route tables (spec §10): clusters, brokers, topic queue data and broker
//! liveness. Pure state: every method takes the time it should act at, so expiry is tested
//! without waiting.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// A broker not heard from for this long is removed (`heartbeatTimeoutMillis` default).
pub const BROKER_EXPIRY: Duration = Duration::from_secs(120);

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BrokerData {
    /// brokerId → `ip:port`; serialized with quoted keys, which every client accepts.
    pub broker_addrs: BTreeMap<i64, String>,
    pub broker_name: String,
    pub cluster: String,
    pub enable_acting_master: bool,
    /// The highest controller epoch any of its replicas registered with (0 without a
    /// controller): a registration from an older epoch is stale and changes nothing.
    #[serde(skip)]
    pub epoch: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueData {
    pub broker_name: String,
    pub perm: i32,
    pub read_queue_nums: i32,
    pub topic_sys_flag: i32,
    pub write_queue_nums: i32,
}

/// A topic's queues as a broker reports them in REGISTER_BROKER.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RegisteredTopic {
    pub read_queue_nums: i32,
    pub write_queue_nums: i32,
    pub perm: i32,
    pub topic_sys_flag: i32,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TopicConfigWrapper {
    pub topic_config_table: BTreeMap<String, RegisteredTopic>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RegisterBrokerBody {
    pub topic_config_serialize_wrapper: TopicConfigWrapper,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    pub cluster: String,
    pub broker_name: String,
    pub broker_addr: String,
    pub broker_id: i64,
    /// Where its slaves connect (`haServerAddr`), for a master.
    pub ha_server_addr: String,
    /// The controller epoch the broker acts in (0 without a controller).
    pub epoch: u64,
    pub timeout: Duration,
    /// The connection it arrived on: when that closes, the broker is gone.
    pub connection_id: u64,
    /// Which part of how many this is (`petrelRegistrationPart`, `…Parts`): a broker with
    /// more topics than `splitRegistrationSize` sends them in parts, and only the last one
    /// drops the topics none of them named.
    pub part: (u32, u32),
}

struct Live {
    broker_name: String,
    broker_id: i64,
    ha_server_addr: String,
    last_update: Instant,
    timeout: Duration,
    connection_id: u64,
}

#[derive(Default)]
pub struct Routes {
    clusters: BTreeMap<String, BTreeSet<String>>,
    brokers: BTreeMap<String, BrokerData>,
    topics: BTreeMap<String, BTreeMap<String, QueueData>>,
    live: HashMap<String, Live>,
    /// Topics named so far by the parts of a registration in progress, by broker address.
    parts_seen: HashMap<String, BTreeSet<String>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TopicRouteData<'a> {
    pub broker_datas: Vec<&'a BrokerData>,
    pub filter_server_table: BTreeMap<String, Vec<String>>,
    pub queue_datas: Vec<&'a QueueData>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_topic_conf: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterInfo<'a> {
    pub broker_addr_table: &'a BTreeMap<String, BrokerData>,
    pub cluster_addr_table: &'a BTreeMap<String, BTreeSet<String>>,
}

impl Routes {
    pub fn register(
        &mut self,
        reg: &Registration,
        topics: &BTreeMap<String, RegisteredTopic>,
        now: Instant,
    ) -> bool {
        if let Some(known) = self.brokers.get(&reg.broker_name) {
            if reg.epoch < known.epoch {
                // Sent before its broker learned of a newer master: taking it would put a
                // fenced master back at brokerId 0, or drop the new one by its address.
                log::debug!(
                    "namesrv: stale registration of {} brokerId {} at {} (epoch {} < {})",
                    reg.broker_name,
                    reg.broker_id,
                    reg.broker_addr,
                    reg.epoch,
                    known.epoch
                );
                return false;
            }
        }
        self.clusters
            .entry(reg.cluster.clone())
            .or_default()
            .insert(reg.broker_name.clone());
        let broker = self
            .brokers
            .entry(reg.broker_name.clone())
            .or_insert_with(|| BrokerData {
                broker_addrs: BTreeMap::new(),
                broker_name: reg.broker_name.clone(),
                cluster: reg.cluster.clone(),
                enable_acting_master: false,
                epoch: reg.epoch,
            });
        broker.epoch = broker.epoch.max(reg.epoch);
        // The same address under another id replaces the old id (slave → master switch).
        broker
            .broker_addrs
            .retain(|id, addr| *addr != reg.broker_addr || *id == reg.broker_id);
        broker
            .broker_addrs
            .insert(reg.broker_id, reg.broker_addr.clone());
        if reg.broker_id == 0 {
            let (part, parts) = reg.part;
            if parts > 1 {
                let seen = self.parts_seen.entry(reg.broker_addr.clone()).or_default();
                if part == 0 {
                    seen.clear();
                }
                seen.extend(topics.keys().cloned());
            }
            if part + 1 >= parts {
                let seen = self.parts_seen.remove(&reg.broker_addr);
                let named = |name: &String| {
                    topics.contains_key(name) || seen.as_ref().is_some_and(|s| s.contains(name))
                };
                for (name, queues) in &mut self.topics {
                    if !named(name) {
                        queues.remove(&reg.broker_name);
                    }
                }
            }
            for (name, topic) in topics {
                let queue = QueueData {
                    broker_name: reg.broker_name.clone(),
                    perm: topic.perm,
                    read_queue_nums: topic.read_queue_nums,
                    topic_sys_flag: topic.topic_sys_flag,
                    write_queue_nums: topic.write_queue_nums,
                };
                self.topics
                    .entry(name.clone())
                    .or_default()
                    .insert(reg.broker_name.clone(), queue);
            }
            self.topics.retain(|_, queues| !queues.is_empty());
        }
        self.live.insert(
            reg.broker_addr.clone(),
            Live {
                broker_name: reg.broker_name.clone(),
                broker_id: reg.broker_id,
                last_update: now,
                timeout: reg.timeout,
                connection_id: reg.connection_id,
                ha_server_addr: reg.ha_server_addr.clone(),
            },
        );
        true
    }

    /// The live master (brokerId 0) of `broker_name`: its address and its HA address.
    pub fn master_of(&self, broker_name: &str) -> Option<(&str, &str)> {
        let addr = self.brokers.get(broker_name)?.broker_addrs.get(&0)?;
        let live = self.live.get(addr)?;
        Some((addr.as_str(), live.ha_server_addr.as_str()))
    }

    /// Removes the broker at `addr` (UNREGISTER_BROKER, expiry, closed connection).
    pub fn remove_addr(&mut self, addr: &str) {
        self.parts_seen.remove(addr);
        let Some(live) = self.live.remove(addr) else {
            return;
        };
        let name = live.broker_name;
        let Some(broker) = self.brokers.get_mut(&name) else {
            return;
        };
        broker
            .broker_addrs
            .retain(|id, a| !(a == addr && *id == live.broker_id));
        if broker.broker_addrs.is_empty() {
            let cluster = broker.cluster.clone();
            self.brokers.remove(&name);
            if let Some(names) = self.clusters.get_mut(&cluster) {
                names.remove(&name);
                if names.is_empty() {
                    self.clusters.remove(&cluster);
                }
            }
            for queues in self.topics.values_mut() {
                queues.remove(&name);
            }
            self.topics.retain(|_, queues| !queues.is_empty());
        }
        log::info!("namesrv: broker {name} at {addr} removed");
    }

    /// Removes brokers whose last registration is older than their timeout.
    pub fn expire(&mut self, now: Instant) -> Vec<String> {
        let dead: Vec<String> = self
            .live
            .iter()
            .filter(|(_, l)| now.duration_since(l.last_update) > l.timeout)
            .map(|(addr, _)| addr.clone())
            .collect();
        for addr in &dead {
            self.remove_addr(addr);
        }
        dead
    }

    pub fn connection_closed(&mut self, connection_id: u64) {
        let gone: Vec<String> = self
            .live
            .iter()
            .filter(|(_, l)| l.connection_id == connection_id)
            .map(|(a, _)| a.clone())
            .collect();
        for addr in gone {
            self.remove_addr(&addr);
        }
    }

    pub fn route(&self, topic: &str) -> Option<TopicRouteData<'_>> {
        let queues = self.topics.get(topic)?;
        let broker_datas: Vec<&BrokerData> = queues
            .keys()
            .filter_map(|name| self.brokers.get(name))
            .collect();
        if broker_datas.is_empty() {
            return None;
        }
        Some(TopicRouteData {
            broker_datas,
            filter_server_table: BTreeMap::new(),
            queue_datas: queues.values().collect(),
            order_topic_conf: None,
        })
    }

    /// Drops a topic's queue data (on the brokers of `cluster` only, if given).
    pub fn delete_topic(&mut self, topic: &str, cluster: Option<&str>) {
        let Some(queues) = self.topics.get_mut(topic) else {
            return;
        };
        match cluster.and_then(|c| self.clusters.get(c)) {
            Some(names) => queues.retain(|broker, _| !names.contains(broker)),
            None if cluster.is_some() => {}
            None => queues.clear(),
        }
        if queues.is_empty() {
            self.topics.remove(topic);
        }
    }

    pub fn cluster_info(&self) -> ClusterInfo<'_> {
        ClusterInfo {
            broker_addr_table: &self.brokers,
            cluster_addr_table: &self.clusters,
        }
    }

    pub fn topic_names(&self) -> Vec<&str> {
        self.topics.keys().map(String::as_str).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_registration_in_parts_drops_only_what_no_part_named() {
        let mut routes = Routes::default();
        let now = Instant::now();
        let part = |i, n| Registration {
            part: (i, n),
            ..reg("b-s0", "127.0.0.1:1", 1)
        };
        assert!(routes.register(&part(0, 1), &topics(&["A", "B", "C", "D"]), now));
        // A, B, then C: D is gone, but not before the last part.
        assert!(routes.register(&part(0, 3), &topics(&["A"]), now));
        assert!(routes.register(&part(1, 3), &topics(&["B"]), now));
        assert_eq!(routes.topic_names(), ["A", "B", "C", "D"]);
        assert!(routes.register(&part(2, 3), &topics(&["C"]), now));
        assert_eq!(routes.topic_names(), ["A", "B", "C"]);
        // A round that starts again forgets what an unfinished one named.
        assert!(routes.register(&part(0, 2), &topics(&["A"]), now));
        assert!(routes.register(&part(0, 2), &topics(&["B"]), now));
        assert!(routes.register(&part(1, 2), &topics(&["C"]), now));
        assert_eq!(routes.topic_names(), ["B", "C"]);
    }

    fn reg(name: &str, addr: &str, conn: u64) -> Registration {
        Registration {
            cluster: "C".into(),
            broker_name: name.into(),
            broker_addr: addr.into(),
            broker_id: 0,
            ha_server_addr: String::new(),
            epoch: 0,
            timeout: BROKER_EXPIRY,
            connection_id: conn,
            part: (0, 1),
        }
    }

    fn topics(names: &[&str]) -> BTreeMap<String, RegisteredTopic> {
        names
            .iter()
            .map(|n| {
                (
                    n.to_string(),
                    RegisteredTopic {
                        read_queue_nums: 4,
                        write_queue_nums: 4,
                        perm: 6,
                        topic_sys_flag: 0,
                    },
                )
            })
            .collect()
    }

    #[test]
    fn route_lists_every_broker_of_a_topic_with_quoted_ids() {
        let mut routes = Routes::default();
        let now = Instant::now();
        routes.register(&reg("b-s0", "127.0.0.1:1", 1), &topics(&["T"]), now);
        routes.register(&reg("b-s1", "127.0.0.1:2", 1), &topics(&["T", "U"]), now);
        let json = serde_json::to_string(&routes.route("T").unwrap()).unwrap();
        assert!(
            json.contains(r#""brokerAddrs":{"0":"127.0.0.1:1"}"#),
            "{json}"
        );
        assert!(json.contains(r#""queueDatas":[{"brokerName":"b-s0","perm":6,"readQueueNums":4,"topicSysFlag":0,"writeQueueNums":4},"#), "{json}");
        assert_eq!(routes.topic_names(), vec!["T", "U"]);
        assert!(routes.route("V").is_none());
    }

    #[test]
    fn brokers_expire_after_the_timeout_and_take_their_routes() {
        let mut routes = Routes::default();
        let t0 = Instant::now();
        routes.register(&reg("b-s0", "127.0.0.1:1", 1), &topics(&["T"]), t0);
        assert!(routes.expire(t0 + Duration::from_secs(119)).is_empty());
        assert_eq!(
            routes.expire(t0 + Duration::from_secs(121)),
            vec!["127.0.0.1:1".to_string()]
        );
        assert!(routes.route("T").is_none());
        assert!(routes.cluster_info().cluster_addr_table.is_empty());
    }

    #[test]
    fn reregistration_replaces_the_brokers_topic_set_and_close_removes_it() {
        let mut routes = Routes::default();
        let now = Instant::now();
        routes.register(&reg("b-s0", "127.0.0.1:1", 7), &topics(&["T", "U"]), now);
        routes.register(&reg("b-s0", "127.0.0.1:1", 7), &topics(&["U"]), now);
        assert!(routes.route("T").is_none());
        routes.connection_closed(7);
        assert!(routes.route("U").is_none());
    }

    #[test]
    fn a_registration_from_an_older_epoch_changes_nothing() {
        let mut routes = Routes::default();
        let now = Instant::now();
        let (old, new) = ("127.0.0.1:1", "127.0.0.1:2");
        let at = |addr: &str, id: i64, epoch: u64| Registration {
            broker_id: id,
            epoch,
            ..reg("b-s0", addr, 1)
        };
        assert!(routes.register(&at(old, 0, 2), &topics(&["T"]), now));
        assert!(routes.register(&at(new, 0, 3), &topics(&["T"]), now));
        // The fenced master's registration, in flight while it was replaced, arrives late.
        assert!(!routes.register(&at(old, 0, 2), &topics(&["T"]), now));
        assert_eq!(routes.master_of("b-s0").map(|m| m.0), Some(new));
        // Nor may a stale slave registration of the new master's address drop it.
        assert!(!routes.register(&at(new, 2, 2), &topics(&["T"]), now));
        assert!(routes.register(&at(old, 2, 3), &topics(&["T"]), now));
        let json = serde_json::to_string(&routes.route("T").unwrap()).unwrap();
        assert!(
            json.contains(r#""brokerAddrs":{"0":"127.0.0.1:2","2":"127.0.0.1:1"}"#),
            "{json}"
        );
    }
}
