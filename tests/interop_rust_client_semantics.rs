//! Stock-client interop, part two: transactions and orderly consumption with the third-party
//! `rocketmq-client-rust` 1.0.0 crate against a real `petrel standalone` process. A
//! transactional producer commits, rolls back or leaves open its local transactions and answers
//! the broker's check-backs; a producer with a message-queue selector keeps each order key on
//! one queue and an orderly push consumer (MessageListenerOrderly) must see each key's messages
//! in the order they were sent. Broker, client runtime and helpers come from
//! `interop_rust_client/harness.rs`, as in `interop_rust_client.rs`.

mod common;
#[path = "interop_rust_client/harness.rs"]
mod harness;

use std::any::Any;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::eventually;
use harness::{deliveries, queue_ends, text, with_client, Rig};
use rocketmq_client_rust::{
    ClientResult, ConsumeOrderlyContext, ConsumeOrderlyStatus, DefaultMQPushConsumer, JavaHashCode,
    LocalTransactionState, MQPushConsumer, MessageListenerOrderly, SendStatus, TransactionListener,
    TransactionMQProducer,
};
use rocketmq_model::common::consumer::consume_from_where::ConsumeFromWhere;
use rocketmq_model::common::message::message_ext::MessageExt;
use rocketmq_model::common::message::message_queue::MessageQueue;
use rocketmq_model::common::message::message_single::Message;
use rocketmq_model::common::message::MessageTrait;
use tokio::sync::mpsc;

/// Check-backs start once a half message is a second old, and run every half second.
const TX_SETTINGS: [&str; 2] = ["transactionTimeOut=1000", "transactionCheckInterval=500"];

/// A message of `topic` with body `body` and the user property idx = `i`, plus `props`.
fn message(topic: &str, body: String, i: usize, props: &[(&str, &str)]) -> Message {
    let mut b = Message::builder()
        .topic(topic)
        .body(body)
        .raw_property("idx", i.to_string())
        .expect("user property");
    for (k, v) in props {
        b = b.raw_property(*k, *v).expect("user property");
    }
    b.build().expect("message builds")
}

/// The idx user property of a message received by the stock client.
fn idx_of(m: &Message) -> Option<usize> {
    m.property("idx")?.parse().ok()
}

/// The local transaction of message i: commit, roll back or unknown for i % 3 = 0, 1, 2.
fn planned(i: usize) -> LocalTransactionState {
    use LocalTransactionState::{CommitMessage, RollbackMessage, Unknown};
    [CommitMessage, RollbackMessage, Unknown][i % 3]
}

/// Runs message i's local transaction as `planned` (the send passes i as its argument); a
/// check-back always answers commit, and records the idx of the message it was asked about.
struct ByIndex(Arc<Mutex<Vec<Option<usize>>>>);

impl TransactionListener for ByIndex {
    fn execute_local_transaction(
        &self,
        _msg: &dyn MessageTrait,
        arg: Option<&(dyn Any + Send + Sync)>,
    ) -> LocalTransactionState {
        let i = arg.and_then(|a| a.downcast_ref::<usize>());
        planned(*i.expect("the send passes the message's index"))
    }

    fn check_local_transaction(&self, msg: &MessageExt) -> LocalTransactionState {
        self.0.lock().unwrap().push(idx_of(msg.message_inner()));
        LocalTransactionState::CommitMessage
    }
}

