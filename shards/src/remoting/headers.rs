//! Typed views of the `extFields` of the requests Petrel serves (spec §4). Values arrive as text
//! (spec §1.6); a required field that is absent or unparsable is a [`HeaderError`] that names it.

use super::command::ExtFields;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("the custom field <{0}> is null")]
    Missing(&'static str),
    #[error("the custom field <{field}> is not a number: {value:?}")]
    NotNumber { field: &'static str, value: String },
}

/// Field access with the error wording of the Java broker.
pub struct Fields<'a>(pub &'a ExtFields);

impl<'a> Fields<'a> {
    pub fn opt_str(&self, key: &'static str) -> Option<&'a str> {
        self.0.get(key)
    }

    pub fn str(&self, key: &'static str) -> Result<&'a str, HeaderError> {
        self.0.get(key).ok_or(HeaderError::Missing(key))
    }

    pub fn opt_i64(&self, key: &'static str) -> Result<Option<i64>, HeaderError> {
        match self.0.get(key) {
            None => Ok(None),
            Some(text) => text
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| HeaderError::NotNumber {
                    field: key,
                    value: text.to_string(),
                }),
        }
    }

    pub fn i64(&self, key: &'static str) -> Result<i64, HeaderError> {
        self.opt_i64(key)?.ok_or(HeaderError::Missing(key))
    }

    pub fn i32(&self, key: &'static str) -> Result<i32, HeaderError> {
        let value = self.i64(key)?;
        i32::try_from(value).map_err(|_| HeaderError::NotNumber {
            field: key,
            value: value.to_string(),
        })
    }

    pub fn opt_i32(&self, key: &'static str) -> Result<Option<i32>, HeaderError> {
        match self.opt_i64(key)? {
            None => Ok(None),
            Some(v) => i32::try_from(v)
                .map(Some)
                .map_err(|_| HeaderError::NotNumber {
                    field: key,
                    value: v.to_string(),
                }),
        }
    }

    /// Java's `Boolean.parseBoolean`: `true` in any case is true, anything else false.
    pub fn bool(&self, key: &'static str) -> bool {
        self.0
            .get(key)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }
}

/// SEND_MESSAGE (long names), SEND_MESSAGE_V2 and SEND_BATCH_MESSAGE (`a`…`n`), spec §4.1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendMessageHeader {
    pub producer_group: String,
    pub topic: String,
    pub default_topic: String,
    pub default_topic_queue_nums: i32,
    pub queue_id: i32,
    pub sys_flag: i32,
    pub born_timestamp: i64,
    pub flag: i32,
    pub properties: String,
    pub reconsume_times: i32,
    pub max_reconsume_times: Option<i32>,
    pub batch: bool,
}

/// Which set of key names a send header uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendHeaderNames {
    /// SEND_MESSAGE (10): `producerGroup`, `topic`, …
    Long,
    /// SEND_MESSAGE_V2 (310) and SEND_BATCH_MESSAGE (320): `a` … `n`.
    Short,
}

impl SendMessageHeader {
    pub fn parse(
        ext: &ExtFields,
        names: SendHeaderNames,
    ) -> Result<SendMessageHeader, HeaderError> {
        let f = Fields(ext);
        let k = |long: &'static str, short: &'static str| match names {
            SendHeaderNames::Long => long,
            SendHeaderNames::Short => short,
        };
        Ok(SendMessageHeader {
            producer_group: f.str(k("producerGroup", "a"))?.to_string(),
            topic: f.str(k("topic", "b"))?.to_string(),
            default_topic: f
                .opt_str(k("defaultTopic", "c"))
                .unwrap_or("TBW102")
                .to_string(),
            default_topic_queue_nums: f.opt_i32(k("defaultTopicQueueNums", "d"))?.unwrap_or(4),
            queue_id: f.i32(k("queueId", "e"))?,
            sys_flag: f.opt_i32(k("sysFlag", "f"))?.unwrap_or(0),
            born_timestamp: f.opt_i64(k("bornTimestamp", "g"))?.unwrap_or(0),
            flag: f.opt_i32(k("flag", "h"))?.unwrap_or(0),
            properties: f.opt_str(k("properties", "i")).unwrap_or("").to_string(),
            reconsume_times: f.opt_i32(k("reconsumeTimes", "j"))?.unwrap_or(0),
            max_reconsume_times: f.opt_i32(k("maxReconsumeTimes", "l"))?,
            batch: f.bool(k("batch", "m")),
        })
    }

