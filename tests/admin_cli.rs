//! `petrel admin` end to end against a `petrel standalone` with two shards: topics created
//! and messages sent with mqadmin's commands, then found again by offsetMsgId
//! (VIEW_MESSAGE_BY_ID) and by queue offset, with mqadmin's detail block.

mod common;

use std::collections::BTreeMap;

use common::{admin, standalone};
use petrel::client::Client;
use petrel_shards::remoting::{request, response};

/// The `Label:   value` lines of mqadmin's detail block.
fn detail(stdout: &str) -> BTreeMap<String, String> {
    stdout
        .lines()
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (format!("{}:", k.trim()), v.trim().to_string()))
        .collect()
}

#[test]
fn messages_sent_with_admin_are_found_by_offset_msg_id_and_by_queue_offset() {
    let (_dir, petrel) = standalone(&["shards=2"]);
    let front_door = petrel.front_door();
    let (ok, out, err) = admin(
        &petrel.namesrv(),
        &[
            "updateTopic",
            "-b",
            &front_door,
            "-t",
            "TQ",
            "-r",
            "4",
            "-w",
            "4",
        ],
    );
    assert!(ok, "{out}{err}");
    assert!(out.contains("create topic to"), "{out}");
    let mut client = Client::new(&petrel.namesrv());
    common::eventually(std::time::Duration::from_secs(10), || {
        client
            .route("TQ")
            .ok()
            .filter(|r| r.publish_queues("TQ").len() == 4)
    });
    // One message on each shard's broker, so lookups must reach the right shard.
    let mut sent = Vec::new();
    for (broker, _) in petrel.brokers() {
        for i in 0..3 {
            let body = format!("body-{broker}-{i}");
            let (ok, out, err) = admin(
                &petrel.namesrv(),
                &[
                    "sendMessage",
                    "-t",
                    "TQ",
                    "-p",
                    &body,
                    "-k",
                    "k1 k2",
                    "-c",
                    "TagQ",
                    "-b",
                    &broker,
                    "-i",
                    "1",
                ],
            );
            assert!(ok, "{out}{err}");
            assert!(out.contains("SEND_OK"), "{out}");
            sent.push((broker.clone(), i, body));
        }
    }
    for (broker, i, body) in &sent {
        // By queue offset.
        let offset = i.to_string();
        let (ok, out, err) = admin(
            &petrel.namesrv(),
            &[
                "queryMsgByOffset",
                "-t",
                "TQ",
                "-b",
                broker,
                "-i",
                "1",
                "-o",
                &offset,
            ],
        );
        assert!(ok, "{out}{err}");
        let d = detail(&out);
        assert_eq!(d["Topic:"], "TQ", "{out}");
        assert_eq!(d["Tags:"], "[TagQ]", "{out}");
        assert_eq!(d["Keys:"], "[k1 k2]", "{out}");
        assert_eq!(d["Queue ID:"], "1", "{out}");
        assert_eq!(d["Queue Offset:"], offset, "{out}");
        let stored = std::fs::read_to_string(&d["Message Body Path:"]).unwrap();
        assert_eq!(&stored, body);
        // By the offsetMsgId the first lookup printed.
        let id = d["OffsetID:"].clone();
        let (ok, by_id, err) = admin(&petrel.namesrv(), &["queryMsgById", "-t", "TQ", "-i", &id]);
        assert!(ok, "{by_id}{err}");
        let again = detail(&by_id);
        for key in [
            "Topic:",
            "Queue Offset:",
            "CommitLog Offset:",
            "Born Timestamp:",
            "Properties:",
        ] {
            assert_eq!(again[key], d[key], "{key}: {by_id} vs {out}");
        }
        // By its unique key (the ID producers print), which needs the topic, as in mqadmin.
        let uniq = d["Properties:"]
            .split(|c: char| c == ',' || c == '{' || c == '}' || c.is_whitespace())
            .find_map(|kv| kv.strip_prefix("UNIQ_KEY="))
            .expect("a UNIQ_KEY")
            .to_string();
        let (ok, by_key, err) = admin(
            &petrel.namesrv(),
            &["queryMsgById", "-t", "TQ", "-i", &uniq],
        );
        assert!(ok, "{by_key}{err}");
        assert_eq!(detail(&by_key)["CommitLog Offset:"], d["CommitLog Offset:"]);
        let (ok, _, err) = admin(&petrel.namesrv(), &["queryMsgById", "-i", &uniq]);
        assert!(!ok && err.contains("give its topic with -t"), "{err}");
    }
    let (ok, _, err) = admin(
        &petrel.namesrv(),
        &[
            "queryMsgByOffset",
            "-t",
            "TQ",
            "-b",
            "broker-a-s0",
            "-i",
            "1",
            "-o",
            "99",
        ],
    );
    assert!(!ok);
    assert!(err.contains("no message at offset 99"), "{err}");
    let (ok, _, err) = admin(&petrel.namesrv(), &["queryMsgById", "-i", "not-an-id"]);
    assert!(!ok);
    assert!(err.contains("not the offset ID of a message"), "{err}");
    // printMsg: every queue's offsets, then its messages; a tag that matches nothing prints
    // the queues only, and a begin time in the future prints no message.
    let (ok, out, err) = admin(&petrel.namesrv(), &["printMsg", "-t", "TQ"]);
    assert!(ok, "{err}");
    assert_eq!(out.matches("minOffset=").count(), 4, "{out}");
    assert_eq!(
        out.lines().filter(|l| l.starts_with("MSGID: ")).count(),
        6,
        "{out}"
    );
    for (_, _, body) in &sent {
        assert!(out.contains(&format!("BODY: {body}")), "{out}");
    }
    let (ok, out, _) = admin(&petrel.namesrv(), &["printMsg", "-t", "TQ", "-s", "Other"]);
    assert!(ok && !out.contains("MSGID: "), "{out}");
    let (ok, out, _) = admin(
        &petrel.namesrv(),
        &["printMsg", "-t", "TQ", "-b", "4102444800000"],
    );
    assert!(ok && !out.contains("MSGID: "), "{out}");
    // Cut short by its reader (more than a pipe holds), it ends quietly.
    let mut client = petrel::client::Client::new(&petrel.namesrv());
    common::create_topic(&mut client, &petrel, "TBig", 1);
    for i in 0..200 {
        let body = format!("{i}-{}", "b".repeat(1024));
        let msg = petrel::client::Message::new(body, petrel::client::properties(None, None, &[]));
        client.send("TBig", &msg, i).unwrap();
    }
    let piped = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{} admin printMsg -t TBig -n {} | head -1",
            common::petrel_bin().display(),
            petrel.namesrv()
        ))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&piped.stderr);
    assert!(piped.status.success() && stderr.is_empty(), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&piped.stdout).lines().count(), 1);
}

