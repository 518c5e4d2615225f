//! Petrel's own RocketMQ client: blocking, one connection per address, used by `petrel admin`,
//! the integration tests and the bench harness. It speaks the same remoting protocol as every
//! stock client and decodes stored records with the shards' record codec.

mod admin;
pub mod connection;
mod fastjson;
mod message;
pub mod pipeline;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use bytes::Bytes;
use petrel_shards::record::{self, encode_batch_item, encode_properties, Properties};
use petrel_shards::remoting::headers::{pull_flag, PullMessageHeader, SendMessageHeader};
use petrel_shards::remoting::{request, response, ExtFields, RemotingCommand};
use serde::Deserialize;

pub use connection::Connection;
pub use message::{decode_messages, Message, MessageExt};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{addr}: {source}")]
    Io {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{addr}: protocol error: {reason}")]
    Protocol { addr: String, reason: String },
    #[error("code {code}: {remark}")]
    Broker { code: i32, remark: String },
    #[error("bad response body: {0}")]
    Body(String),
    #[error("no route for topic {0}")]
    NoRoute(String),
}

impl ClientError {
    fn broker(cmd: &RemotingCommand) -> ClientError {
        ClientError::Broker {
            code: cmd.code,
            remark: cmd.remark.clone().unwrap_or_default(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct BrokerData {
    pub broker_name: String,
    pub cluster: String,
    pub broker_addrs: BTreeMap<String, String>,
}

impl BrokerData {
    pub fn master(&self) -> Option<&str> {
        self.broker_addrs.get("0").map(String::as_str)
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct QueueData {
    pub broker_name: String,
    pub read_queue_nums: i32,
    pub write_queue_nums: i32,
    pub perm: i32,
    #[serde(default)]
    pub topic_sys_flag: i32,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct TopicRoute {
    pub broker_datas: Vec<BrokerData>,
    pub queue_datas: Vec<QueueData>,
}

/// One queue of a topic, as routes name it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct MessageQueue {
    pub topic: String,
    pub broker_name: String,
    pub queue_id: i32,
}

impl TopicRoute {
    pub fn broker_addr(&self, broker_name: &str) -> Option<&str> {
        self.broker_datas
            .iter()
            .find(|b| b.broker_name == broker_name)?
            .master()
    }

    /// Writable queues, sorted by broker name then id, as producers pick them.
    pub fn publish_queues(&self, topic: &str) -> Vec<MessageQueue> {
        self.queues(topic, 2, |q| q.write_queue_nums)
    }

    /// Readable queues, as consumers divide them.
    pub fn subscribe_queues(&self, topic: &str) -> Vec<MessageQueue> {
        self.queues(topic, 4, |q| q.read_queue_nums)
    }

    fn queues(
        &self,
        topic: &str,
        bit: i32,
        count: impl Fn(&QueueData) -> i32,
    ) -> Vec<MessageQueue> {
        let mut out = Vec::new();
        for q in &self.queue_datas {
            if q.perm & bit == 0 || self.broker_addr(&q.broker_name).is_none() {
                continue;
            }
            for id in 0..count(q) {
                out.push(MessageQueue {
                    topic: topic.to_string(),
                    broker_name: q.broker_name.clone(),
                    queue_id: id,
                });
            }
        }
        out.sort();
        out
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendResult {
    pub code: i32,
    pub msg_id: String,
    pub offset_msg_id: String,
    pub queue_id: i32,
    pub queue_offset: i64,
    pub region: Option<String>,
}

/// What one QUERY_MESSAGE asks for.
#[derive(Debug, Clone, Copy)]
pub struct KeyQuery<'a> {
    pub topic: &'a str,
    pub key: &'a str,
    pub max: usize,
    pub begin_ms: i64,
    pub end_ms: i64,
    /// Look `key` up as a message's UNIQ_KEY (its client-side ID), not among its KEYS.
    pub unique: bool,
}

/// What one PULL_MESSAGE asks for.
#[derive(Debug, Clone, Copy)]
pub struct PullRequest<'a> {
    pub group: &'a str,
    pub queue: &'a MessageQueue,
    pub offset: i64,
    pub max: i32,
    /// Tag expression: `*` or `a || b`.
    pub subscription: &'a str,
    /// Long-poll for this long when nothing is there.
    pub suspend: Option<Duration>,
}

#[derive(Debug, Clone)]
pub struct PullResult {
    pub code: i32,
    pub next_begin_offset: i64,
    pub min_offset: i64,
    pub max_offset: i64,
    pub messages: Vec<MessageExt>,
}

/// One queue's line of GET_CONSUME_STATS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueProgress {
    pub queue: MessageQueue,
    pub broker_offset: i64,
    pub consumer_offset: i64,
    pub pull_offset: i64,
    pub last_timestamp: i64,
}

/// A group's progress on one broker (GET_CONSUME_STATS).
#[derive(Debug, Clone)]
pub struct ConsumeStats {
    /// Messages per second the group pulled recently.
    pub tps: f64,
    pub queues: Vec<QueueProgress>,
}

/// An ACL account's keys: every request is signed with them (ACL 1.0's AccessKey and
/// Signature fields, as stock clients' RPC hooks add them).
pub use petrel_shards::acl::Credentials;

/// Credentials every `Client::new` of this process starts with (`petrel admin --accessKey`).
static DEFAULT_CREDENTIALS: std::sync::OnceLock<Credentials> = std::sync::OnceLock::new();

/// Makes every client created from now on sign with `credentials`; the first call wins.
pub fn sign_by_default(credentials: Credentials) {
    let _ = DEFAULT_CREDENTIALS.set(credentials);
}

/// A client bound to a list of name servers.
pub struct Client {
    namesrv: Vec<String>,
    connections: HashMap<String, Connection>,
    pub timeout: Duration,
    pub producer_group: String,
    credentials: Option<Credentials>,
}

impl Client {
    /// `namesrv` is a `;`-separated list, as everywhere in RocketMQ.
    pub fn new(namesrv: &str) -> Client {
        Client {
            namesrv: namesrv
                .split(';')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
            connections: HashMap::new(),
            timeout: Duration::from_secs(5),
            producer_group: "PETREL_PRODUCER".into(),
            credentials: DEFAULT_CREDENTIALS.get().cloned(),
        }
    }

    /// Signs every request with `credentials` from now on.
    pub fn with_credentials(mut self, credentials: Credentials) -> Client {
        self.credentials = Some(credentials);
        self
    }

    /// Sends `cmd` to `addr` and waits for the answer, reconnecting once on a broken connection.
    pub fn call(
        &mut self,
        addr: &str,
        mut cmd: RemotingCommand,
    ) -> Result<RemotingCommand, ClientError> {
        if let Some(credentials) = &self.credentials {
            credentials.sign(&mut cmd);
        }
        for attempt in 0..2 {
            if !self.connections.contains_key(addr) {
                let conn = Connection::connect(addr, self.timeout)?;
                self.connections.insert(addr.to_string(), conn);
            }
            let conn = self.connections.get_mut(addr).expect("inserted above");
            match conn.call(cmd.clone()) {
                Ok(r) => return Ok(r),
                Err(ClientError::Io { .. }) if attempt == 0 => {
                    self.connections.remove(addr);
                }
                Err(e) => {
                    self.connections.remove(addr);
                    return Err(e);
                }
            }
        }
        unreachable!("the loop returns on its second attempt")
    }

    fn call_namesrv(&mut self, cmd: RemotingCommand) -> Result<RemotingCommand, ClientError> {
        let mut last = None;
        for addr in self.namesrv.clone() {
            match self.call(&addr, cmd.clone()) {
                Ok(r) => return Ok(r),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or(ClientError::NoRoute("no name server configured".into())))
    }

    fn json_body<T: for<'de> Deserialize<'de>>(reply: &RemotingCommand) -> Result<T, ClientError> {
        if reply.code != response::SUCCESS {
            return Err(ClientError::broker(reply));
        }
        serde_json::from_slice(&fastjson::quote_integer_keys(&reply.body))
            .map_err(|e| ClientError::Body(e.to_string()))
    }

    pub fn route(&mut self, topic: &str) -> Result<TopicRoute, ClientError> {
        let mut ext = ExtFields::new();
        ext.insert("topic", topic);
        let reply = self.call_namesrv(RemotingCommand::request(
            request::GET_ROUTEINFO_BY_TOPIC,
            ext,
            Bytes::new(),
        ))?;
        if reply.code == response::TOPIC_NOT_EXIST {
            return Err(ClientError::NoRoute(topic.to_string()));
        }
        Self::json_body(&reply)
    }

    pub fn cluster_info(&mut self) -> Result<serde_json::Value, ClientError> {
        let reply = self.call_namesrv(RemotingCommand::request(
            request::GET_BROKER_CLUSTER_INFO,
            ExtFields::new(),
            Bytes::new(),
        ))?;
        Self::json_body(&reply)
    }

    pub fn topic_list(&mut self) -> Result<Vec<String>, ClientError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct TopicList {
            topic_list: Vec<String>,
        }
        let reply = self.call_namesrv(RemotingCommand::request(
            request::GET_ALL_TOPIC_LIST_FROM_NAMESERVER,
            ExtFields::new(),
            Bytes::new(),
        ))?;
        Ok(Self::json_body::<TopicList>(&reply)?.topic_list)
    }

    fn send_header(
        &self,
        queue: &MessageQueue,
        flag: i32,
        properties: String,
        batch: bool,
    ) -> SendMessageHeader {
        SendMessageHeader {
            producer_group: self.producer_group.clone(),
            topic: queue.topic.clone(),
            default_topic: "TBW102".into(),
            default_topic_queue_nums: 4,
            queue_id: queue.queue_id,
            sys_flag: 0,
            born_timestamp: now_ms(),
            flag,
            properties,
            reconsume_times: 0,
            max_reconsume_times: None,
            batch,
        }
    }

    /// Sends one message to `queue` (SEND_MESSAGE_V2).
    pub fn send_to(
        &mut self,
        addr: &str,
        queue: &MessageQueue,
        msg: &Message,
    ) -> Result<SendResult, ClientError> {
        let props = msg.properties_with_uniq_key();
        let header = self.send_header(queue, msg.flag, encode_properties(&props), false);
        let cmd = RemotingCommand::request(
            request::SEND_MESSAGE_V2,
            header.to_short_fields(),
            msg.body.clone(),
        );
        let reply = self.call(addr, cmd)?;
        send_result(
            &reply,
            props.get(record::property::UNIQ_KEY).unwrap_or_default(),
        )
    }

    /// Sends a batch to one queue (SEND_BATCH_MESSAGE).
    pub fn send_batch_to(
        &mut self,
        addr: &str,
        queue: &MessageQueue,
        msgs: &[Message],
    ) -> Result<SendResult, ClientError> {
        let mut body = Vec::new();
        let mut ids = Vec::new();
        for msg in msgs {
            let props = msg.properties_with_uniq_key();
            ids.push(
                props
                    .get(record::property::UNIQ_KEY)
                    .unwrap_or_default()
                    .to_string(),
            );
            encode_batch_item(msg.flag, &msg.body, &encode_properties(&props), &mut body);
        }
        let header = self.send_header(queue, 0, String::new(), true);
        let cmd = RemotingCommand::request(
            request::SEND_BATCH_MESSAGE,
            header.to_short_fields(),
            Bytes::from(body),
        );
        let reply = self.call(addr, cmd)?;
        send_result(&reply, &ids.join(","))
    }

    /// Sends one message to a queue of `topic` chosen round-robin by `seq`.
    pub fn send(
        &mut self,
        topic: &str,
        msg: &Message,
        seq: usize,
    ) -> Result<(MessageQueue, SendResult), ClientError> {
        let route = self.route(topic)?;
        let queues = route.publish_queues(topic);
        if queues.is_empty() {
            return Err(ClientError::NoRoute(topic.to_string()));
        }
        let queue = queues[seq % queues.len()].clone();
        let addr = route
            .broker_addr(&queue.broker_name)
            .expect("publish queues have a master")
            .to_string();
        let result = self.send_to(&addr, &queue, msg)?;
        Ok((queue, result))
    }

    /// PULL_MESSAGE with an explicit subscription expression; `suspend` long-polls.
    pub fn pull(&mut self, addr: &str, pull: &PullRequest<'_>) -> Result<PullResult, ClientError> {
        let PullRequest {
            group,
            queue,
            offset,
            max,
            subscription,
            suspend,
        } = *pull;
        let mut sys_flag = pull_flag::SUBSCRIPTION;
        if suspend.is_some() {
            sys_flag |= pull_flag::SUSPEND;
        }
        let header = PullMessageHeader {
            consumer_group: group.to_string(),
            topic: queue.topic.clone(),
            queue_id: queue.queue_id,
            queue_offset: offset,
            max_msg_nums: max,
            sys_flag,
            commit_offset: 0,
            suspend_timeout_millis: suspend.map_or(0, |d| d.as_millis() as i64),
            subscription: Some(subscription.to_string()),
            sub_version: 0,
            expression_type: Some("TAG".into()),
            max_msg_bytes: None,
        };
        let cmd = RemotingCommand::request(request::PULL_MESSAGE, header.to_fields(), Bytes::new());
        if let (Some(d), Some(conn)) = (suspend, self.connections.get_mut(addr)) {
            conn.set_timeout(d + Duration::from_secs(5));
        }
        let reply = self.call(addr, cmd);
        if let Some(conn) = self.connections.get_mut(addr) {
            conn.set_timeout(self.timeout);
        }
        let reply = reply?;
        let field = |k: &str| {
            reply
                .field(k)
                .and_then(|v| v.parse::<i64>().ok())
                .unwrap_or(-1)
        };
        let messages = match reply.code {
            response::SUCCESS => decode_messages(&reply.body, &queue.broker_name),
            response::PULL_NOT_FOUND
            | response::PULL_RETRY_IMMEDIATELY
            | response::PULL_OFFSET_MOVED => Vec::new(),
            _ => return Err(ClientError::broker(&reply)),
        };
        Ok(PullResult {
            code: reply.code,
            next_begin_offset: field("nextBeginOffset"),
            min_offset: field("minOffset"),
            max_offset: field("maxOffset"),
            messages,
        })
    }

    /// A broker request with plain header fields, answered with an `offset`-style field.
    pub fn call_fields(
        &mut self,
        addr: &str,
        code: i32,
        fields: &[(&str, String)],
    ) -> Result<RemotingCommand, ClientError> {
        let ext: ExtFields = fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        self.call(addr, RemotingCommand::request(code, ext, Bytes::new()))
    }
}

fn send_result(reply: &RemotingCommand, uniq: &str) -> Result<SendResult, ClientError> {
    match reply.code {
        response::SUCCESS | 10 | 11 | 12 => Ok(SendResult {
            code: reply.code,
            msg_id: uniq.to_string(),
            offset_msg_id: reply.field("msgId").unwrap_or_default().to_string(),
            queue_id: reply
                .field("queueId")
                .and_then(|v| v.parse().ok())
                .unwrap_or(-1),
            queue_offset: reply
                .field("queueOffset")
                .and_then(|v| v.parse().ok())
                .unwrap_or(-1),
            region: reply.field("MSG_REGION").map(str::to_string),
        }),
        _ => Err(ClientError::broker(reply)),
    }
}

pub fn now_ms() -> i64 {
    petrel_shards::broker::metadata::now_ms()
}

/// Builds a property set from tags, keys and user properties.
pub fn properties(tags: Option<&str>, keys: Option<&str>, user: &[(String, String)]) -> Properties {
    let mut props = Properties::default();
    if let Some(t) = tags {
        props.insert(record::property::TAGS, t);
    }
    if let Some(k) = keys {
        props.insert(record::property::KEYS, k);
    }
    for (k, v) in user {
        props.insert(k, v);
    }
    props.insert(record::property::WAIT, "true");
    props
}
