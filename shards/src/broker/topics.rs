//! A shard's topic and group tables as clients change them: creation (with the cap on
//! topics, `topicCountMax`), deletion, and the producers seen per topic (F36).

use super::metadata::{self, SubscriptionGroupConfig, TopicConfig};
use super::Shard;

impl Shard {
    /// Creates or replaces a topic, persists the table and re-registers with name servers.
    pub fn put_topic(&self, config: TopicConfig) {
        self.throttle.forget_topic(&config.topic_name);
        self.meta.borrow_mut().put_topic(config);
        self.register_now.raise();
        self.metadata_changed.raise();
    }

    /// `put_topic` for a topic a client asks for (admin, auto-creation): a new one is refused
    /// while the shard holds `topicCountMax` topics already.
    pub fn create_topic(&self, config: TopicConfig) -> Result<(), String> {
        let (known, count) = {
            let meta = self.meta.borrow();
            (meta.topic(&config.topic_name).is_some(), meta.topic_count())
        };
        let max = self.config.topic_count_max;
        if !known && count >= max {
            return Err(format!(
                "topic {} not created: broker {} holds {count} topics, its topicCountMax is {max}; delete unused topics or raise topicCountMax",
                config.topic_name, self.config.broker_name
            ));
        }
        self.put_topic(config);
        Ok(())
    }

    /// The value of attribute `key` of `topic`, if set.
    pub fn topic_attribute(&self, topic: &str, key: &str) -> Option<String> {
        let meta = self.meta.borrow();
        meta.topic(topic)?.attributes.get(key).cloned()
    }

    /// The value of attribute `key` of `group`, if set.
    pub fn group_attribute(&self, group: &str, key: &str) -> Option<String> {
        let meta = self.meta.borrow();
        meta.group(group)?.attributes.get(key).cloned()
    }

    /// Creates TBW102, the template stock producers send a new topic's first message
    /// through, if it is missing (auto-creation turned on at runtime).
    pub fn ensure_auto_create_topic(&self) {
        let key = metadata::AUTO_CREATE_TOPIC_KEY;
        if self.meta.borrow().topic(key).is_none() {
            let queues = self.config.default_topic_queue_nums;
            let perm = metadata::perm::READ_WRITE | metadata::perm::INHERIT;
            self.put_topic(TopicConfig::new(key, queues, perm));
        }
    }

    /// Creates a one-queue topic (retry, dead-letter, discarded transactions) the first time
    /// it is needed.
    pub fn ensure_topic(&self, topic: &str) {
        let missing = self.meta.borrow().topic(topic).is_none();
        if missing {
            self.put_topic(TopicConfig::new(topic, 1, metadata::perm::READ_WRITE));
        }
    }

    /// The real queue (`REAL_TOPIC`, `REAL_QID`) a parked message — delayed, or half of a
    /// transaction — belongs to, if it still exists here.
    pub fn real_queue(&self, props: &crate::record::Properties) -> Result<(String, i32), String> {
        use crate::record::property;
        let topic = props.get(property::REAL_TOPIC).ok_or("no REAL_TOPIC")?;
        let queue_id: i32 = props
            .get(property::REAL_QID)
            .and_then(|q| q.parse().ok())
            .ok_or("no REAL_QID")?;
        let exists = self
            .meta
            .borrow()
            .topic(topic)
            .is_some_and(|t| queue_id >= 0 && queue_id < t.queue_count());
        if !exists {
            return Err(format!("its queue {topic}/{queue_id} does not exist"));
        }
        Ok((topic.to_string(), queue_id))
    }

    /// Creates or replaces a subscription group and persists the table.
    pub fn put_group(&self, config: SubscriptionGroupConfig) {
        self.throttle.forget_group(&config.group_name);
        self.meta.borrow_mut().put_group(config);
        self.metadata_changed.raise();
    }

    /// Remembers that producer group `group` sends to `topic`.
    pub fn note_publisher(&self, topic: &str, group: &str) {
        let mut publishers = self.publishers.borrow_mut();
        match publishers.get_mut(topic) {
            Some(groups) if groups.iter().any(|g| g == group) => {}
            Some(groups) => groups.push(group.to_string()),
            None => {
                publishers.insert(topic.to_string(), vec![group.to_string()]);
            }
        }
    }

    /// Why `topic` cannot be deleted now: a live consumer or producer uses it (F36).
    pub fn topic_in_use(&self, topic: &str) -> Option<String> {
        let clients = self.clients.borrow();
        if let Some(group) = clients.consumer_of(topic) {
            return Some(format!("topic {topic} is consuming by consumer {group}"));
        }
        let publishers = self.publishers.borrow();
        let producer = publishers
            .get(topic)
            .and_then(|groups| groups.iter().find(|g| clients.producer_online(g)));
        producer.map(|group| format!("topic {topic} is publishing by producer {group}"))
    }

    /// Deletes a topic's config and every group's offsets on it; its messages stay in the
    /// log. False if the topic is unknown here.
    pub fn delete_topic(&self, topic: &str) -> bool {
        if !self.meta.borrow_mut().remove_topic(topic) {
            return false;
        }
        self.store.offsets.borrow_mut().remove_topic(topic);
        self.throttle.forget_topic(topic);
        self.stats.borrow_mut().remove_topic(topic);
        self.publishers.borrow_mut().remove(topic);
        self.register_now.raise();
        self.metadata_changed.raise();
        true
    }

    /// Deletes a group's config, and with `clean_offsets` its offsets. False if unknown.
    pub fn delete_group(&self, group: &str, clean_offsets: bool) -> bool {
        if !self.meta.borrow_mut().remove_group(group) {
            return false;
        }
        self.throttle.forget_group(group);
        if clean_offsets {
            self.store.offsets.borrow_mut().remove_group(group);
        }
        self.metadata_changed.raise();
        true
    }
}
