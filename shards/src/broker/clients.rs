//! The producers and consumers connected to one shard, learned from HEART_BEAT (spec §4.5).
//! Each client heartbeats every broker it uses, so local knowledge is complete for
//! GET_CONSUMER_LIST_BY_GROUP. A channel is dropped on UNREGISTER_CLIENT, when its connection
//! closes, or after 120 s without a heartbeat.

use std::collections::{BTreeMap, HashMap};
use std::rc::{Rc, Weak};
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::net::Connection;

/// Channels silent this long are dropped (`channelExpiredTimeout`).
pub const CHANNEL_EXPIRY: Duration = Duration::from_secs(120);

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", default)]
pub struct SubscriptionData {
    pub topic: String,
    pub sub_string: String,
    pub tags_set: Vec<String>,
    pub code_set: Vec<i64>,
    pub sub_version: i64,
    pub expression_type: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ConsumerData {
    pub group_name: String,
    pub consume_type: Option<String>,
    pub message_model: Option<String>,
    pub consume_from_where: Option<String>,
    pub subscription_data_set: Vec<SubscriptionData>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ProducerData {
    pub group_name: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct HeartbeatData {
    #[serde(rename = "clientID")]
    pub client_id: String,
    #[serde(rename = "producerDataSet")]
    pub producer_data_set: Vec<ProducerData>,
    #[serde(rename = "consumerDataSet")]
    pub consumer_data_set: Vec<ConsumerData>,
}

struct Channel {
    client_id: String,
    conn: Weak<Connection>,
    conn_id: u64,
    last_seen: Instant,
    /// The client's address, language and version, for connection lists.
    addr: String,
    language: String,
    version: i32,
}

/// One live client of a group, as consumerConnection and producerConnection list them.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientConnection {
    pub client_addr: String,
    pub client_id: String,
    pub language: String,
    pub version: i32,
}

#[derive(Default)]
pub struct ConsumerGroup {
    channels: Vec<Channel>,
    pub message_model: String,
    pub consume_type: String,
    pub consume_from_where: String,
    pub subscriptions: BTreeMap<String, SubscriptionData>,
}

impl ConsumerGroup {
    pub fn is_broadcasting(&self) -> bool {
        self.message_model.eq_ignore_ascii_case("BROADCASTING")
    }
}

#[derive(Default)]
pub struct Clients {
    consumers: HashMap<String, ConsumerGroup>,
    producers: HashMap<String, Vec<Channel>>,
}

/// What a heartbeat changed for one consumer group.
pub struct GroupChange {
    pub group: String,
    pub membership_changed: bool,
}

impl Clients {
    /// Registers a heartbeat from `conn`. Returns the consumer groups whose members or
    /// subscriptions changed (they must be notified).
    pub fn heartbeat(
        &mut self,
        conn: &Rc<Connection>,
        data: &HeartbeatData,
        client: ClientInfo,
    ) -> Vec<GroupChange> {
        let now = Instant::now();
        let touch =
            |channels: &mut Vec<Channel>| touch(channels, conn, &data.client_id, now, client);
        for producer in &data.producer_data_set {
            let channels = self
                .producers
                .entry(producer.group_name.clone())
                .or_default();
            touch(channels);
        }
        let mut changes = Vec::new();
        for consumer in &data.consumer_data_set {
            let group = self
                .consumers
                .entry(consumer.group_name.clone())
                .or_default();
            let new_member = touch(&mut group.channels);
            group.message_model = consumer
                .message_model
                .clone()
                .unwrap_or_else(|| "CLUSTERING".into());
            group.consume_type = consumer.consume_type.clone().unwrap_or_default();
            group.consume_from_where = consumer.consume_from_where.clone().unwrap_or_default();
            let mut subs_changed = false;
            for sub in &consumer.subscription_data_set {
                match group.subscriptions.get(&sub.topic) {
                    None => {
                        group.subscriptions.insert(sub.topic.clone(), sub.clone());
                        subs_changed = true;
                    }
                    Some(old) if sub.sub_version > old.sub_version => {
                        subs_changed |= old.sub_string != sub.sub_string;
                        group.subscriptions.insert(sub.topic.clone(), sub.clone());
                    }
                    Some(_) => {}
                }
            }
            let before = group.subscriptions.len();
            group.subscriptions.retain(|topic, _| {
                consumer
                    .subscription_data_set
                    .iter()
                    .any(|s| &s.topic == topic)
            });
            subs_changed |= before != group.subscriptions.len();
            if new_member || subs_changed {
                changes.push(GroupChange {
                    group: consumer.group_name.clone(),
                    membership_changed: new_member,
                });
            }
        }
        changes
    }

    /// Removes `client_id` from the named groups; returns consumer groups that changed.
    pub fn unregister(
        &mut self,
        client_id: &str,
        producer_group: Option<&str>,
        consumer_group: Option<&str>,
    ) -> Vec<String> {
        if let Some(group) = producer_group {
            if let Some(channels) = self.producers.get_mut(group) {
                channels.retain(|c| c.client_id != client_id);
            }
        }
        let mut changed = Vec::new();
        if let Some(name) = consumer_group {
            if let Some(group) = self.consumers.get_mut(name) {
                let before = group.channels.len();
                group.channels.retain(|c| c.client_id != client_id);
                if group.channels.len() != before {
                    changed.push(name.to_string());
                }
            }
        }
        self.drop_empty();
        changed
    }

    /// Removes every channel of a closed connection; returns consumer groups that changed.
    pub fn connection_closed(&mut self, conn_id: u64) -> Vec<String> {
        self.remove_where(|c| c.conn_id == conn_id)
    }

    /// Removes channels silent for longer than `CHANNEL_EXPIRY`.
    pub fn expire(&mut self, now: Instant) -> Vec<String> {
        self.remove_where(|c| now.duration_since(c.last_seen) > CHANNEL_EXPIRY)
    }

    fn remove_where(&mut self, dead: impl Fn(&Channel) -> bool) -> Vec<String> {
        for channels in self.producers.values_mut() {
            channels.retain(|c| !dead(c));
        }
        let mut changed = Vec::new();
        for (name, group) in &mut self.consumers {
            let before = group.channels.len();
            group.channels.retain(|c| !dead(c));
            if group.channels.len() != before {
                changed.push(name.clone());
            }
        }
        self.drop_empty();
        changed
    }

    fn drop_empty(&mut self) {
        self.consumers.retain(|_, g| !g.channels.is_empty());
        self.producers.retain(|_, c| !c.is_empty());
    }

    pub fn consumer_group(&self, group: &str) -> Option<&ConsumerGroup> {
        self.consumers.get(group)
    }

    /// Client ids of the live members of `group`.
    pub fn consumer_ids(&self, group: &str) -> Vec<String> {
        let Some(g) = self.consumers.get(group) else {
            return Vec::new();
        };
        let mut ids: Vec<String> = g.channels.iter().map(|c| c.client_id.clone()).collect();
        ids.sort();
        ids.dedup();
        ids
    }

    /// A live connection of producer group `group`; `pick` chooses among several, so that
    /// repeated calls can spread over them.
    pub fn producer_connection(&self, group: &str, pick: usize) -> Option<Rc<Connection>> {
        let live: Vec<Rc<Connection>> = self
            .producers
            .get(group)?
            .iter()
            .filter_map(|c| c.conn.upgrade())
            .collect();
        (!live.is_empty()).then(|| live[pick % live.len()].clone())
    }

    /// The live clients of consumer group `group`.
    pub fn consumer_clients(&self, group: &str) -> Vec<ClientConnection> {
        self.consumers
            .get(group)
            .map_or_else(Vec::new, |g| listed(&g.channels))
    }

    /// The live clients of producer group `group`.
    pub fn producer_clients(&self, group: &str) -> Vec<ClientConnection> {
        self.producers
            .get(group)
            .map_or_else(Vec::new, |c| listed(c))
    }

    /// The consumer groups with a live member subscribed to `topic`.
    pub fn groups_subscribed_to(&self, topic: &str) -> std::collections::BTreeSet<String> {
        self.consumers
            .iter()
            .filter(|(_, g)| g.subscriptions.contains_key(topic) && !g.channels.is_empty())
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// A consumer group with a live member subscribed to `topic`, if any.
    pub fn consumer_of(&self, topic: &str) -> Option<&str> {
        self.consumers
            .iter()
            .find(|(_, g)| g.subscriptions.contains_key(topic) && !g.channels.is_empty())
            .map(|(name, _)| name.as_str())
    }

    pub fn producer_online(&self, group: &str) -> bool {
        self.producers.get(group).is_some_and(|c| !c.is_empty())
    }

    /// The connection of the member `client_id` of consumer group `group`, if it is online.
    pub fn consumer_channel(&self, group: &str, client_id: &str) -> Option<Rc<Connection>> {
        self.consumers
            .get(group)?
            .channels
            .iter()
            .find(|c| c.client_id == client_id)
            .and_then(|c| c.conn.upgrade())
    }

    /// The online members of consumer group `group`: client id and connection.
    pub fn consumer_members(&self, group: &str) -> Vec<(String, Rc<Connection>)> {
        let Some(g) = self.consumers.get(group) else {
            return Vec::new();
        };
        g.channels
            .iter()
            .filter_map(|c| Some((c.client_id.clone(), c.conn.upgrade()?)))
            .collect()
    }

    /// Connections of the members of `group`, for NOTIFY_CONSUMER_IDS_CHANGED.
    pub fn consumer_connections(&self, group: &str) -> Vec<Rc<Connection>> {
        let Some(g) = self.consumers.get(group) else {
            return Vec::new();
        };
        g.channels.iter().filter_map(|c| c.conn.upgrade()).collect()
    }
}

/// What a heartbeat's frame says about the client.
#[derive(Debug, Clone, Copy)]
pub struct ClientInfo {
    pub language: crate::remoting::LanguageCode,
    pub version: i32,
}

fn listed(channels: &[Channel]) -> Vec<ClientConnection> {
    channels
        .iter()
        .map(|c| ClientConnection {
            client_addr: c.addr.clone(),
            client_id: c.client_id.clone(),
            language: c.language.clone(),
            version: c.version,
        })
        .collect()
}

/// Refreshes (or adds) the channel of `client_id` on `conn`; true if it is new.
fn touch(
    channels: &mut Vec<Channel>,
    conn: &Rc<Connection>,
    client_id: &str,
    now: Instant,
    client: ClientInfo,
) -> bool {
    if let Some(c) = channels
        .iter_mut()
        .find(|c| c.client_id == client_id && c.conn_id == conn.id)
    {
        c.last_seen = now;
        return false;
    }
    channels.push(Channel {
        client_id: client_id.to_string(),
        conn: Rc::downgrade(conn),
        conn_id: conn.id,
        last_seen: now,
        addr: conn.peer.to_string(),
        language: client.language.name().to_string(),
        version: client.version,
    });
    true
}
