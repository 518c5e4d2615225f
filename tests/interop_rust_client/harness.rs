//! The stock-client side of `interop_rust_client`: a broker with one topic, the runtime that
//! `rocketmq-client-rust` needs (a `RuntimeOwner` + `ClientRuntime`), producers and push
//! consumers built from it, test messages whose every field follows from (kind, index, tags),
//! and a listener that hands deliveries to the test. A module of the test target, kept apart
//! so that no file passes the 600-line cap that `tests/tidy.rs` enforces.
#![allow(
    dead_code,
    reason = "each stock-client test binary uses a different part of the harness"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use petrel::client::{Client, PullRequest};
use petrel_shards::broker::metadata::TopicConfig;
use petrel_shards::remoting::{request, response, ExtFields, RemotingCommand};
use rocketmq_client_rust::{
    ClientConfig, ClientError, ClientResult, ClientRuntime, ClientRuntimeConfig,
    ConsumeConcurrentlyContext, ConsumeConcurrentlyStatus, DefaultMQProducer,
    DefaultMQPushConsumer, MQPushConsumer, MessageListenerConcurrently, PullResult, SendResult,
    SendStatus, TelemetryHandle,
};
use rocketmq_model::common::consumer::consume_from_where::ConsumeFromWhere;
use rocketmq_model::common::message::message_ext::MessageExt;
use rocketmq_model::common::message::message_queue::MessageQueue;
use rocketmq_model::common::message::message_single::Message;
use rocketmq_runtime::{RuntimeConfig, RuntimeOwner};
use tokio::sync::mpsc;

use crate::common::{eventually, Petrel};

/// Everything a test does with the stock client must finish within this.
pub const SCENARIO_LIMIT: Duration = Duration::from_secs(60);
/// A user property value outside ASCII, to check the property encoding end to end.
pub const NOTE: &str = "ünïcödé ✓ a=b";

/// A standalone broker with one topic, and where to reach it.
pub struct Rig {
    _petrel: Petrel,
    _dir: tempfile::TempDir,
    pub ns: String,
    pub broker: String,
    pub addr: String,
}

impl Rig {
    /// Starts the broker, creates `topic` through the front door and waits until it is routed.
    pub fn new(topic: &str, queues: i32) -> Rig {
        Rig::with_props(topic, queues, &[])
    }

    /// As `new`, with extra broker properties (`key=value`, as for `petrel -p`).
    pub fn with_props(topic: &str, queues: i32, props: &[&str]) -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let petrel = Petrel::start("standalone", dir.path(), props);
        let ns = petrel.namesrv();
        let mut client = Client::new(&ns);
        let config = TopicConfig::new(topic, queues, 6);
        client.create_topic(&petrel.front_door(), &config).unwrap();
        eventually(Duration::from_secs(10), || client.route(topic).ok());
        let (broker, addr) = petrel.brokers()[0].clone();
        Rig {
            _petrel: petrel,
            _dir: dir,
            ns,
            broker,
            addr,
        }
    }

    /// Queue `queue_id` of `topic` on the broker's (only) shard, as the stock client names it.
    pub fn queue(&self, topic: &str, queue_id: usize) -> MessageQueue {
        MessageQueue::from_parts(topic, self.broker.as_str(), queue_id as i32)
    }

    /// Every message in the first `queues` queues of `topic`, read with Petrel's own client.
    pub fn stored(&self, topic: &str, queues: i32) -> Vec<petrel::client::MessageExt> {
        let mut client = Client::new(&self.ns);
        let mut out = Vec::new();
        for queue_id in 0..queues {
            let queue = petrel::client::MessageQueue {
                topic: topic.into(),
                broker_name: self.broker.clone(),
                queue_id,
            };
            let mut offset = 0;
            loop {
                let req = PullRequest {
                    group: "G_interop_check",
                    queue: &queue,
                    offset,
                    max: 32,
                    subscription: "*",
                    suspend: None,
                };
                let r = client.pull(&self.addr, &req).unwrap();
                if r.code == response::PULL_NOT_FOUND {
                    break;
                }
                assert_eq!(
                    r.code,
                    response::SUCCESS,
                    "pull {topic}/{queue_id}@{offset}"
                );
                out.extend(r.messages);
                offset = r.next_begin_offset;
            }
        }
        out
    }

    /// The consumer ids the broker answers for GET_CONSUMER_LIST_BY_GROUP (blocking).
    pub fn group_members(&self, group: &str) -> Vec<String> {
        let mut ext = ExtFields::new();
        ext.insert("consumerGroup", group);
        let code = request::GET_CONSUMER_LIST_BY_GROUP;
        let cmd = RemotingCommand::request(code, ext, Bytes::new());
        let reply = Client::new(&self.ns).call(&self.addr, cmd).unwrap();
        let body: serde_json::Value = serde_json::from_slice(&reply.body).unwrap_or_default();
        serde_json::from_value(body["consumerIdList"].clone()).unwrap_or_default()
    }
}

