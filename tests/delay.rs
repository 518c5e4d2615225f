//! Delay levels end to end (spec §6.8) on a `petrel standalone` with short levels: a message
//! sent with `DELAY=n` reaches its queue once level n's delay has passed, never before, about
//! on time, once, also across a restart; bodies over 64 KiB and delayed batches are refused.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{create_topic, eventually, pull_all, queue, standalone, Petrel};
use petrel::client::{now_ms, properties, Client, Message, MessageExt, MessageQueue, SendResult};
use petrel_shards::remoting::response;

fn delayed(body: &str, level: &str) -> Message {
    Message::new(
        Bytes::copy_from_slice(body.as_bytes()),
        properties(Some("TagD"), None, &[("DELAY".into(), level.into())]),
    )
}

struct Rig {
    client: Client,
    addr: String,
    q: MessageQueue,
}

fn rig(petrel: &Petrel, topic: &str) -> Rig {
    let mut client = Client::new(&petrel.namesrv());
    create_topic(&mut client, petrel, topic, 1);
    let (broker, addr) = petrel.brokers()[0].clone();
    Rig {
        client,
        addr,
        q: queue(topic, &broker, 0),
    }
}

impl Rig {
    fn send(&mut self, body: &str, level: &str) -> (i64, SendResult) {
        let before = now_ms();
        let sent = self
            .client
            .send_to(&self.addr, &self.q, &delayed(body, level))
            .unwrap();
        assert_eq!(sent.code, response::SUCCESS);
        (before, sent)
    }

    fn all(&mut self) -> Vec<MessageExt> {
        pull_all(&mut self.client, &self.addr, &self.q, "*")
    }
}

#[test]
fn delayed_messages_arrive_after_their_level_never_early_and_once() {
    let (_dir, petrel) = standalone(&["messageDelayLevel=1s 2s 3s"]);
    let mut rig = rig(&petrel, "TD");
    let (t1, s1) = rig.send("d1", "1");
    let (t2, s2) = rig.send("d2", "2");
    // A level above the last is the last.
    let (t3, s3) = rig.send("d3", "99");
    let sent_at = now_ms();
    assert!(
        rig.all().is_empty(),
        "nothing is in the queue before its time"
    );
    let got = eventually(Duration::from_secs(15), || {
        let m = rig.all();
        (m.len() == 3).then_some(m)
    });
    for (m, (body, t, s, delay_ms)) in got.iter().zip([
        ("d1", t1, &s1, 1000),
        ("d2", t2, &s2, 2000),
        ("d3", t3, &s3, 3000),
    ]) {
        assert_eq!(&m.body[..], body.as_bytes());
        assert_eq!(m.msg_id, s.msg_id, "the client-visible ID is kept");
        assert_eq!(m.tags(), Some("TagD"));
        assert_eq!(m.properties.get("DELAY"), None, "{:?}", m.properties);
        assert_eq!(m.properties.get("REAL_TOPIC"), Some("TD"));
        assert!(m.store_timestamp >= t + delay_ms, "{body} arrived early");
        assert!(
            m.store_timestamp <= sent_at + delay_ms + 1500,
            "{body} arrived {} ms late",
            m.store_timestamp - sent_at - delay_ms
        );
    }
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(rig.all().len(), 3, "each delayed message is delivered once");
}

#[test]
fn a_restart_mid_delay_delivers_what_waited_and_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let levels = "messageDelayLevel=1s 3s";
    let petrel = Petrel::start("standalone", dir.path(), &[levels]);
    let mut rig = rig(&petrel, "TR");
    rig.send("early", "1");
    eventually(Duration::from_secs(10), || {
        (rig.all().len() == 1).then_some(())
    });
    let (t, _) = rig.send("waiting", "2");
    assert!(petrel.terminate().success());
    let petrel = Petrel::start("standalone", dir.path(), &[levels]);
    let (broker, addr) = petrel.brokers()[0].clone();
    let mut client = Client::new(&petrel.namesrv());
    let q = queue("TR", &broker, 0);
    let started = Instant::now();
    let got = eventually(Duration::from_secs(15), || {
        let m = pull_all(&mut client, &addr, &q, "*");
        (m.len() == 2).then_some(m)
    });
    assert_eq!(&got[0].body[..], b"early");
    assert_eq!(&got[1].body[..], b"waiting");
    assert!(
        got[1].store_timestamp >= t + 3000,
        "delivered early after the restart"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(
        pull_all(&mut client, &addr, &q, "*").len(),
        2,
        "nothing twice"
    );
}

