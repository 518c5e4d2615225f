//! End-to-end tests of a `petrel standalone` process through the wire protocol, driven by
//! Petrel's own client: sends, pulls, long polling, tag filters, auto-created topics, the
//! errors users see, batches, and restart. Client management and admin: `broker_admin.rs`.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{create_topic, eventually, pull_all, queue, standalone, Petrel};
use petrel::client::{properties, Client, Message, PullRequest};
use petrel_shards::broker::metadata::TopicConfig;
use petrel_shards::remoting::{request, response, ExtFields, RemotingCommand};

#[test]
fn sent_messages_pull_back_with_body_tags_keys_and_properties() {
    let (_dir, petrel) = standalone(&[]);
    let mut client = Client::new(&petrel.namesrv());
    create_topic(&mut client, &petrel, "T1", 2);
    let (broker, addr) = petrel.brokers()[0].clone();
    let q = queue("T1", &broker, 1);
    for i in 0..50 {
        let tags = if i % 2 == 0 { "TagA" } else { "TagB" };
        let props = properties(
            Some(tags),
            Some(&format!("key-{i} other")),
            &[("idx".into(), i.to_string())],
        );
        let r = client
            .send_to(
                &addr,
                &q,
                &Message::new(Bytes::from(format!("body-{i}")), props),
            )
            .unwrap();
        assert_eq!((r.code, r.queue_id, r.queue_offset), (0, 1, i));
        assert_eq!(r.region.as_deref(), Some("DefaultRegion"));
        assert_eq!(r.offset_msg_id.len(), 32);
    }
    let got = pull_all(&mut client, &addr, &q, "*");
    assert_eq!(got.len(), 50);
    for (i, m) in got.iter().enumerate() {
        assert_eq!(&m.body[..], format!("body-{i}").as_bytes());
        assert_eq!(m.tags(), Some(if i % 2 == 0 { "TagA" } else { "TagB" }));
        assert_eq!(m.keys(), Some(format!("key-{i} other").as_str()));
        assert_eq!(m.properties.get("idx"), Some(i.to_string().as_str()));
        assert_eq!(m.properties.get("CLUSTER"), Some("DefaultCluster"));
        assert_eq!(m.queue_offset, i as i64);
        assert_eq!(m.queue_id, 1);
        assert_eq!(m.topic, "T1");
    }
    let only_a = pull_all(&mut client, &addr, &q, "TagA");
    assert_eq!(only_a.len(), 25);
    assert!(only_a.iter().all(|m| m.tags() == Some("TagA")));
    let both = pull_all(&mut client, &addr, &q, "TagA || TagB");
    assert_eq!(both.len(), 50);
    assert!(pull_all(&mut client, &addr, &q, "TagC").is_empty());
}

#[test]
fn batch_send_stores_every_message_in_order() {
    let (_dir, petrel) = standalone(&[]);
    let mut client = Client::new(&petrel.namesrv());
    create_topic(&mut client, &petrel, "TB", 1);
    let (broker, addr) = petrel.brokers()[0].clone();
    let q = queue("TB", &broker, 0);
    let msgs: Vec<Message> = (0..10)
        .map(|i| {
            Message::new(
                Bytes::from(format!("b{i}")),
                properties(Some("T"), None, &[]),
            )
        })
        .collect();
    let r = client.send_batch_to(&addr, &q, &msgs).unwrap();
    assert_eq!(r.queue_offset, 0);
    assert_eq!(r.offset_msg_id.split(',').count(), 10);
    let got = pull_all(&mut client, &addr, &q, "*");
    let bodies: Vec<_> = got
        .iter()
        .map(|m| String::from_utf8_lossy(&m.body).into_owned())
        .collect();
    assert_eq!(bodies, (0..10).map(|i| format!("b{i}")).collect::<Vec<_>>());
}

