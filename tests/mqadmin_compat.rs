//! Apache RocketMQ's own `mqadmin` 5.5.0 against a real Petrel, for the commands behind
//! GET_TOPIC_CONFIG (351), GET_TOPIC_STATS_INFO (202), QUERY_TOPIC_CONSUME_BY_WHO (300),
//! GET_ALL_SUBSCRIPTIONGROUP_CONFIG (201), VIEW_BROKER_STATS_DATA (315), GET_NAMESRV_CONFIG
//! (319) and GET_CONSUMER_RUNNING_INFO (307, relayed to a stock Java consumer): the figures
//! it prints are the ones the test produced and consumed.

mod common;

use std::time::Duration;

use common::java::Driver;
use common::{create_topic, queue, Petrel};
use petrel::client::{properties, Client, Message, PullRequest};
use petrel_shards::remoting::{request, response};

const TOPIC: &str = "Compat";
const GROUP: &str = "G_compat";
/// Messages sent to queues 0..4 of the topic.
const PER_QUEUE: [i64; 4] = [4, 3, 2, 1];

fn mqadmin(namesrv: &str, args: &[&str]) -> String {
    let mut all = args.to_vec();
    all.extend(["-n", namesrv]);
    let (ok, out, err) = common::apache_mqadmin(&all, Duration::from_secs(120));
    assert!(ok, "mqadmin {args:?} failed:\n{out}\n{err}");
    // A command that failed partly prints a stack trace and still exits 0.
    assert!(
        !out.contains("\tat org.apache") && !err.contains("\tat org.apache"),
        "mqadmin {args:?}:\n{out}\n{err}"
    );
    out
}

/// The whitespace-separated columns of the lines of `out` that start with `first`.
fn rows<'a>(out: &'a str, first: &str) -> Vec<Vec<&'a str>> {
    out.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|cols| cols.first() == Some(&first))
        .collect()
}

/// The value getNamesrvConfig / getBrokerConfig print for `key` (`key   =  value`).
fn shown<'a>(out: &'a str, key: &str) -> Option<&'a str> {
    out.lines().find_map(|l| {
        let (k, v) = l.split_once('=')?;
        (k.trim() == key).then(|| v.trim())
    })
}

