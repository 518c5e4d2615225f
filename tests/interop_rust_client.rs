//! Stock-client interop: a real `petrel standalone` process driven by the third-party
//! `rocketmq-client-rust` 1.0.0 crate (the RocketMQ Rust client). Petrel's own client only
//! creates topics and reads back what the stock client stored. Each test starts its own broker
//! and topic and runs the client on a two-thread tokio runtime under an overall deadline; the
//! client side lives in `interop_rust_client/harness.rs`.
//!
//! `RUST_LOG=debug` turns on the stock client's own log; the broker's stderr is printed as
//! `[petrel] ...` lines.

mod common;
#[path = "interop_rust_client/harness.rs"]
mod harness;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use common::eventually;
use harness::{
    ab_tags, deliveries, find, offsets, outcome, queue_ends, send_ok, specs, text, with_client,
    Collector, Rig, Spec,
};
use rocketmq_client_rust::{
    DefaultLitePullConsumer, DefaultMQPushConsumer, PullStatus, SendStatus,
};
use tokio::sync::mpsc;

/// Goal: every send mode of the stock producer works against Petrel and stores the message
/// intact. Method: sync, async (callback), oneway and batch sends of messages with tags, two
/// keys and user properties (one non-ASCII); every answered send must say SEND_OK. Read the
/// topic back with Petrel's own client: body, tags, keys and properties intact, nothing twice,
/// and for sync sends the queue, offset and both message ids the client was told; the oneway
/// sends must eventually all be stored.
#[test]
fn producer_sync_async_oneway_and_batch_sends_are_stored_intact() {
    let rig = &Rig::new("TI_send", 4);
    let kinds = ["sync", "async", "oneway", "batch"].map(|k| specs(k, 10, ab_tags));
    let all: Vec<Spec> = kinds.iter().flatten().copied().collect();
    let [sync, asynch, oneway, batch] = kinds;
    let sync_results = with_client(rig, |env| async move {
        let mut producer = env.producer("PG_interop_send").await;
        let mut sync_results = Vec::new();
        for s in &sync {
            sync_results.push((*s, send_ok(&producer, "TI_send", s, None).await));
        }

        let (tx, mut rx) = mpsc::unbounded_channel();
        for s in &asynch {
            let (tx, body, message) = (tx.clone(), s.body(), s.message("TI_send"));
            let sent = producer.send_with_callback(message, move |r, e| {
                let _ = tx.send((body.clone(), outcome(r, e)));
            });
            sent.await.expect("async send is accepted");
        }
        for _ in 0..asynch.len() {
            let (body, outcome) = rx.recv().await.expect("every async send calls back");
            assert_eq!(outcome, Ok(SendStatus::SendOk), "async send of {body}");
        }

        for s in &oneway {
            producer
                .send_oneway(s.message("TI_send"))
                .await
                .expect("oneway");
        }

        let messages = batch.iter().map(|s| s.message("TI_send")).collect();
        let r = producer.send_batch(messages).await.expect("batch send");
        assert_eq!(r.send_status, SendStatus::SendOk, "batch: {r:?}");
        producer.shutdown().await;
        sync_results
    });

    // Oneway sends have no answer: wait until everything is stored, then compare.
    let stored = eventually(Duration::from_secs(15), || {
        let got = rig.stored("TI_send", 4);
        (got.len() >= all.len()).then_some(got)
    });
    assert_eq!(stored.len(), all.len(), "no message stored twice");
    let body = |m: &petrel::client::MessageExt| String::from_utf8_lossy(&m.body).into_owned();
    let by_body: HashMap<String, _> = stored.iter().map(|m| (body(m), m)).collect();
    for s in &all {
        let m = by_body
            .get(&s.body())
            .unwrap_or_else(|| panic!("{s:?} not stored"));
        s.check(m.tags(), m.keys(), |k| m.properties.get(k));
        assert_eq!(m.topic, "TI_send");
    }
    for (s, r) in &sync_results {
        let (m, q) = (by_body[&s.body()], r.message_queue.as_ref().unwrap());
        let at = (
            q.broker_name().to_string(),
            q.queue_id(),
            r.queue_offset as i64,
        );
        assert_eq!(
            at,
            (m.broker_name.clone(), m.queue_id, m.queue_offset),
            "{s:?}"
        );
        let ids = (r.msg_id.as_deref(), r.offset_msg_id.as_deref());
        let stored_ids = (m.properties.get("UNIQ_KEY"), Some(m.offset_msg_id.as_str()));
        assert_eq!(ids, stored_ids, "message ids of {s:?}");
    }
}