#[test]
fn a_long_poll_is_held_until_a_message_arrives() {
    let (_dir, petrel) = standalone(&[]);
    let mut client = Client::new(&petrel.namesrv());
    create_topic(&mut client, &petrel, "TL", 1);
    let (broker, addr) = petrel.brokers()[0].clone();
    let ns = petrel.namesrv();
    let (tx, rx) = std::sync::mpsc::channel();
    let poll_addr = addr.clone();
    let poll_broker = broker.clone();
    std::thread::spawn(move || {
        let mut c = Client::new(&ns);
        let q = queue("TL", &poll_broker, 0);
        let req = PullRequest {
            group: "G",
            queue: &q,
            offset: 0,
            max: 32,
            subscription: "*",
            suspend: Some(Duration::from_secs(20)),
        };
        let _ = tx.send(c.pull(&poll_addr, &req));
    });
    // The queue is empty, so a pull that asked to be held must still be outstanding.
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        rx.try_recv().is_err(),
        "a pull on an empty queue answered instead of being held"
    );
    client
        .send_to(
            &addr,
            &queue("TL", &broker, 0),
            &Message::new(Bytes::from_static(b"wake"), Default::default()),
        )
        .unwrap();
    let result = rx
        .recv_timeout(Duration::from_secs(15))
        .expect("held pull answered")
        .unwrap();
    assert_eq!(result.code, response::SUCCESS);
    assert_eq!(&result.messages[0].body[..], b"wake");
}

#[test]
fn oversized_body_bad_names_and_unknown_codes_get_clear_errors() {
    let (_dir, petrel) = standalone(&["maxMessageSize=1024"]);
    let mut client = Client::new(&petrel.namesrv());
    create_topic(&mut client, &petrel, "TE", 1);
    let (broker, addr) = petrel.brokers()[0].clone();
    let big = Message::new(Bytes::from(vec![b'x'; 1025]), Default::default());
    let err = client
        .send_to(&addr, &queue("TE", &broker, 0), &big)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "code 13: message body size over max message size, max: 1024"
    );

    let err = client
        .create_topic(&petrel.front_door(), &TopicConfig::new("bad.name", 1, 6))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "code 29: the topic name \"bad.name\" contains characters outside [A-Za-z0-9_-]"
    );
    let err = client
        .send_to(&addr, &queue("bad topic", &broker, 0), &Message::default())
        .unwrap_err();
    assert!(
        err.to_string().starts_with("code 29: the topic name"),
        "{err}"
    );
    let err = client
        .send_to(&addr, &queue("TE", &broker, 5), &Message::default())
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("code 29: queueId[5] is illegal"),
        "{err}"
    );

    let reply = client
        .call(
            &addr,
            RemotingCommand::request(9999, ExtFields::new(), Bytes::new()),
        )
        .unwrap();
    assert_eq!(reply.code, response::REQUEST_CODE_NOT_SUPPORTED);
    assert_eq!(
        reply.remark.as_deref(),
        Some(" request type 9999 not supported")
    );
    // The broker says so in its log once per code, however often it is asked.
    for code in [9999, 9999, 9998] {
        let cmd = RemotingCommand::request(code, ExtFields::new(), Bytes::new());
        assert_eq!(
            client.call(&addr, cmd).unwrap().code,
            response::REQUEST_CODE_NOT_SUPPORTED
        );
    }
    let mut lines = Vec::new();
    let said = |lines: &[String], code: i32| {
        let text = format!("request code {code} from");
        lines.iter().filter(|l| l.contains(&text)).count()
    };
    eventually(Duration::from_secs(5), || {
        lines.extend(petrel.stderr_lines());
        (said(&lines, 9998) == 1).then_some(())
    });
    assert_eq!(said(&lines, 9999), 1, "{lines:?}");
}

#[test]
fn auto_created_topics_follow_tbw102_and_can_be_turned_off() {
    let (_dir, petrel) = standalone(&["defaultTopicQueueNums=4"]);
    let mut client = Client::new(&petrel.namesrv());
    let (broker, addr) = petrel.brokers()[0].clone();
    let r = client
        .send_to(&addr, &queue("AutoT", &broker, 2), &Message::default())
        .unwrap();
    assert_eq!(r.queue_id, 2);
    let route = eventually(Duration::from_secs(10), || client.route("AutoT").ok());
    assert_eq!(route.queue_datas[0].write_queue_nums, 4);

    let (_dir2, strict) = standalone(&["autoCreateTopicEnable=false"]);
    let mut client = Client::new(&strict.namesrv());
    let (broker, addr) = strict.brokers()[0].clone();
    let err = client
        .send_to(&addr, &queue("NoSuchT", &broker, 0), &Message::default())
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("code 17: topic[NoSuchT] not exist, apply first please!"),
        "{err}"
    );
}

