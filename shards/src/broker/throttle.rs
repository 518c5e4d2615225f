//! TPS limits (F34): messages per second a topic may take in and give out, and a group may
//! consume, on this broker.
//!
//! The broker-wide limits are `topicProduceTpsLimit` and `topicConsumeTpsLimit` (5000, the
//! seed's service's figure) and `groupConsumeTpsLimit` (0: none); a topic's or a group's
//! attribute `produce.tps.limit` / `consume.tps.limit` (mqadmin `updateTopic -a
//! +consume.tps.limit=100`, `updateSubGroup -a …`) overrides them for it; 0 means no limit.
//! System topics (`%RETRY%…`, `%DLQ%…`, `RMQ_SYS_…`, the schedule topic) are not limited by
//! topic; their consumers still count against their group's limit.
//!
//! Each shard enforces its share, the limit divided by the process's shards, with a token
//! bucket per topic and per group holding at most one second's share: no state crosses
//! cores. A send over its topic's limit is refused with SYSTEM_BUSY (stock producers retry
//! elsewhere, then report it); a pull over a limit is given fewer messages, or none until
//! the next token, and is held meanwhile like a long poll.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::time::{Duration, Instant};

pub const PRODUCE_ATTRIBUTE: &str = "produce.tps.limit";
pub const CONSUME_ATTRIBUTE: &str = "consume.tps.limit";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TpsConfig {
    /// `topicProduceTpsLimit`: messages per second a topic takes in, by default.
    pub topic_produce: u32,
    /// `topicConsumeTpsLimit`: messages per second pulled from a topic, by default.
    pub topic_consume: u32,
    /// `groupConsumeTpsLimit`: messages per second a group pulls, by default.
    pub group_consume: u32,
}

impl Default for TpsConfig {
    fn default() -> Self {
        TpsConfig {
            topic_produce: 5000,
            topic_consume: 5000,
            group_consume: 0,
        }
    }
}

impl TpsConfig {
    /// Applies `key=value` if `key` is one of the TPS limits (None if it is not).
    pub fn set(&mut self, key: &str, value: &str) -> Option<Result<(), String>> {
        let field = match key {
            "topicProduceTpsLimit" => &mut self.topic_produce,
            "topicConsumeTpsLimit" => &mut self.topic_consume,
            "groupConsumeTpsLimit" => &mut self.group_consume,
            _ => return None,
        };
        Some(parse_limit(value).map(|n| *field = n))
    }

    /// The keys with their values as broker.conf spells them.
    pub fn properties(&self) -> Vec<(&'static str, String)> {
        vec![
            ("topicProduceTpsLimit", self.topic_produce.to_string()),
            ("topicConsumeTpsLimit", self.topic_consume.to_string()),
            ("groupConsumeTpsLimit", self.group_consume.to_string()),
        ]
    }
}

/// A limit as a key or an attribute gives it: messages per second, 0 for none.
pub fn parse_limit(value: &str) -> Result<u32, String> {
    value
        .trim()
        .parse::<u32>()
        .ok()
        .filter(|n| *n <= 100_000_000)
        .ok_or_else(|| {
            "must be a number of messages per second from 0 (no limit) to 100000000".into()
        })
}

/// Topics the broker's own features write and read.
fn is_system_topic(topic: &str) -> bool {
    topic.starts_with('%')
        || topic.starts_with("RMQ_SYS_")
        || topic == super::schedule::SCHEDULE_TOPIC
}

struct Bucket {
    /// This shard's share of the limit, per second; also the most it holds.
    rate: f64,
    limit: u32,
    tokens: f64,
    refilled: Instant,
}

impl Bucket {
    fn new(limit: u32, shards: usize, now: Instant) -> Bucket {
        let rate = f64::from(limit) / shards.max(1) as f64;
        Bucket {
            rate,
            limit,
            tokens: rate.max(1.0),
            refilled: now,
        }
    }