    /// The header as SEND_MESSAGE_V2 sends it.
    pub fn to_short_fields(&self) -> ExtFields {
        let mut ext = ExtFields::new();
        ext.insert("a", &self.producer_group);
        ext.insert("b", &self.topic);
        ext.insert("c", &self.default_topic);
        ext.insert("d", self.default_topic_queue_nums.to_string());
        ext.insert("e", self.queue_id.to_string());
        ext.insert("f", self.sys_flag.to_string());
        ext.insert("g", self.born_timestamp.to_string());
        ext.insert("h", self.flag.to_string());
        ext.insert("i", &self.properties);
        ext.insert("j", self.reconsume_times.to_string());
        ext.insert("k", "false");
        if let Some(max) = self.max_reconsume_times {
            ext.insert("l", max.to_string());
        }
        ext.insert("m", self.batch.to_string());
        ext
    }
}

/// Pull sysFlag bits (spec §4.3).
pub mod pull_flag {
    pub const COMMIT_OFFSET: i32 = 1;
    pub const SUSPEND: i32 = 2;
    pub const SUBSCRIPTION: i32 = 4;
}

/// PULL_MESSAGE and LITE_PULL_MESSAGE, spec §4.3.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullMessageHeader {
    pub consumer_group: String,
    pub topic: String,
    pub queue_id: i32,
    pub queue_offset: i64,
    pub max_msg_nums: i32,
    pub sys_flag: i32,
    pub commit_offset: i64,
    pub suspend_timeout_millis: i64,
    pub subscription: Option<String>,
    pub sub_version: i64,
    pub expression_type: Option<String>,
    pub max_msg_bytes: Option<i32>,
}

impl PullMessageHeader {
    pub fn parse(ext: &ExtFields) -> Result<PullMessageHeader, HeaderError> {
        let f = Fields(ext);
        Ok(PullMessageHeader {
            consumer_group: f.str("consumerGroup")?.to_string(),
            topic: f.str("topic")?.to_string(),
            queue_id: f.i32("queueId")?,
            queue_offset: f.i64("queueOffset")?,
            max_msg_nums: f.i32("maxMsgNums")?,
            sys_flag: f.i32("sysFlag")?,
            commit_offset: f.opt_i64("commitOffset")?.unwrap_or(0),
            suspend_timeout_millis: f.opt_i64("suspendTimeoutMillis")?.unwrap_or(0),
            subscription: f.opt_str("subscription").map(str::to_string),
            sub_version: f.opt_i64("subVersion")?.unwrap_or(0),
            expression_type: f.opt_str("expressionType").map(str::to_string),
            max_msg_bytes: f.opt_i32("maxMsgBytes")?,
        })
    }

    pub fn to_fields(&self) -> ExtFields {
        let mut ext = ExtFields::new();
        ext.insert("consumerGroup", &self.consumer_group);
        ext.insert("topic", &self.topic);
        ext.insert("queueId", self.queue_id.to_string());
        ext.insert("queueOffset", self.queue_offset.to_string());
        ext.insert("maxMsgNums", self.max_msg_nums.to_string());
        ext.insert("sysFlag", self.sys_flag.to_string());
        ext.insert("commitOffset", self.commit_offset.to_string());
        ext.insert(
            "suspendTimeoutMillis",
            self.suspend_timeout_millis.to_string(),
        );
        if let Some(sub) = &self.subscription {
            ext.insert("subscription", sub);
        }
        ext.insert("subVersion", self.sub_version.to_string());
        if let Some(t) = &self.expression_type {
            ext.insert("expressionType", t);
        }
        if let Some(m) = self.max_msg_bytes {
            ext.insert("maxMsgBytes", m.to_string());
        }
        ext
    }
}