#[test]
fn view_message_by_id_answers_only_offsets_where_a_record_starts() {
    let (_dir, petrel) = standalone(&[]);
    let mut client = Client::new(&petrel.namesrv());
    common::create_topic(&mut client, &petrel, "TV", 1);
    let (broker, addr) = petrel.brokers()[0].clone();
    let q = common::queue("TV", &broker, 0);
    let msg = petrel::client::Message::new(
        bytes::Bytes::from_static(b"viewed"),
        petrel::client::properties(Some("T"), None, &[]),
    );
    let first = client.send_to(&addr, &q, &msg).unwrap();
    let second = client.send_to(&addr, &q, &msg).unwrap();
    let m = client.view_message(&second.offset_msg_id).unwrap();
    assert_eq!((m.topic.as_str(), m.queue_offset), ("TV", 1));
    assert_eq!(&m.body[..], b"viewed");
    assert_eq!(m.offset_msg_id, second.offset_msg_id);
    let (_, start) = petrel_shards::record::decode_offset_msg_id(&first.offset_msg_id).unwrap();
    for offset in [start + 1, start + 4, 1 << 40, -1] {
        let reply = client
            .call_fields(
                &addr,
                request::VIEW_MESSAGE_BY_ID,
                &[("offset", offset.to_string())],
            )
            .unwrap();
        assert_eq!(reply.code, response::SYSTEM_ERROR, "offset {offset}");
        assert_eq!(
            reply.remark.as_deref(),
            Some(format!("can not find message by the offset, {offset}").as_str())
        );
    }
    let reply = client
        .call_fields(&addr, request::VIEW_MESSAGE_BY_ID, &[])
        .unwrap();
    assert_eq!(reply.code, response::SYSTEM_ERROR);
    assert!(reply.remark.unwrap().contains("offset"));
}