/// Goal: the stock client's transactions work against Petrel: a committed half message is
/// stored in the real topic, a rolled-back one never, and one whose outcome was unknown is
/// checked back with the producer and stored once the check commits it. Method: with short
/// check settings, a TransactionMQProducer sends 9 messages whose local transactions commit,
/// roll back or answer unknown by i % 3, and whose check-back answers commit; every send must
/// be SEND_OK and report its local state. While the producer runs, read the topic with Petrel's
/// own client until 6 messages are there: exactly those with i % 3 != 1, each once, with body,
/// idx and message id intact; and the broker checked back exactly the unknown ones.
#[test]
fn transactions_commit_roll_back_and_unknowns_are_committed_by_check_back() {
    let rig = &Rig::with_props("TR_tx", 2, &TX_SETTINGS);
    let checked = Arc::new(Mutex::new(Vec::new()));
    let listener = ByIndex(checked.clone());
    let (sent, stored) = with_client(rig, |env| async move {
        // Petrel checks back only a producer it knows from a heartbeat. The client's first one
        // (1 s after start) normally comes after the sends found the broker; should it not, the
        // next comes 10 s later (the least the client accepts) rather than 30 s.
        let mut config = env.config("PG_interop_tx-instance");
        config.set_heartbeat_broker_interval(10_000);
        let mut producer = TransactionMQProducer::builder(env.rt.clone())
            .client_config(config)
            .producer_group("PG_interop_tx")
            .send_msg_timeout(5000)
            .transaction_listener(listener)
            .build();
        producer
            .start()
            .await
            .expect("transactional producer starts");
        let mut sent = BTreeMap::new();
        for i in 0..9 {
            let msg = message("TR_tx", format!("tx-{i}"), i, &[]);
            let r = producer.send_message_in_transaction(msg, Some(i)).await;
            let r = r.unwrap_or_else(|e| panic!("transactional send {i}: {e}"));
            assert_eq!(r.local_transaction_state, Some(planned(i)), "message {i}");
            let r = r
                .send_result
                .expect("a transactional send returns a result");
            assert_eq!(r.send_status, SendStatus::SendOk, "message {i}: {r:?}");
            let msg_id = r.msg_id.as_deref().expect("the send names the message id");
            sent.insert(i, msg_id.to_string());
        }
        // The unknown ones are stored only after a check-back, which needs the producer.
        let stored = tokio::task::block_in_place(|| {
            eventually(Duration::from_secs(30), || {
                let got = rig.stored("TR_tx", 2);
                (got.len() >= 6).then_some(got)
            })
        });
        producer.shutdown().await;
        (sent, stored)
    });

    let idx = |m: &petrel::client::MessageExt| -> usize {
        let idx = m.properties.get("idx").and_then(|v| v.parse().ok());
        idx.unwrap_or_else(|| panic!("stored message without idx: {m:?}"))
    };
    let found: Vec<usize> = stored.iter().map(idx).collect();
    assert_eq!(found.len(), 6, "each message stored once: {found:?}");
    let want: BTreeSet<usize> = (0..9).filter(|i| i % 3 != 1).collect();
    assert_eq!(found.iter().copied().collect::<BTreeSet<_>>(), want);
    for m in &stored {
        let i = idx(m);
        assert_eq!(m.topic, "TR_tx", "message {i}");
        assert_eq!(String::from_utf8_lossy(&m.body), format!("tx-{i}"));
        let uniq_key = m.properties.get("UNIQ_KEY");
        assert_eq!(uniq_key, Some(sent[&i].as_str()), "message id of {i}");
    }
    let checked: BTreeSet<Option<usize>> = checked.lock().unwrap().iter().copied().collect();
    let unknown: BTreeSet<Option<usize>> = (0..9).filter(|i| i % 3 == 2).map(Some).collect();
    assert_eq!(
        checked, unknown,
        "only the open transactions are checked back"
    );
}

/// An orderly listener that forwards each message it consumes, in consumption order, to the
/// test (as consumer 0, the shape `harness::deliveries` reads).
struct OrderlyCollector(mpsc::UnboundedSender<(usize, MessageExt)>);

impl MessageListenerOrderly for OrderlyCollector {
    fn consume_message(
        &self,
        msgs: &[&MessageExt],
        _context: &mut ConsumeOrderlyContext,
    ) -> ClientResult<ConsumeOrderlyStatus> {
        for m in msgs {
            let _ = self.0.send((0, (*m).clone()));
        }
        Ok(ConsumeOrderlyStatus::Success)
    }
}

