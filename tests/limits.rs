//! Limits (F34) on a real `petrel standalone`: TPS limits per topic and per group, set in
//! broker.conf, changed live, and set per topic and group by Apache's own mqadmin as
//! attributes; a stock Java consumer under a consume limit; the cap on topics per shard;
//! registrations sent in parts; names checked where a pull names its group.

mod common;

use std::time::{Duration, Instant};

use common::java::Driver;
use common::{admin_ok, apache_mqadmin, create_topic, eventually, queue, Petrel};
use petrel::client::{properties, Client, ClientError, Message, MessageQueue, PullRequest};
use petrel_shards::broker::metadata::TopicConfig;
use petrel_shards::remoting::response;

const MQADMIN_LIMIT: Duration = Duration::from_secs(120);

fn message(i: usize) -> Message {
    Message::new(format!("m{i}"), properties(None, None, &[]))
}

/// Pulls `q` from 0 as `group` until `expect` messages came: how long that took.
fn pull_timed(
    client: &mut Client,
    addr: &str,
    q: &MessageQueue,
    group: &str,
    expect: usize,
) -> Duration {
    let started = Instant::now();
    let (mut offset, mut got) = (0, 0);
    while got < expect {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{got} of {expect} pulled"
        );
        let req = PullRequest {
            group,
            queue: q,
            offset,
            max: 32,
            subscription: "*",
            suspend: Some(Duration::from_secs(5)),
        };
        let r = client.pull(addr, &req).unwrap();
        for (i, m) in r.messages.iter().enumerate() {
            assert_eq!(m.queue_offset, offset + i as i64, "in order, no gaps");
        }
        got += r.messages.len();
        offset = r.next_begin_offset;
    }
    assert_eq!(got, expect);
    started.elapsed()
}

/// Apache mqadmin's `updateTopic` of topic Tps (one queue) on `target` with `attributes`.
fn update_topic(ns: &str, target: &[&str], attributes: &str) -> (bool, String, String) {
    let mut args = vec!["updateTopic", "-n", ns];
    args.extend_from_slice(target);
    args.extend(["-t", "Tps", "-r", "1", "-w", "1", "-a", attributes]);
    apache_mqadmin(&args, MQADMIN_LIMIT)
}