fn offset_call(
    client: &mut Client,
    addr: &str,
    code: i32,
    fields: &[(&str, String)],
) -> RemotingCommand {
    client.call_fields(addr, code, fields).unwrap()
}

#[test]
fn offsets_and_messages_survive_a_clean_restart() {
    let dir = tempfile::tempdir().unwrap();
    let petrel = Petrel::start("standalone", dir.path(), &[]);
    let mut client = Client::new(&petrel.namesrv());
    create_topic(&mut client, &petrel, "TR", 1);
    let (broker, addr) = petrel.brokers()[0].clone();
    let q = queue("TR", &broker, 0);
    for i in 0..20 {
        client
            .send_to(
                &addr,
                &q,
                &Message::new(Bytes::from(format!("m{i}")), Default::default()),
            )
            .unwrap();
    }
    let fields = |offset: Option<i64>| {
        let mut f = vec![
            ("consumerGroup", "GR".to_string()),
            ("topic", "TR".to_string()),
            ("queueId", "0".to_string()),
        ];
        if let Some(o) = offset {
            f.push(("commitOffset", o.to_string()));
        }
        f
    };
    assert_eq!(
        offset_call(
            &mut client,
            &addr,
            request::UPDATE_CONSUMER_OFFSET,
            &fields(Some(12))
        )
        .code,
        0
    );
    let q1 = offset_call(
        &mut client,
        &addr,
        request::QUERY_CONSUMER_OFFSET,
        &fields(None),
    );
    assert_eq!(q1.field("offset"), Some("12"));
    let max = offset_call(
        &mut client,
        &addr,
        request::GET_MAX_OFFSET,
        &[("topic", "TR".into()), ("queueId", "0".into())],
    );
    assert_eq!(max.field("offset"), Some("20"));
    let status = petrel.terminate();
    assert!(status.success(), "SIGTERM exit: {status:?}");

    let petrel = Petrel::start("standalone", dir.path(), &[]);
    let mut client = Client::new(&petrel.namesrv());
    let (_, addr) = petrel.brokers()[0].clone();
    let q1 = offset_call(
        &mut client,
        &addr,
        request::QUERY_CONSUMER_OFFSET,
        &fields(None),
    );
    assert_eq!(q1.field("offset"), Some("12"));
    let got = pull_all(&mut client, &addr, &q, "*");
    assert_eq!(got.len(), 20);
    assert_eq!(&got[19].body[..], b"m19");
    // Appends continue after the recovered end.
    let r = client
        .send_to(
            &addr,
            &q,
            &Message::new(Bytes::from_static(b"after"), Default::default()),
        )
        .unwrap();
    assert_eq!(r.queue_offset, 20);
}

#[test]
fn a_batch_with_one_bad_message_stores_nothing() {
    let (_dir, petrel) = standalone(&[]);
    let mut client = Client::new(&petrel.namesrv());
    create_topic(&mut client, &petrel, "TBad", 1);
    let (broker, addr) = petrel.brokers()[0].clone();
    let q = queue("TBad", &broker, 0);
    // Properties that fit a batch item but overflow the stored record's 32767-byte limit once
    // the broker adds CLUSTER.
    let mut pad = 32_700;
    let oversized = loop {
        let msg = Message::new(
            Bytes::from_static(b"big"),
            properties(None, None, &[("pad".into(), "x".repeat(pad))]),
        );
        let len = petrel_shards::record::encode_properties(&msg.properties_with_uniq_key()).len();
        if len >= 32_760 {
            assert!(len <= 32_767);
            break msg;
        }
        pad += 1;
    };
    let ok = Message::new(Bytes::from_static(b"fine"), Default::default());
    let err = client
        .send_batch_to(&addr, &q, &[ok.clone(), oversized, ok])
        .unwrap_err();
    assert!(
        err.to_string().starts_with("code 13: properties are"),
        "{err}"
    );
    let max = client
        .call_fields(
            &addr,
            request::GET_MAX_OFFSET,
            &[("topic", "TBad".into()), ("queueId", "0".into())],
        )
        .unwrap();
    assert_eq!(
        max.field("offset"),
        Some("0"),
        "part of a refused batch was stored"
    );
}