#[test]
fn apache_mqadmin_reads_topic_status_progress_consumers_stats_and_group_config() {
    let dir = tempfile::tempdir().unwrap();
    let petrel = Petrel::start("standalone", dir.path(), &[]);
    let ns = petrel.namesrv();
    let mut client = Client::new(&ns);
    create_topic(&mut client, &petrel, TOPIC, 4);
    let (name, addr) = petrel.brokers()[0].clone();
    mqadmin(
        &ns,
        &["updateSubGroup", "-c", "DefaultCluster", "-g", GROUP],
    );
    for (queue_id, count) in PER_QUEUE.iter().enumerate() {
        let q = queue(TOPIC, &name, queue_id as i32);
        for i in 0..*count {
            let msg = Message::new(format!("m{queue_id}-{i}"), properties(None, None, &[]));
            assert_eq!(
                client.send_to(&addr, &q, &msg).unwrap().code,
                response::SUCCESS
            );
        }
    }
    // The group pulls and commits all of queue 0 and one message of queue 1.
    let q0 = queue(TOPIC, &name, 0);
    let pulled = client
        .pull(
            &addr,
            &PullRequest {
                group: GROUP,
                queue: &q0,
                offset: 0,
                max: 32,
                subscription: "*",
                suspend: None,
            },
        )
        .unwrap();
    assert_eq!(pulled.messages.len(), 4);
    for (queue_id, offset) in [(0, 4), (1, 1)] {
        let fields = [
            ("consumerGroup", GROUP.to_string()),
            ("topic", TOPIC.to_string()),
            ("queueId", queue_id.to_string()),
            ("commitOffset", offset.to_string()),
        ];
        let reply = client
            .call_fields(&addr, request::UPDATE_CONSUMER_OFFSET, &fields)
            .unwrap();
        assert_eq!(reply.code, response::SUCCESS);
    }

    // topicStatus: per queue min and max offset, and a last-updated time where there are messages.
    let out = mqadmin(&ns, &["topicStatus", "-t", TOPIC]);
    let status = rows(&out, &name);
    assert_eq!(status.len(), 4, "{out}");
    for (row, count) in status.iter().zip(PER_QUEUE) {
        assert_eq!(row[2], "0", "{out}");
        assert_eq!(row[3], count.to_string(), "{out}");
        assert!(row.len() > 4, "no last-updated time: {out}");
    }

    // consumerProgress -g -t: needs GET_TOPIC_CONFIG for the topic. (Without -t mqadmin
    // finds the brokers by the group's retry topic, which a consumer's heartbeat creates.)
    let out = mqadmin(&ns, &["consumerProgress", "-g", GROUP, "-t", TOPIC]);
    let progress = rows(&out, TOPIC);
    assert_eq!(progress.len(), 4, "{out}");
    assert_eq!(progress[0][3..5], ["4", "4"], "{out}");
    assert_eq!(progress[1][3..5], ["3", "1"], "{out}");
    assert!(out.contains("Consume Diff Total: 5"), "{out}");

    // topicList -c: the group that consumes the topic is named next to it.
    let out = mqadmin(&ns, &["topicList", "-c"]);
    let listed = rows(&out, "DefaultCluster");
    assert!(
        listed
            .iter()
            .any(|r| r[1] == TOPIC && r.get(2) == Some(&GROUP)),
        "{out}"
    );

    // statsAll: accumulation, messages in and out today, and a put rate.
    let out = mqadmin(&ns, &["statsAll", "-t", TOPIC]);
    let stats = rows(&out, TOPIC);
    assert_eq!(stats.len(), 1, "{out}");
    let row = &stats[0];
    assert_eq!(row[1], GROUP, "{out}");
    assert_eq!(row[2], "5", "accumulation: {out}");
    assert!(row[3].parse::<f64>().unwrap() > 0.0, "in TPS: {out}");
    assert_eq!(row[5], "10", "in today: {out}");
    assert_eq!(row[6], "4", "out today: {out}");

    // brokerStatus: the put and get rates over 10 s, 1 min and 10 min.
    let out = mqadmin(&ns, &["brokerStatus", "-b", &addr]);
    let rate = |key: &str| -> Vec<f64> {
        let line = out
            .lines()
            .find(|l| l.starts_with(key))
            .unwrap_or_else(|| panic!("no {key} in {out}"));
        let value = line.split_once(':').unwrap().1;
        value
            .split_whitespace()
            .map(|v| v.parse().unwrap())
            .collect()
    };
    assert_eq!(rate("putTps").len(), 3, "{out}");
    assert!(rate("putTps")[1] > 0.0, "{out}");
    assert!(rate("getTransferredTps")[1] > 0.0, "{out}");

    // getConsumerConfig: the group's config from GET_ALL_SUBSCRIPTIONGROUP_CONFIG.
    let out = mqadmin(&ns, &["getConsumerConfig", "-g", GROUP]);
    assert!(
        out.lines()
            .any(|l| l.starts_with("groupName") && l.trim_end().ends_with(GROUP)),
        "{out}"
    );
    assert!(out.contains("retryMaxTimes"), "{out}");

    // getNamesrvConfig (GET_NAMESRV_CONFIG, 319): the name server's settings.
    let out = mqadmin(&ns, &["getNamesrvConfig"]);
    let kv = dir.path().join("namesrv").join("kvConfig.json");
    assert!(
        out.lines()
            .any(|l| l.starts_with("kvConfigPath")
                && l.trim_end().ends_with(&kv.display().to_string())),
        "{out}"
    );
    assert_eq!(shown(&out, "orderMessageEnable"), Some("false"), "{out}");

    // updateNamesrvConfig (318): with orderMessageEnable on, routes carry the order config
    // kept in the KV store (updateOrderConf).
    mqadmin(
        &ns,
        &[
            "updateOrderConf",
            "-t",
            TOPIC,
            "-v",
            &format!("{name}:4"),
            "-m",
            "put",
        ],
    );
    let route = mqadmin(&ns, &["topicRoute", "-t", TOPIC]);
    assert!(!route.contains(&format!("{name}:4")), "{route}");
    let out = mqadmin(
        &ns,
        &[
            "updateNamesrvConfig",
            "-k",
            "orderMessageEnable",
            "-v",
            "true",
        ],
    );
    assert!(out.contains("success"), "{out}");
    let out = mqadmin(&ns, &["getNamesrvConfig"]);
    assert_eq!(shown(&out, "orderMessageEnable"), Some("true"), "{out}");
    let route = mqadmin(&ns, &["topicRoute", "-t", TOPIC]);
    assert!(
        route.contains(&format!("\"orderTopicConf\":\"{name}:4\"")),
        "{route}"
    );
}