    fn refill(&mut self, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.rate.max(1.0));
        self.refilled = now;
        self.tokens
    }

    /// How long until a whole token is there again.
    fn wait(&self) -> Duration {
        let missing = (1.0 - self.tokens).max(0.0);
        Duration::from_secs_f64(missing / self.rate)
    }
}

/// Buckets by name; `None` marks a name without a limit, so it is looked up once.
type Buckets = RefCell<HashMap<String, Option<Bucket>>>;

/// How many messages a pull may be given now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allowance {
    Unlimited,
    Messages(usize),
    /// None now: the next token comes after this.
    Wait(Duration, &'static str),
}

pub struct Throttle {
    config: Cell<TpsConfig>,
    shards: usize,
    produce: Buckets,
    consume: Buckets,
    group_consume: Buckets,
}

impl Throttle {
    pub fn new(config: TpsConfig, shards: usize) -> Throttle {
        Throttle {
            config: Cell::new(config),
            shards,
            produce: Buckets::default(),
            consume: Buckets::default(),
            group_consume: Buckets::default(),
        }
    }

    pub fn config(&self) -> TpsConfig {
        self.config.get()
    }

    /// New broker-wide limits; every bucket starts again from them.
    pub fn set_config(&self, config: TpsConfig) {
        self.config.set(config);
        self.produce.borrow_mut().clear();
        self.consume.borrow_mut().clear();
        self.group_consume.borrow_mut().clear();
    }

    /// A topic's config changed or it went: its buckets are rebuilt from it when next used.
    pub fn forget_topic(&self, topic: &str) {
        self.produce.borrow_mut().remove(topic);
        self.consume.borrow_mut().remove(topic);
    }

    pub fn forget_group(&self, group: &str) {
        self.group_consume.borrow_mut().remove(group);
    }

    /// Takes `n()` messages of `topic`'s produce share, or says why not. `attribute` is the
    /// topic's `produce.tps.limit`, asked for only when its bucket is made; `n` only when the
    /// topic has a limit.
    pub fn admit_produce(
        &self,
        topic: &str,
        n: impl FnOnce() -> usize,
        attribute: impl FnOnce() -> Option<String>,
    ) -> Result<(), String> {
        let default = self.config.get().topic_produce;
        if is_system_topic(topic) {
            return Ok(());
        }
        let mut buckets = self.produce.borrow_mut();
        let now = Instant::now();
        let Some(bucket) = bucket(&mut buckets, topic, default, attribute, self.shards, now) else {
            return Ok(());
        };
        // A batch may take the bucket below zero: it is paid back before the next send.
        if bucket.refill(now) <= 0.0 {
            return Err(format!(
                "[TPSLIMIT] topic {topic} is over its produce TPS limit of {} on this broker, try again later",
                bucket.limit
            ));
        }
        bucket.tokens -= n() as f64;
        Ok(())
    }

    /// How many messages a pull of `group` on `topic` may be given now.
    pub fn consume_allowance(
        &self,
        topic: &str,
        group: &str,
        topic_attribute: impl FnOnce() -> Option<String>,
        group_attribute: impl FnOnce() -> Option<String>,
    ) -> Allowance {
        let config = self.config.get();
        let now = Instant::now();
        let mut allowance = Allowance::Unlimited;
        if !is_system_topic(topic) {
            let mut buckets = self.consume.borrow_mut();
            let found = bucket(
                &mut buckets,
                topic,
                config.topic_consume,
                topic_attribute,
                self.shards,
                now,
            );
            allowance = narrow(allowance, found, now, "topic");
        }
        let mut buckets = self.group_consume.borrow_mut();
        let found = bucket(
            &mut buckets,
            group,
            config.group_consume,
            group_attribute,
            self.shards,
            now,
        );
        narrow(allowance, found, now, "group")
    }