/// The stock client logs through `rocketmq_observability`; that is installed once per test
/// process, and only when `RUST_LOG` asks for it.
fn telemetry() -> TelemetryHandle {
    static HANDLE: OnceLock<TelemetryHandle> = OnceLock::new();
    let init = || match std::env::var("RUST_LOG") {
        Ok(filter) if !filter.is_empty() => {
            let mut config = rocketmq_observability::TelemetryBootstrapConfig::default();
            config.logging.filter = filter;
            config.logging.console.ansi = false;
            let guard = rocketmq_observability::install_global(&config).expect("client logging");
            let handle = guard.handle();
            // Logging stays installed for the rest of the test process.
            std::mem::forget(guard);
            handle
        }
        _ => TelemetryHandle::noop(),
    };
    HANDLE.get_or_init(init).clone()
}

/// The stock client's runtime for one test, and the name server its clients use.
pub struct Env {
    pub rt: Arc<ClientRuntime>,
    pub ns: String,
}

/// Runs `scenario` with a fresh client runtime on a two-thread tokio runtime under
/// `SCENARIO_LIMIT`, then shuts the client runtime down whatever happened.
pub fn with_client<T, Fut>(rig: &Rig, scenario: impl FnOnce(Env) -> Fut) -> T
where
    Fut: Future<Output = T>,
{
    with_client_at(&rig.ns, SCENARIO_LIMIT, scenario)
}

/// `with_client` for the name server at `ns`, under `limit`.
pub fn with_client_at<T, Fut>(ns: &str, limit: Duration, scenario: impl FnOnce(Env) -> Fut) -> T
where
    Fut: Future<Output = T>,
{
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("test runtime");
    let mut config = RuntimeConfig::for_parallelism("rmq-client", 2);
    config.shutdown_timeout = Duration::from_secs(10);
    let owner = RuntimeOwner::plan(config)
        .expect("runtime config is valid")
        .build()
        .expect("client runtime owner");
    let client_config = ClientRuntimeConfig {
        shutdown_timeout: Duration::from_secs(10),
        ..Default::default()
    };
    let client_runtime = {
        let _entered = rt.enter();
        let context = owner.root_context().component("client");
        ClientRuntime::try_new(context, client_config, telemetry()).expect("client runtime")
    };
    let env = Env {
        rt: client_runtime.clone(),
        ns: ns.to_string(),
    };
    let scenario = scenario(env);
    let outcome = rt.block_on(async { tokio::time::timeout(limit, scenario).await });
    rt.block_on(async move {
        let report = client_runtime.shutdown().await;
        if !report.is_healthy() {
            eprintln!("client runtime shutdown: {}", report.to_json());
        }
        owner.shutdown_tasks().await;
        owner.shutdown_background();
    });
    outcome.unwrap_or_else(|_| panic!("scenario not finished within {limit:?}"))
}

