//! The Prometheus exporter (`metricsExporterType=PROM`): a scrape of `/metrics`, parsed by the
//! Prometheus project's own OpenMetrics parser, carries what was produced and consumed.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{create_topic, eventually, pull_all, queue, Petrel};
use petrel::client::{properties, Client, Message};
use petrel_shards::remoting::{request, response};

/// One HTTP/1.1 request: the status code and the body.
fn http(addr: &str, method: &str, path: &str) -> (u16, String) {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("a complete response");
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, body.to_string())
}

#[derive(Debug, serde::Deserialize)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// The samples of `text` as the Prometheus client's OpenMetrics parser reads them; it
/// rejects text that breaks the format.
fn parse(text: &str) -> Vec<Sample> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/metrics/parse");
    let mut child = Command::new("bash")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bash runs tests/metrics/parse");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the parser rejected the scrape: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The value of the one sample named `name` whose labels include `labels`.
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut found = samples.iter().filter(|s| {
        s.name == name
            && labels
                .iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
    });
    let first = found.next()?;
    assert!(found.next().is_none(), "more than one {name} {labels:?}");
    Some(first.value)
}

#[test]
fn a_scrape_counts_what_was_produced_and_consumed() {
    let dir = tempfile::tempdir().unwrap();
    let petrel = Petrel::start(
        "standalone",
        dir.path(),
        &[
            "shards=2",
            "metricsExporterType=PROM",
            "metricsPromExporterPort=0",
        ],
    );
    let metrics = petrel.metrics_addr();
    let mut client = Client::new(&petrel.namesrv());
    create_topic(&mut client, &petrel, "Metered", 4);
    let brokers = petrel.brokers();
    // 30 messages of 100 bytes to queue 0 of shard 0, 20 to queue 1 of shard 1.
    for (shard, queue_id, count) in [(0, 0, 30), (1, 1, 20)] {
        let (name, addr) = &brokers[shard];
        for i in 0..count {
            let msg = Message::new(format!("{i:0>100}"), properties(None, None, &[]));
            let r = client
                .send_to(addr, &queue("Metered", name, queue_id), &msg)
                .unwrap();
            assert_eq!(r.code, response::SUCCESS);
        }
    }
    // G_pull reads shard 0's queue and commits 10 of its 30.
    let (s0, s0_addr) = &brokers[0];
    let pulled = pull_all(&mut client, s0_addr, &queue("Metered", s0, 0), "*");
    assert_eq!(pulled.len(), 30);
    let commit = [
        ("consumerGroup", "G_pull".to_string()),
        ("topic", "Metered".to_string()),
        ("queueId", "0".to_string()),
        ("commitOffset", "10".to_string()),
    ];
    let reply = client
        .call_fields(s0_addr, request::UPDATE_CONSUMER_OFFSET, &commit)
        .unwrap();
    assert_eq!(reply.code, response::SUCCESS);

    let (s1, _) = &brokers[1];
    fn on(broker: &str) -> [(&str, &str); 2] {
        [("broker", broker), ("topic", "Metered")]
    }
    let samples = eventually(Duration::from_secs(15), || {
        let (status, text) = http(&metrics, "GET", "/metrics");
        assert_eq!(status, 200, "{text}");
        let samples = parse(&text);
        let backlog = value(
            &samples,
            "rocketmq_group_diff",
            &[("broker", s0), ("group", "G_pull")],
        );
        let sends = value(
            &samples,
            "petrel_send_latency_seconds_count",
            &[("broker", s1)],
        );
        (backlog == Some(20.0) && sends == Some(20.0)).then_some(samples)
    });
    let v = |name: &str, labels: &[(&str, &str)]| {
        value(&samples, name, labels).unwrap_or_else(|| panic!("no {name} {labels:?}"))
    };
    assert_eq!(v("petrel_messages_in_total", &on(s0)), 30.0);
    assert_eq!(v("petrel_messages_in_total", &on(s1)), 20.0);
    assert_eq!(v("petrel_bytes_in_total", &on(s0)), 3000.0);
    assert_eq!(v("rocketmq_producer_offset", &on(s0)), 30.0);
    assert_eq!(v("rocketmq_producer_offset", &on(s1)), 20.0);
    assert!(v("rocketmq_producer_tps", &on(s0)) > 0.0);
    let group = [
        ("broker", s0.as_str()),
        ("topic", "Metered"),
        ("group", "G_pull"),
    ];
    assert_eq!(v("petrel_messages_out_total", &group), 30.0);
    assert_eq!(v("rocketmq_consumer_offset", &group), 10.0);
    assert!(v("rocketmq_consumer_tps", &group) > 0.0);
    let mut queue0 = group.to_vec();
    queue0.push(("queueid", "0"));
    assert_eq!(v("petrel_queue_backlog", &queue0), 20.0);
    assert!(v("rocketmq_broker_tps", &[("broker", s0)]) > 0.0);
    assert!(v("petrel_connections", &[("broker", s0)]) >= 1.0);
    assert!(v("petrel_store_commitlog_bytes", &[("broker", s0)]) > 3000.0);
    // Every send is in the latency histogram, each at most the +Inf bucket's count.
    let inf = [("broker", s0.as_str()), ("le", "+Inf")];
    assert_eq!(
        v("petrel_send_latency_seconds_count", &[("broker", s0)]),
        30.0
    );
    assert_eq!(v("petrel_send_latency_seconds_bucket", &inf), 30.0);
    assert!(v("petrel_pull_latency_seconds_count", &[("broker", s0)]) >= 1.0);

    assert_eq!(http(&metrics, "POST", "/metrics").0, 405);
    let (status, body) = http(&metrics, "GET", "/");
    assert_eq!(status, 404);
    assert!(body.contains("/metrics"), "{body}");
}