/// updateNamesrvConfig: a key that changes at runtime is kept across a restart; one read at
/// start only, or unknown, is refused by name and changes nothing.
#[test]
fn apache_mqadmin_changes_the_name_servers_config_and_it_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let namesrv = Petrel::start("namesrv", dir.path(), &[]);
    let ns = namesrv.namesrv();
    let update = |ns: &str, key: &str, value: &str| {
        let args = ["updateNamesrvConfig", "-k", key, "-v", value, "-n", ns];
        let (_, out, err) = common::apache_mqadmin(&args, Duration::from_secs(120));
        format!("{out}{err}")
    };
    let out = update(&ns, "namesrvListenPort", "1");
    assert!(
        out.contains("`namesrvListenPort` is read at start only"),
        "{out}"
    );
    let out = update(&ns, "orderMessageEnable", "maybe");
    assert!(out.contains("expected true or false"), "{out}");
    let out = mqadmin(&ns, &["getNamesrvConfig"]);
    assert_eq!(shown(&out, "orderMessageEnable"), Some("false"), "{out}");
    assert!(update(&ns, "orderMessageEnable", "true").contains("success"));
    assert!(namesrv.terminate().success());
    let namesrv = Petrel::start("namesrv", dir.path(), &[]);
    let ns = namesrv.namesrv();
    let out = mqadmin(&ns, &["getNamesrvConfig"]);
    assert_eq!(shown(&out, "orderMessageEnable"), Some("true"), "{out}");

    // `petrel admin` has both commands, with mqadmin's options and output.
    let set = [
        "updateNamesrvConfig",
        "-k",
        "orderMessageEnable",
        "-v",
        "false",
    ];
    assert!(common::admin_ok(&ns, &set).contains("success"));
    let out = common::admin_ok(&ns, &["getNamesrvConfig"]);
    assert_eq!(shown(&out, "orderMessageEnable"), Some("false"), "{out}");
    assert_eq!(
        shown(&mqadmin(&ns, &["getNamesrvConfig"]), "orderMessageEnable"),
        Some("false")
    );
    let (ok, _, err) = common::admin(&ns, &["updateNamesrvConfig", "-k", "nope", "-v", "1"]);
    assert!(
        !ok && err.contains("unknown name server config key `nope`"),
        "{err}"
    );
}

/// `consumerStatus -g G -i CLIENT`: GET_CONSUMER_RUNNING_INFO (307) is relayed to the stock
/// Java consumer's connection and its answer reaches mqadmin; an unknown client is named.
#[test]
fn apache_mqadmin_consumer_status_is_answered_by_the_consumer_through_the_broker() {
    let dir = tempfile::tempdir().unwrap();
    let petrel = Petrel::start("standalone", dir.path(), &[]);
    let ns = petrel.namesrv();
    let mut client = Client::new(&ns);
    create_topic(&mut client, &petrel, "Running", 2);
    let (name, addr) = petrel.brokers()[0].clone();
    for queue_id in 0..2 {
        for i in 0..3 {
            let msg = Message::new(format!("r{queue_id}-{i}"), properties(None, None, &[]));
            let q = queue("Running", &name, queue_id);
            assert_eq!(
                client.send_to(&addr, &q, &msg).unwrap().code,
                response::SUCCESS
            );
        }
    }
    let consumer = Driver::start(&["push", &ns, "G_running", "Running", "*", "1000", "120", "0"]);
    consumer.read_until("started", Duration::from_secs(60));
    for _ in 0..6 {
        consumer.read_until("body", Duration::from_secs(60));
    }
    let members = common::eventually(Duration::from_secs(30), || {
        let fields = [("consumerGroup", "G_running".to_string())];
        let reply = client
            .call_fields(&addr, request::GET_CONSUMER_LIST_BY_GROUP, &fields)
            .ok()?;
        let body: serde_json::Value = serde_json::from_slice(&reply.body).ok()?;
        let ids: Vec<String> = body["consumerIdList"]
            .as_array()?
            .iter()
            .filter_map(|v| v.as_str().map(String::from))
            .collect();
        (!ids.is_empty()).then_some(ids)
    });
    let out = mqadmin(
        &ns,
        &["consumerStatus", "-g", "G_running", "-i", &members[0]],
    );
    assert!(out.contains("#Consumer Subscription#"), "{out}");
    assert!(out.contains("Running"), "{out}");
    assert!(out.contains("CONSUME_FROM_FIRST_OFFSET"), "{out}");

    // DefaultMQAdminExt.getConsumeStatus: the broker asks each member for the offsets it
    // holds (code 221); having consumed all six, the consumer holds 3 on each queue.
    let status = |only: &str| {
        let mut args = vec!["--source", "ConsumeStatus.java", ns.as_str(), "Running"];
        args.extend(["G_running", only]);
        let (ok, out, err) = common::apache_mqadmin(&args, Duration::from_secs(120));
        assert!(ok && !out.contains("Exception"), "{out}\n{err}");
        out
    };
    let out = common::eventually(Duration::from_secs(30), || {
        let out = status("");
        let held: Vec<Vec<&str>> = rows(&out, &members[0]);
        (held.len() == 2 && held.iter().all(|r| r[1] == name && r[3] == "3")).then(|| out.clone())
    });
    assert_eq!(out.lines().count(), 2, "{out}");
    // One member named: only its offsets; a client id that is not a member: refused.
    assert_eq!(rows(&status(&members[0]), &members[0]).len(), 2);
    let (ok, out, err) = common::apache_mqadmin(
        &[
            "--source",
            "ConsumeStatus.java",
            &ns,
            "Running",
            "G_running",
            "nobody@1",
        ],
        Duration::from_secs(120),
    );
    assert!(!ok, "{out}");
    assert!(err.contains("No Any Consumer online"), "{err}");

    let (_, out, err) = common::apache_mqadmin(
        &[
            "consumerStatus",
            "-g",
            "G_running",
            "-i",
            "nobody@1",
            "-n",
            &ns,
        ],
        Duration::from_secs(120),
    );
    assert!(
        format!("{out}{err}").contains("<nobody@1> not online"),
        "{out}\n{err}"
    );
}