impl Env {
    /// A client config for the test's name server, with instance name `instance`.
    pub fn config(&self, instance: &str) -> ClientConfig {
        let mut config = ClientConfig::default();
        config.set_namesrv_addr(self.ns.as_str().into());
        config.set_instance_name(instance.into());
        config
    }

    pub async fn producer(&self, group: &str) -> DefaultMQProducer {
        let mut producer = DefaultMQProducer::builder(self.rt.clone())
            .client_config(self.config(&format!("{group}-instance")))
            .producer_group(group)
            .send_msg_timeout(5000)
            .build();
        producer.start().await.expect("producer starts");
        producer
    }

    /// A started clustering push consumer of `group` (instance `instance`), consuming `topic`
    /// with the tag expression `expr` from the first offset into `listener`.
    pub async fn push_consumer(
        &self,
        [group, instance, topic, expr]: [&str; 4],
        listener: Collector,
    ) -> DefaultMQPushConsumer {
        let mut consumer = DefaultMQPushConsumer::builder(self.rt.clone())
            .client_config(self.config(instance))
            .consumer_group(group)
            .consume_from_where(ConsumeFromWhere::ConsumeFromFirstOffset)
            .build();
        consumer.subscribe(topic, expr).await.expect("subscribe");
        consumer.register_message_listener_concurrently(listener);
        consumer.start().await.expect("push consumer starts");
        consumer
    }
}

/// A test message; its body, keys and user properties follow from its kind and index.
#[derive(Clone, Copy, Debug)]
pub struct Spec {
    pub kind: &'static str,
    pub i: usize,
    pub tags: Option<&'static str>,
}

pub fn specs(
    kind: &'static str,
    n: usize,
    tags: impl Fn(usize) -> Option<&'static str>,
) -> Vec<Spec> {
    (0..n)
        .map(|i| Spec {
            kind,
            i,
            tags: tags(i),
        })
        .collect()
}

pub fn ab_tags(i: usize) -> Option<&'static str> {
    Some(["TagA", "TagB"][i % 2])
}

impl Spec {
    pub fn body(&self) -> String {
        format!("{}-{}", self.kind, self.i)
    }

    /// Two keys, which RocketMQ joins with a space.
    pub fn keys(&self) -> String {
        format!("{}-key-{} order-{}", self.kind, self.i, self.i)
    }

    fn props(&self) -> [(&'static str, String); 3] {
        let (kind, idx) = (self.kind.to_string(), self.i.to_string());
        [("kind", kind), ("idx", idx), ("note", NOTE.to_string())]
    }

    pub fn message(&self, topic: &str) -> Message {
        let keys = self.keys().split(' ').map(str::to_string).collect();
        let mut b = Message::builder()
            .topic(topic)
            .body(Bytes::from(self.body()))
            .keys(keys);
        if let Some(tags) = self.tags {
            b = b.tags(tags);
        }
        for (k, v) in self.props() {
            b = b.raw_property(k, v).expect("user property");
        }
        b.build().expect("message builds")
    }

    /// Checks a received message's tags, keys and user properties (`prop` looks one up).
    pub fn check<'m>(
        &self,
        tags: Option<&str>,
        keys: Option<&str>,
        prop: impl Fn(&str) -> Option<&'m str>,
    ) {
        let body = self.body();
        assert_eq!(tags, self.tags, "tags of {body}");
        assert_eq!(keys, Some(self.keys().as_str()), "keys of {body}");
        for (k, v) in self.props() {
            assert_eq!(prop(k), Some(v.as_str()), "property {k} of {body}");
        }
    }

    pub fn check_ext(&self, m: &MessageExt) {
        let m = m.message_inner();
        self.check(m.tags(), m.property("KEYS"), |k| m.property(k));
    }
}