#[test]
fn large_delayed_bodies_and_delayed_batches_are_refused() {
    let (_dir, petrel) = standalone(&["messageDelayLevel=1s"]);
    let mut rig = rig(&petrel, "TB");
    let big = "x".repeat(64 * 1024 + 1);
    let err = rig
        .client
        .send_to(&rig.addr, &rig.q, &delayed(&big, "1"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("code 13") && err.contains("at most 65536 bytes"),
        "{err}"
    );
    let batch = [delayed("a", "1"), delayed("b", "0")];
    let err = rig
        .client
        .send_batch_to(&rig.addr, &rig.q, &batch)
        .unwrap_err()
        .to_string();
    assert!(err.contains("cannot be sent in a batch"), "{err}");
    // DELAY=0 is an ordinary message.
    rig.send("now", "0");
    assert_eq!(rig.all().len(), 1);
}

#[test]
fn a_message_given_back_is_retried_after_its_level_then_dead_lettered() {
    let (_dir, petrel) = standalone(&["messageDelayLevel=1s 1s 1s 1s"]);
    let mut rig = rig(&petrel, "TK");
    let (_, sent) = rig.send("k", "0");
    let first = rig.all().pop().expect("the message");
    let broker = rig.q.broker_name.clone();
    let send_back = |client: &mut Client, m: &MessageExt, max: i32| {
        client
            .call_fields(
                &rig.addr.clone(),
                petrel_shards::remoting::request::CONSUMER_SEND_MSG_BACK,
                &[
                    ("offset", m.commit_log_offset.to_string()),
                    ("group", "GK".into()),
                    ("delayLevel", "0".into()),
                    ("originMsgId", m.msg_id.clone()),
                    ("originTopic", m.topic.clone()),
                    ("maxReconsumeTimes", max.to_string()),
                ],
            )
            .unwrap()
    };
    let t = now_ms();
    assert_eq!(
        send_back(&mut rig.client, &first, 2).code,
        response::SUCCESS
    );
    // Level 3 + 0 is clamped to the last of the four 1 s levels.
    let retry_q = queue("%RETRY%GK", &broker, 0);
    let retried = eventually(Duration::from_secs(10), || {
        pull_all(&mut rig.client, &rig.addr, &retry_q, "*").pop()
    });
    assert!(retried.store_timestamp >= t + 1000, "retried early");
    assert_eq!(&retried.body[..], b"k");
    assert_eq!(retried.msg_id, sent.msg_id, "the client-visible ID is kept");
    assert_eq!(retried.reconsume_times, 1);
    assert_eq!(retried.properties.get("RETRY_TOPIC"), Some("TK"));
    assert_eq!(
        retried.properties.get("ORIGIN_MESSAGE_ID"),
        Some(first.offset_msg_id.as_str())
    );
    // Consumed twice already with at most 1 retry allowed: straight to the dead-letter queue.
    assert_eq!(
        send_back(&mut rig.client, &retried, 1).code,
        response::SUCCESS
    );
    let dlq_q = queue("%DLQ%GK", &broker, 0);
    let dead = eventually(Duration::from_secs(5), || {
        pull_all(&mut rig.client, &rig.addr, &dlq_q, "*").pop()
    });
    assert_eq!(dead.msg_id, sent.msg_id);
    assert_eq!(dead.reconsume_times, 2);
    assert_eq!(dead.properties.get("DELAY"), None);
    assert_eq!(
        dead.properties.get("ORIGIN_MESSAGE_ID"),
        Some(first.offset_msg_id.as_str()),
        "the first ID stays the origin"
    );
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        pull_all(&mut rig.client, &rig.addr, &retry_q, "*").len(),
        1,
        "a dead letter is not retried"
    );
    // An offset where no message starts is refused.
    let mut bogus = first.clone();
    bogus.commit_log_offset += 1;
    let reply = send_back(&mut rig.client, &bogus, 2);
    assert_eq!(reply.code, response::SYSTEM_ERROR);
    assert!(reply
        .remark
        .unwrap()
        .contains("look message by offset failed"));
}