/// Goal: a clustering push consumer receives exactly what the stock producer sent. Method: the
/// stock producer sends 40 messages (tags, keys, user properties) over a 4-queue topic; then a
/// push consumer of a new group starts from the first offset; collect until all 40 arrived and
/// its offsets reached the end of every queue (so anything it would still deliver has been
/// delivered). Exactly 40 deliveries, each intact and at the queue, offset and message id the
/// producer was told (or, when the client gave one back, from the retry topic with that id).
#[test]
fn a_push_consumer_receives_exactly_what_the_stock_producer_sent() {
    let rig = &Rig::new("TI_push", 4);
    let sent = specs("push", 40, ab_tags);
    with_client(rig, |env| async move {
        let mut producer = env.producer("PG_interop_push").await;
        let mut results = Vec::new();
        for s in &sent {
            results.push(send_ok(&producer, "TI_push", s, None).await);
        }
        let ends = queue_ends(&results);
        assert_eq!(
            ends.len(),
            4,
            "the producer spread the messages over all queues"
        );

        let (tx, mut rx) = mpsc::unbounded_channel();
        let names = ["CG_interop_push", "push-consumer", "TI_push", "*"];
        let mut consumer = env.push_consumer(names, Collector(0, tx)).await;
        let got = deliveries(&mut rx, sent.len(), &[&consumer], &ends).await;
        let bodies: Vec<String> = got.iter().map(|(_, m)| text(m)).collect();
        assert_eq!(
            got.len(),
            sent.len(),
            "each message delivered once: {bodies:?}"
        );
        for (s, r) in sent.iter().zip(&results) {
            let m = find(&got, s);
            s.check_ext(m);
            let (q, uniq_key) = (r.message_queue.as_ref().unwrap(), m.property("UNIQ_KEY"));
            // The client can give a message back without its listener having seen it (it
            // counts a consume task that failed to run as RECONSUME_LATER); it then comes
            // again through the retry topic with the same ID: at-least-once delivery. The
            // client names the delivery after the retry topic or, having reset it, after the
            // original topic with the retry queue's id and offset; RETRY_TOPIC, which the
            // broker adds on the way back, tells either.
            let retried = m.message_inner().topic() == "%RETRY%CG_interop_push"
                || m.property("RETRY_TOPIC").is_some();
            if retried {
                assert_eq!(uniq_key, r.msg_id.as_deref(), "{s:?}");
                assert_eq!(m.property("RETRY_TOPIC"), Some("TI_push"), "{s:?}");
                assert!(m.reconsume_times() >= 1, "{s:?}");
                continue;
            }
            let at = (q.queue_id(), r.queue_offset as i64, r.msg_id.as_deref());
            assert_eq!((m.queue_id(), m.queue_offset(), uniq_key), at, "{s:?}");
        }
        consumer.shutdown().await;
        producer.shutdown().await;
    });
}