/// A sync send (to `queue` if given) that must report SEND_OK.
pub async fn send_ok(
    producer: &DefaultMQProducer,
    topic: &str,
    s: &Spec,
    queue: Option<MessageQueue>,
) -> SendResult {
    let sent = match queue {
        Some(q) => producer.send_to_queue(s.message(topic), q).await,
        None => producer.send(s.message(topic)).await,
    };
    let r = sent.unwrap_or_else(|e| panic!("send {s:?}: {e}"));
    let r = r.expect("a sync send returns a result");
    assert_eq!(r.send_status, SendStatus::SendOk, "{s:?}: {r:?}");
    r
}

/// What a send callback was told.
pub fn outcome(r: Option<&SendResult>, e: Option<&ClientError>) -> Result<SendStatus, String> {
    r.map(|r| r.send_status).ok_or_else(|| format!("{e:?}"))
}

/// Queue id -> the offset after the last of `results`.
pub fn queue_ends(results: &[SendResult]) -> BTreeMap<i32, i64> {
    let mut ends = BTreeMap::new();
    for r in results {
        let q = r
            .message_queue
            .as_ref()
            .expect("send result names its queue");
        let end = ends.entry(q.queue_id()).or_insert(0);
        *end = (*end).max(r.queue_offset as i64 + 1);
    }
    ends
}

pub fn text(m: &MessageExt) -> String {
    String::from_utf8_lossy(&m.body().unwrap_or_default()).into_owned()
}

/// The offsets a pull found, and where the next pull starts.
pub fn offsets(r: &PullResult) -> (Vec<i64>, u64) {
    let found = r.msg_found_list().unwrap_or_default();
    let offsets = found.iter().map(|m| m.queue_offset()).collect();
    (offsets, r.next_begin_offset())
}

/// A concurrently-consuming listener that forwards (consumer number, message) to a channel.
pub struct Collector(pub usize, pub mpsc::UnboundedSender<(usize, MessageExt)>);

impl MessageListenerConcurrently for Collector {
    fn consume_message(
        &self,
        msgs: &[&MessageExt],
        _context: &ConsumeConcurrentlyContext,
    ) -> ClientResult<ConsumeConcurrentlyStatus> {
        for m in msgs {
            let _ = self.1.send((self.0, (*m).clone()));
        }
        Ok(ConsumeConcurrentlyStatus::ConsumeSuccess)
    }
}

pub type Deliveries = mpsc::UnboundedReceiver<(usize, MessageExt)>;

/// Receives deliveries until `want` distinct bodies arrived, then waits until the consumers'
/// offsets reached `ends` on every queue, i.e. every stored message went through them,
/// delivered or filtered out, and returns everything delivered by then.
pub async fn deliveries(
    rx: &mut Deliveries,
    want: usize,
    consumers: &[&DefaultMQPushConsumer],
    ends: &BTreeMap<i32, i64>,
) -> Vec<(usize, MessageExt)> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let (mut got, mut bodies) = (Vec::new(), BTreeSet::new());
    while bodies.len() < want {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(d)) => {
                bodies.insert(text(&d.1));
                got.push(d);
            }
            _ => panic!("only {} of {want} delivered: {bodies:?}", bodies.len()),
        }
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let mut offsets = BTreeMap::new();
        for c in consumers {
            let info = c.consumer_running_info().await.expect("running info");
            for (q, p) in &info.mq_table {
                offsets.insert(q.queue_id(), p.commit_offset);
            }
        }
        if ends.iter().all(|(q, end)| offsets.get(q) == Some(end)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "offsets {offsets:?} never reached {ends:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    while let Ok(d) = rx.try_recv() {
        got.push(d);
    }
    got
}

/// The delivery of `s` in `got`.
pub fn find<'a>(got: &'a [(usize, MessageExt)], s: &Spec) -> &'a MessageExt {
    let found = got.iter().find(|(_, m)| text(m) == s.body());
    &found.unwrap_or_else(|| panic!("{s:?} not delivered")).1
}