#[test]
fn consumer_progress_shows_the_backlog_and_what_was_pulled_but_not_committed() {
    let (_dir, petrel) = standalone(&[]);
    let mut client = Client::new(&petrel.namesrv());
    common::create_topic(&mut client, &petrel, "TP", 2);
    let (broker, addr) = petrel.brokers()[0].clone();
    let msg = petrel::client::Message::new(
        bytes::Bytes::from_static(b"p"),
        petrel::client::properties(None, None, &[]),
    );
    let (q0, q1) = (
        common::queue("TP", &broker, 0),
        common::queue("TP", &broker, 1),
    );
    let on_q0: Vec<String> = (0..5)
        .map(|_| client.send_to(&addr, &q0, &msg).unwrap().offset_msg_id)
        .collect();
    let on_q1: Vec<String> = (0..3)
        .map(|_| client.send_to(&addr, &q1, &msg).unwrap().offset_msg_id)
        .collect();
    // Queue 0: committed up to 2. Queue 1: all 3 pulled, nothing committed.
    let commit = client
        .call_fields(
            &addr,
            request::UPDATE_CONSUMER_OFFSET,
            &[
                ("consumerGroup", "GP".into()),
                ("topic", "TP".into()),
                ("queueId", "0".into()),
                ("commitOffset", "2".into()),
            ],
        )
        .unwrap();
    assert_eq!(commit.code, response::SUCCESS);
    let pull = petrel::client::PullRequest {
        group: "GP",
        queue: &q1,
        offset: 0,
        max: 32,
        subscription: "*",
        suspend: None,
    };
    assert_eq!(client.pull(&addr, &pull).unwrap().messages.len(), 3);
    // On the wire: fastjson's map keyed by raw MessageQueue objects.
    let raw = client
        .call_fields(
            &addr,
            request::GET_CONSUME_STATS,
            &[("consumerGroup", "GP".into())],
        )
        .unwrap();
    let body = String::from_utf8_lossy(&raw.body).into_owned();
    assert!(
        body.starts_with(&format!(
            r#"{{"consumeTps":0.0,"offsetTable":{{{{"brokerName":"{broker}","queueId":0,"topic":"TP"}}:{{"brokerOffset":5,"consumerOffset":2,"#
        )),
        "{body}"
    );
    let stats = client.consume_stats(&addr, "GP", None).unwrap().queues;
    let rows: Vec<(i32, i64, i64, i64)> = stats
        .iter()
        .map(|s| {
            (
                s.queue.queue_id,
                s.broker_offset,
                s.consumer_offset,
                s.pull_offset,
            )
        })
        .collect();
    assert_eq!(rows, [(0, 5, 2, 2), (1, 3, 0, 3)]);
    assert!(stats[0].last_timestamp > 0 && stats[1].last_timestamp == 0);
    // The admin command: Diff = broker - committed, Inflight = pulled - committed.
    let (ok, out, err) = admin(&petrel.namesrv(), &["consumerProgress", "-g", "GP"]);
    assert!(ok, "{out}{err}");
    let lines: Vec<Vec<&str>> = out
        .lines()
        .filter(|l| l.starts_with("TP "))
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert_eq!(
        lines[0][..7],
        ["TP", broker.as_str(), "0", "5", "2", "3", "0"],
        "{out}"
    );
    assert_eq!(
        lines[1][..8],
        ["TP", broker.as_str(), "1", "3", "0", "3", "3", "N/A"],
        "{out}"
    );
    assert!(out.contains("Consume Diff Total: 6"), "{out}");
    assert!(out.contains("Consume Inflight Total: 3"), "{out}");
    // A group with no progress anywhere: an empty table, not an error.
    let (ok, out, _) = admin(&petrel.namesrv(), &["consumerProgress", "-g", "Nobody"]);
    assert!(ok && out.contains("Consume Diff Total: 0"), "{out}");
    // Each message's status for the group (F13).
    for (id, want) in [
        (&on_q0[1], "Consumed"),
        (&on_q0[3], "To-consume"),
        (&on_q1[0], "Consuming"),
    ] {
        let (ok, out, err) = admin(&petrel.namesrv(), &["queryMsgById", "-i", id, "-g", "GP"]);
        assert!(ok, "{err}");
        assert_eq!(
            detail(&out)["Consume Status:"],
            format!("{want} (group GP)"),
            "{out}"
        );
    }
}