#[test]
fn tps_limits_refuse_sends_slow_pulls_and_change_live() {
    let dir = tempfile::tempdir().unwrap();
    let props = ["topicProduceTpsLimit=100", "topicConsumeTpsLimit=0"];
    let petrel = Petrel::start("standalone", dir.path(), &props);
    let ns = petrel.namesrv();
    let (name, addr) = petrel.brokers()[0].clone();
    let mut client = Client::new(&ns);
    create_topic(&mut client, &petrel, "Tps", 1);
    let q = queue("Tps", &name, 0);

    // A flood gets one second's share at once, then the limit's pace.
    let started = Instant::now();
    let (mut ok, mut busy) = (0, 0);
    while started.elapsed() < Duration::from_millis(1500) {
        match client.send_to(&addr, &q, &message(ok)) {
            Ok(_) => ok += 1,
            Err(ClientError::Broker { code, remark }) => {
                assert_eq!(code, response::SYSTEM_BUSY, "{remark}");
                assert!(
                    remark.contains("[TPSLIMIT] topic Tps") && remark.contains("limit of 100"),
                    "{remark}"
                );
                busy += 1;
            }
            Err(e) => panic!("{e}"),
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let most = 100.0 + 100.0 * elapsed + 5.0;
    assert!(
        (100..=most as usize).contains(&ok),
        "{ok} sent in {elapsed:.2} s, at most {most}"
    );
    assert!(busy > 0);
    eprintln!("limit 100: {ok} sends taken, {busy} refused in {elapsed:.2} s");

    // Lifted live: the same flood goes through.
    admin_ok(
        &ns,
        &[
            "updateBrokerConfig",
            "-b",
            &addr,
            "-k",
            "topicProduceTpsLimit",
            "-v",
            "0",
        ],
    );
    for i in 0..600 {
        client.send_to(&addr, &q, &message(ok + i)).unwrap();
    }
    let stored = ok + 600;

    // A topic's consume limit, set by Apache mqadmin as an attribute: 200 a second.
    let (done, out, err) = update_topic(&ns, &["-c", "DefaultCluster"], "+consume.tps.limit=200");
    assert!(done && out.contains("create topic to"), "{out}{err}");
    let took = pull_timed(&mut client, &addr, &q, "GRust", stored);
    let least = (stored - 200) as f64 / 200.0 * 0.9;
    assert!(
        took.as_secs_f64() >= least,
        "{stored} pulled in {took:?}, under {least:.2} s"
    );
    eprintln!("consume.tps.limit=200: {stored} pulled in {took:?}");

    // A stock push consumer under the limit gets everything, at the limit's pace.
    let started = Instant::now();
    let lines = Driver::start(&[
        "push",
        &ns,
        "GJava",
        "Tps",
        "*",
        &stored.to_string(),
        "60",
        "3",
    ])
    .finish(Duration::from_secs(90));
    let received = lines.iter().filter(|l| l.get("body").is_some()).count();
    assert!(
        received >= stored,
        "the Java consumer got {received} of {stored}"
    );
    let java_took = started.elapsed();
    assert!(java_took.as_secs_f64() >= least);
    eprintln!(
        "consume.tps.limit=200: the Java push consumer took {java_took:?}, its start included"
    );

    // A group's consume limit, set by mqadmin updateSubGroup, on a topic without one.
    create_topic(&mut client, &petrel, "TpsG", 1);
    let qg = queue("TpsG", &name, 0);
    for i in 0..300 {
        client.send_to(&addr, &qg, &message(i)).unwrap();
    }
    let (done, out, err) = apache_mqadmin(
        &[
            "updateSubGroup",
            "-n",
            &ns,
            "-c",
            "DefaultCluster",
            "-g",
            "GSlow",
            "--attributes",
            "+consume.tps.limit=100",
        ],
        MQADMIN_LIMIT,
    );
    assert!(
        done && out.contains("create subscription group to"),
        "{out}{err}"
    );
    let took = pull_timed(&mut client, &addr, &qg, "GSlow", 300);
    assert!(
        took.as_secs_f64() >= 1.8,
        "300 pulled in {took:?} at 100 a second"
    );
    eprintln!("group consume.tps.limit=100: 300 pulled in {took:?}");
    let took = pull_timed(&mut client, &addr, &qg, "GFree", 300);
    assert!(
        took < Duration::from_secs(1),
        "another group is not limited: {took:?}"
    );

    // An attribute Petrel does not know is refused by name, and changes nothing.
    let (done, out, err) = update_topic(&ns, &["-b", &addr], "+colour=red");
    assert!(!done || !out.contains("create topic to"), "{out}{err}");
    assert!(
        format!("{out}{err}").contains("unsupported attribute key: colour"),
        "{out}{err}"
    );
    // A bad group name is refused where a pull names it.
    let req = PullRequest {
        group: "bad group",
        queue: &q,
        offset: 0,
        max: 1,
        subscription: "*",
        suspend: None,
    };
    match client.pull(&addr, &req) {
        Err(ClientError::Broker { code, remark }) => {
            assert_eq!(code, response::INVALID_PARAMETER);
            assert!(remark.contains("[A-Za-z0-9_-]"), "{remark}");
        }
        other => panic!("{other:?}"),
    }
    drop(petrel);
}

#[test]
fn topics_are_capped_per_shard_and_registered_in_parts() {
    let dir = tempfile::tempdir().unwrap();
    let props = ["shards=2", "topicCountMax=8", "splitRegistrationSize=2"];
    let petrel = Petrel::start("standalone", dir.path(), &props);
    let ns = petrel.namesrv();
    let mut client = Client::new(&ns);
    let mut created = Vec::new();
    let refusal = loop {
        let topic = format!("Capped{}", created.len());
        match client.create_topic(&petrel.front_door(), &TopicConfig::new(&topic, 2, 6)) {
            Ok(_) => created.push(topic),
            Err(e) => break e.to_string(),
        }
        assert!(created.len() <= 8, "more topics than topicCountMax");
    };
    assert!(
        refusal.contains("topicCountMax is 8") && refusal.contains("delete unused topics"),
        "{refusal}"
    );
    assert!(!created.is_empty());
    // Every topic reaches the name server, though each registration carries two at most.
    for topic in &created {
        eventually(Duration::from_secs(10), || client.route(topic).ok());
    }
    // Auto-creation by a send is refused the same way.
    let (name, addr) = petrel.brokers()[0].clone();
    let err = client
        .send_to(&addr, &queue("NewByASend", &name, 0), &message(0))
        .unwrap_err()
        .to_string();
    assert!(err.contains("topicCountMax"), "{err}");

    // A deleted topic leaves the routes (the last part of a round drops it), the others
    // stay, and its place can be taken.
    let gone = &created[0];
    admin_ok(&ns, &["deleteTopic", "-t", gone, "-c", "DefaultCluster"]);
    eventually(Duration::from_secs(10), || {
        client.route(gone).is_err().then_some(())
    });
    for topic in &created[1..] {
        client.route(topic).unwrap();
    }
    create_topic(&mut client, &petrel, "Replacement", 2);
}