/// Goal: an orderly push consumer of the stock client sees each order key's messages in the
/// order they were sent. Method: send 200 messages over a 4-queue topic with order keys
/// order-0..order-7 (i % 8, user property okey; idx = i), each through a selector closure that
/// picks queue (Java hash of the key) mod 4, so each key stays on one queue and the keys cover
/// all four. Then an orderly push consumer (MessageListenerOrderly, which locks its queues on
/// the broker) of a new group consumes from the first offset until all 200 arrived and its
/// offsets reached the end of every queue. Every message is delivered, from its key's queue,
/// intact; for each key the idx of first deliveries is strictly increasing.
#[test]
fn an_orderly_push_consumer_sees_each_order_key_in_send_order() {
    let rig = &Rig::new("TR_order", 4);
    let by_key = |mqs: &[MessageQueue], _: &Message, key: &String| {
        let n = mqs.len() as i32;
        Some(mqs[key.java_hash_code().rem_euclid(n) as usize].clone())
    };
    with_client(rig, |env| async move {
        let mut producer = env.producer("PG_interop_order").await;
        let (mut results, mut queue_of) = (Vec::new(), BTreeMap::new());
        for i in 0..200 {
            let key = format!("order-{}", i % 8);
            let body = format!("{key}/{i}");
            let msg = message("TR_order", body, i, &[("okey", key.as_str())]);
            let r = producer.send_with_selector(msg, by_key, key.clone()).await;
            let r = r.unwrap_or_else(|e| panic!("send {i}: {e}"));
            let r = r.expect("a sync send returns a result");
            assert_eq!(r.send_status, SendStatus::SendOk, "message {i}: {r:?}");
            let q = r
                .message_queue
                .as_ref()
                .expect("send result names its queue");
            let first = *queue_of.entry(key.clone()).or_insert(q.queue_id());
            assert_eq!(
                q.queue_id(),
                first,
                "{key} stays on one queue (message {i})"
            );
            results.push(r);
        }
        let ends = queue_ends(&results);
        assert_eq!(ends.len(), 4, "the keys cover all queues: {queue_of:?}");

        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut consumer = DefaultMQPushConsumer::builder(env.rt.clone())
            .client_config(env.config("order-consumer"))
            .consumer_group("CG_interop_order")
            .consume_from_where(ConsumeFromWhere::ConsumeFromFirstOffset)
            .build();
        consumer
            .subscribe("TR_order", "*")
            .await
            .expect("subscribe");
        consumer.register_message_listener_orderly(OrderlyCollector(tx));
        consumer
            .start()
            .await
            .expect("orderly push consumer starts");
        let got = deliveries(&mut rx, 200, &[&consumer], &ends).await;

        // For each key, the idx of each message the first time it was delivered, in order.
        let (mut seen, mut firsts) = (BTreeSet::new(), BTreeMap::<&str, Vec<usize>>::new());
        for (_, m) in &got {
            let i = idx_of(m.message_inner()).expect("idx");
            let key = m.message_inner().property("okey").expect("okey");
            assert_eq!(key, format!("order-{}", i % 8), "order key of {i}");
            assert_eq!(text(m), format!("{key}/{i}"), "body of {i}");
            assert_eq!(m.queue_id(), queue_of[key], "queue of {i}");
            if seen.insert(i) {
                firsts.entry(key).or_default().push(i);
            }
        }
        assert_eq!(
            seen,
            (0..200).collect::<BTreeSet<_>>(),
            "every message delivered"
        );
        for (key, order) in &firsts {
            let increasing = order.windows(2).all(|w| w[0] < w[1]);
            assert!(increasing, "{key} consumed out of order: {order:?}");
        }
        consumer.shutdown().await;
        producer.shutdown().await;
    });
}