/// Goal: two push consumers of one group split the queues between them. Method: start two
/// consumers (distinct instance names) of one group on a 4-queue topic; wait until Petrel lists
/// both for GET_CONSUMER_LIST_BY_GROUP and both clients' rebalances settled on disjoint halves;
/// then send 10 messages to each queue and collect (consumer, queue, body). The union must be
/// all 40, no message delivered twice (so none to both), and the queues each consumer got
/// messages from must be disjoint.
#[test]
fn two_push_consumers_of_one_group_split_the_queues() {
    const GROUP: &str = "CG_interop_split";
    const INSTANCES: [&str; 2] = ["split-a", "split-b"];
    let rig = &Rig::new("TI_split", 4);
    let sent = specs("split", 40, ab_tags);
    with_client(rig, |env| async move {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut consumers = Vec::new();
        for (i, instance) in INSTANCES.into_iter().enumerate() {
            let names = [GROUP, instance, "TI_split", "*"];
            consumers.push(env.push_consumer(names, Collector(i, tx.clone())).await);
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        let assigned = loop {
            let members = tokio::task::block_in_place(|| rig.group_members(GROUP));
            let mut sets = Vec::new();
            for c in &consumers {
                let info = c.consumer_running_info().await.expect("running info");
                sets.push(
                    info.mq_table
                        .keys()
                        .map(|q| q.queue_id())
                        .collect::<BTreeSet<_>>(),
                );
            }
            let listed = INSTANCES
                .iter()
                .all(|i| members.iter().any(|m| m.contains(i)));
            let halves = sets[0].len() == 2 && sets[1].len() == 2 && sets[0].is_disjoint(&sets[1]);
            if members.len() == 2 && listed && halves {
                break sets;
            }
            assert!(
                Instant::now() < deadline,
                "members {members:?}, assignment {sets:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };

        let mut producer = env.producer("PG_interop_split").await;
        let mut results = Vec::new();
        for s in &sent {
            let queue = Some(rig.queue("TI_split", s.i % 4));
            results.push(send_ok(&producer, "TI_split", s, queue).await);
        }
        let ends = queue_ends(&results);
        assert_eq!(ends, (0..4).map(|q| (q, 10)).collect::<BTreeMap<_, _>>());

        let refs: Vec<&DefaultMQPushConsumer> = consumers.iter().collect();
        let got = deliveries(&mut rx, sent.len(), &refs, &ends).await;
        let seen: Vec<_> = got
            .iter()
            .map(|(c, m)| (*c, m.queue_id(), text(m)))
            .collect();
        assert_eq!(
            got.len(),
            sent.len(),
            "no message delivered twice: {seen:?}"
        );
        sent.iter().for_each(|s| s.check_ext(find(&got, s)));
        let queues_of = |c: usize| seen.iter().filter(|d| d.0 == c).map(|d| d.1).collect();
        let (a, b): (BTreeSet<i32>, BTreeSet<i32>) = (queues_of(0), queues_of(1));
        assert!(
            a.is_disjoint(&b),
            "both consumers read a queue: {a:?} {b:?}"
        );
        assert_eq!([a, b], [assigned[0].clone(), assigned[1].clone()]);

        producer.shutdown().await;
        for mut c in consumers {
            c.shutdown().await;
        }
    });
}

/// Goal: a tag-filtered push consumer sees only, and all of, the messages with its tag.
/// Method: the stock producer sends 30 messages cycling TagA, TagB and no tag over a 2-queue
/// topic, then one more TagA to the end of each queue; a push consumer subscribed to "TagA"
/// collects until the 12 TagA bodies arrived and its offsets passed the end of both queues,
/// and must have received exactly those 12. (The trailing TagA makes "passed the end" quick to
/// observe: a consumer's offset moves past filtered-out messages at the end of a queue only
/// when its long poll there times out, 15 s in this client as in Java's.)
#[test]
fn a_tag_filtered_push_consumer_sees_only_and_all_of_its_tag() {
    let rig = &Rig::new("TI_tags", 2);
    let mut sent = specs("tags", 30, |i| [Some("TagA"), Some("TagB"), None][i % 3]);
    sent.extend(specs("tags-last", 2, |_| Some("TagA")));
    with_client(rig, |env| async move {
        let mut producer = env.producer("PG_interop_tags").await;
        let mut results = Vec::new();
        for s in &sent {
            let queue = (s.kind == "tags-last").then(|| rig.queue("TI_tags", s.i));
            results.push(send_ok(&producer, "TI_tags", s, queue).await);
        }
        let ends = queue_ends(&results);
        assert_eq!(
            ends.len(),
            2,
            "the producer spread the messages over both queues"
        );

        let (tx, mut rx) = mpsc::unbounded_channel();
        let names = ["CG_interop_tags", "tags-consumer", "TI_tags", "TagA"];
        let mut consumer = env.push_consumer(names, Collector(0, tx)).await;
        let want: Vec<&Spec> = sent.iter().filter(|s| s.tags == Some("TagA")).collect();
        let got = deliveries(&mut rx, want.len(), &[&consumer], &ends).await;
        let seen: Vec<_> = got
            .iter()
            .map(|(_, m)| (text(m), m.message_inner().tags()))
            .collect();
        assert_eq!(got.len(), want.len(), "only TagA, each once: {seen:?}");
        want.iter().for_each(|s| s.check_ext(find(&got, s)));
        consumer.shutdown().await;
        producer.shutdown().await;
    });
}

/// Goal: the stock client's pull consumers read a queue by offset. Method: send 25 messages
/// (TagA/TagB alternating) to queue 1 of a 2-queue topic. The classic DefaultMQPullConsumer
/// (kept by 1.0.0 for Java compatibility, hence the deprecation allowance) pulls queue 1 from
/// offset 0 in batches of 8 until the broker has nothing new: every message, in order; a pull
/// of 3 from offset 5 gets 5..8; a "TagA" pull of 3 from 0 gets offsets 0, 2, 4 (the broker
/// filters; client-side filtering of an unfiltered answer would give 0, 2) and resumes at 5;
/// the empty queue 0 has nothing. Then a DefaultLitePullConsumer assigned queue 1 and seeked
/// to 0 polls every message, in order.
#[test]
#[allow(deprecated)]
fn pull_consumers_read_a_queue_from_offset_zero_in_order() {
    let rig = &Rig::new("TI_pull", 2);
    let want: Vec<(i64, String)> = (0..25).map(|i| (i, format!("pull-{i}"))).collect();
    with_client(rig, |env| async move {
        let mut producer = env.producer("PG_interop_pull").await;
        for s in specs("pull", 25, ab_tags) {
            let r = send_ok(&producer, "TI_pull", &s, Some(rig.queue("TI_pull", 1))).await;
            assert_eq!(r.queue_offset, s.i as u64);
        }

        let classic = rocketmq_client_rust::DefaultMQPullConsumer::builder(env.rt.clone())
            .consumer_group("CG_interop_pull")
            .name_server_addr(env.ns.as_str())
            .build()
            .expect("pull consumer builds");
        classic.start().await.expect("pull consumer starts");
        let mut queues = classic
            .fetch_subscribe_message_queues("TI_pull")
            .await
            .unwrap();
        queues.sort_by_key(|q| q.queue_id());
        assert_eq!(
            queues.iter().map(|q| q.queue_id()).collect::<Vec<_>>(),
            [0, 1]
        );
        let (mut got, mut offset) = (Vec::new(), 0);
        for _ in 0..10 {
            let r = classic
                .pull(&queues[1], "*", offset, 8)
                .await
                .expect("pull");
            match r.pull_status() {
                PullStatus::Found => {
                    let msgs = r.msg_found_list().unwrap_or_default();
                    assert!((1..=8).contains(&msgs.len()), "{} messages", msgs.len());
                    got.extend(msgs.iter().map(|m| (m.queue_offset(), text(m))));
                    offset = r.next_begin_offset() as i64;
                }
                PullStatus::NoNewMsg => break,
                other => panic!("pull at {offset}: {other:?}"),
            }
        }
        assert_eq!((&got, offset), (&want, 25));
        let r = classic
            .pull(&queues[1], "*", 5, 3)
            .await
            .expect("pull from the middle");
        assert_eq!(offsets(&r), (vec![5, 6, 7], 8));
        let r = classic
            .pull(&queues[1], "TagA", 0, 3)
            .await
            .expect("tag-filtered pull");
        assert_eq!(offsets(&r), (vec![0, 2, 4], 5));
        let r = classic
            .pull(&queues[0], "*", 0, 8)
            .await
            .expect("pull an empty queue");
        assert_eq!(*r.pull_status(), PullStatus::NoNewMsg);
        classic.shutdown().await.expect("pull consumer shuts down");

        let lite = DefaultLitePullConsumer::builder(env.rt.clone())
            .consumer_group("CG_interop_lite")
            .name_server_addr(env.ns.as_str())
            .auto_commit(false)
            .build()
            .expect("lite pull consumer builds");
        lite.start().await.expect("lite pull consumer starts");
        let queues = lite.fetch_message_queues("TI_pull").await.expect("queues");
        let q1 = queues
            .into_iter()
            .find(|q| q.queue_id() == 1)
            .expect("queue 1");
        lite.assign(vec![q1.clone()]).await.expect("assign");
        lite.seek(&q1, 0).await.expect("seek to 0");
        let (deadline, mut got) = (Instant::now() + Duration::from_secs(30), Vec::new());
        while got.len() < want.len() {
            let polled = lite.poll_with_timeout(1000).await;
            got.extend(polled.iter().map(|m| (m.queue_offset(), text(m))));
            assert!(Instant::now() < deadline, "polled only {got:?}");
        }
        assert_eq!(got, want);
        lite.shutdown().await;
        producer.shutdown().await;
    });
}