    /// Counts `n` messages a pull of `group` on `topic` was given.
    pub fn consumed(&self, topic: &str, group: &str, n: usize) {
        for (buckets, name) in [(&self.consume, topic), (&self.group_consume, group)] {
            if let Some(Some(bucket)) = buckets.borrow_mut().get_mut(name) {
                bucket.tokens -= n as f64;
            }
        }
    }
}

/// The bucket of `name`, made on first use from its attribute or the default limit.
fn bucket<'a>(
    buckets: &'a mut HashMap<String, Option<Bucket>>,
    name: &str,
    default: u32,
    attribute: impl FnOnce() -> Option<String>,
    shards: usize,
    now: Instant,
) -> Option<&'a mut Bucket> {
    if !buckets.contains_key(name) {
        let limit = attribute()
            .and_then(|v| parse_limit(&v).ok())
            .unwrap_or(default);
        let made = (limit > 0).then(|| Bucket::new(limit, shards, now));
        buckets.insert(name.to_string(), made);
    }
    buckets.get_mut(name).and_then(Option::as_mut)
}

fn narrow(
    allowance: Allowance,
    bucket: Option<&mut Bucket>,
    now: Instant,
    by: &'static str,
) -> Allowance {
    let Some(bucket) = bucket else {
        return allowance;
    };
    let tokens = bucket.refill(now);
    if tokens < 1.0 {
        return Allowance::Wait(bucket.wait(), by);
    }
    let here = tokens as usize;
    match allowance {
        Allowance::Unlimited => Allowance::Messages(here),
        Allowance::Messages(n) => Allowance::Messages(n.min(here)),
        wait => wait,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_bad_values_are_named() {
        let mut tps = TpsConfig::default();
        assert_eq!(tps.set("topicProduceTpsLimit", "100"), Some(Ok(())));
        assert_eq!(tps.set("groupConsumeTpsLimit", "7"), Some(Ok(())));
        let mut again = TpsConfig::default();
        for (k, v) in tps.properties() {
            assert_eq!(again.set(k, &v), Some(Ok(())));
        }
        assert_eq!(again, tps);
        let bad = tps.set("topicConsumeTpsLimit", "-1").unwrap().unwrap_err();
        assert!(bad.contains("0 (no limit)"), "{bad}");
        assert_eq!(tps.set("listenPort", "1"), None);
    }

    #[test]
    fn produce_is_refused_past_the_shards_share_and_system_topics_pass() {
        let throttle = Throttle::new(
            TpsConfig {
                topic_produce: 20,
                ..TpsConfig::default()
            },
            2,
        );
        let admitted = (0..30)
            .filter(|_| throttle.admit_produce("T", || 1, || None).is_ok())
            .count();
        // One second's share of 20/s over two shards, give or take what refills meanwhile.
        assert!((10..=11).contains(&admitted), "{admitted}");
        let err = throttle.admit_produce("T", || 1, || None).unwrap_err();
        assert!(
            err.contains("topic T") && err.contains("limit of 20"),
            "{err}"
        );
        assert!((0..100).all(|_| throttle.admit_produce("%RETRY%g", || 1, || None).is_ok()));
        // The topic's attribute overrides the default; 0 lifts the limit.
        assert!((0..100).all(|_| throttle
            .admit_produce("U", || 1, || Some("0".into()))
            .is_ok()));
    }

    #[test]
    fn pulls_get_the_smaller_of_topic_and_group_shares_then_wait() {
        let throttle = Throttle::new(
            TpsConfig {
                topic_consume: 100,
                group_consume: 0,
                ..TpsConfig::default()
            },
            1,
        );
        let allowance = throttle.consume_allowance("T", "g", || None, || Some("10".into()));
        assert_eq!(allowance, Allowance::Messages(10));
        throttle.consumed("T", "g", 10);
        match throttle.consume_allowance("T", "g", || None, || None) {
            Allowance::Wait(wait, "group") => assert!(wait <= Duration::from_millis(100)),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            throttle.consume_allowance("%RETRY%g2", "g2", || None, || None),
            Allowance::Unlimited
        );
    }
}
