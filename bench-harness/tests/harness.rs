//! petrel-bench end to end: the real binary against a real `petrel standalone` on loopback,
//! with the CI sizes of the shipped workloads (seconds, not minutes). These check that the
//! instrument measures what it claims; they are not measurements.

#[path = "../../tests/common/mod.rs"]
mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::Petrel;
use petrel::client::Client;
use petrel_shards::remoting::{request, response};
use serde_json::Value;

const BENCH: &str = env!("CARGO_BIN_EXE_petrel-bench");

fn workload(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("workloads/ci")
        .join(name)
}

/// A Petrel with two shards (two brokers in routes), so queues spread over both.
fn petrel(extra: &[&str]) -> (tempfile::TempDir, Petrel) {
    let mut props = vec!["shards=2"];
    props.extend_from_slice(extra);
    let (dir, petrel) = common::standalone(&props);
    // The ready line means every shard serves; their first registrations may still be on the
    // way, and the harness takes the brokers the name server knows when it starts.
    let mut client = Client::new(&petrel.namesrv());
    common::eventually(Duration::from_secs(10), || {
        let info = client.cluster_info().ok()?;
        (info["brokerAddrTable"].as_object()?.len() == 2).then_some(())
    });
    (dir, petrel)
}

fn bench(args: &[&str]) -> Output {
    Command::new(BENCH)
        .args(args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .expect("petrel-bench runs")
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn run(ns: &str, workload_file: &Path, out: &Path) -> Value {
    let o = bench(&[
        "run",
        "--namesrv",
        ns,
        "--workload",
        workload_file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        o.status.success(),
        "{}: {}",
        workload_file.display(),
        String::from_utf8_lossy(&o.stderr)
    );
    read_json(&out.join("report.json"))
}

/// Messages stored in every queue of `topic`, from the brokers' max offsets.
fn stored(ns: &str, topic: &str) -> i64 {
    let mut client = Client::new(ns);
    let route = client.route(topic).unwrap();
    let mut total = 0;
    for q in route.subscribe_queues(topic) {
        let addr = route.broker_addr(&q.broker_name).unwrap().to_string();
        let reply = client
            .call_fields(
                &addr,
                request::GET_MAX_OFFSET,
                &[("topic", topic.into()), ("queueId", q.queue_id.to_string())],
            )
            .unwrap();
        assert_eq!(reply.code, response::SUCCESS);
        total += reply.field("offset").unwrap().parse::<i64>().unwrap();
    }
    total
}

/// The total count on the last line of a `.hgrm` percentile distribution.
fn hgrm_total(path: &Path) -> u64 {
    let text = std::fs::read_to_string(path).unwrap();
    let last = text
        .lines()
        .rev()
        .find(|l| !l.starts_with('#') && !l.trim().is_empty())
        .unwrap();
    last.split_whitespace().nth(2).unwrap().parse().unwrap()
}

#[test]
fn a_fixed_rate_run_writes_every_output_and_its_counts_match_the_broker() {
    let (_dir, petrel) = petrel(&[]);
    let ns = petrel.namesrv();
    let out = tempfile::tempdir().unwrap();
    let r = run(&ns, &workload("1-topic-16-partitions-1kb.yaml"), out.path());
    assert_eq!(r["errors"], serde_json::json!({}), "{r}");
    assert_eq!(r["brokers"].as_array().unwrap().len(), 2, "{r}");
    let acked = r["acked_messages"].as_u64().unwrap();
    let rate = r["publish_rate"].as_f64().unwrap();
    assert!(acked > 0 && rate > 0.0, "{r}");
    assert!(r["consume_rate"].as_f64().unwrap() > 0.0, "{r}");
    for key in ["publish_latency_ms", "e2e_latency_ms"] {
        let l = &r[key];
        for p in ["p50", "p99", "p999", "max"] {
            assert!(l[p].as_f64().unwrap() > 0.0, "{key}.{p}: {r}");
        }
        assert!(l["p50"].as_f64() <= l["p99"].as_f64(), "{r}");
        assert!(l["p99"].as_f64() <= l["max"].as_f64(), "{r}");
    }
    assert!(r["generator_cpu"].as_f64().unwrap() > 0.0, "{r}");
    // Everything acked (warm-up included) is on the broker.
    let topic = r["topics"][0].as_str().unwrap();
    assert!(stored(&ns, topic) >= acked as i64, "{r}");
    // The histograms on disk are the ones the report summarises.
    assert_eq!(hgrm_total(&out.path().join("publish.hgrm")), acked);
    assert_eq!(
        hgrm_total(&out.path().join("e2e.hgrm")),
        r["received_messages"].as_u64().unwrap()
    );
    let svg = std::fs::read_to_string(out.path().join("latency.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("end-to-end"));
    let md = std::fs::read_to_string(out.path().join("report.md")).unwrap();
    assert!(md.contains("| publish |"), "{md}");
}

#[test]
fn a_stalled_broker_shows_in_the_latency_of_every_message_that_waited() {
    // One request at a time at 500 msg/s: a harness that timed from the actual send would
    // record one slow sample for a 1 s stall; from the intended send time, every message due
    // during the stall is late, about 500 of the ~1500 measured.
    let (_dir, petrel) = petrel(&[]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("stall.yaml");
    std::fs::write(
        &file,
        "name: stall\ntopics: 1\npartitionsPerTopic: 2\nmessageSize: 128\nsubscriptionsPerTopic: 0\n\
         producerRate: 500\nproducerMode: sync\ninFlight: 1\ntestDurationMinutes: 0.05\n",
    )
    .unwrap();
    let out = dir.path().join("out");
    let mut child = Command::new(BENCH)
        .args(["run", "--namesrv", &petrel.namesrv(), "--workload"])
        .arg(&file)
        .arg("--out")
        .arg(&out)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut before = Vec::new();
    let started = lines.by_ref().map_while(Result::ok).any(|line| {
        before.push(line);
        before.last().unwrap().contains("stall: started")
    });
    assert!(started, "petrel-bench did not start: {before:#?}");
    std::thread::sleep(Duration::from_millis(800));
    // SAFETY: kill(2) with a pid we started and a standard signal.
    unsafe { libc::kill(petrel.pid(), libc::SIGSTOP) };
    std::thread::sleep(Duration::from_secs(1));
    // SAFETY: as above.
    unsafe { libc::kill(petrel.pid(), libc::SIGCONT) };
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(child.wait().unwrap().success(), "{rest:#?}");
    let r = read_json(&out.join("report.json"));
    let l = &r["publish_latency_ms"];
    assert!(l["max"].as_f64().unwrap() >= 900.0, "{r}");
    assert!(l["p90"].as_f64().unwrap() >= 200.0, "{r}");
}

#[test]
fn every_shipped_ci_workload_runs_clean() {
    let (_dir, petrel) = petrel(&[]);
    let ns = petrel.namesrv();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("workloads/ci");
    let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    names.sort();
    for file in names {
        let out = tempfile::tempdir().unwrap();
        let r = run(&ns, &file, out.path());
        assert_eq!(
            r["errors"],
            serde_json::json!({}),
            "{}: {r}",
            file.display()
        );
        assert!(
            r["acked_messages"].as_u64().unwrap() > 0,
            "{}: {r}",
            file.display()
        );
        assert!(
            r["received_messages"].as_u64().unwrap() > 0,
            "{}: {r}",
            file.display()
        );
    }
}

#[test]
fn compare_alternates_the_targets_and_reports_ratios_per_round() {
    let (_dir, petrel) = petrel(&[]);
    let ns = petrel.namesrv();
    let out = tempfile::tempdir().unwrap();
    let w = workload("max-rate-1-topic-1-partition-1p-1c-100b.yaml");
    let o = bench(&[
        "compare",
        "--a",
        &ns,
        "--b",
        &ns,
        "--workload",
        w.to_str().unwrap(),
        "--rounds",
        "2",
        "--out",
        out.path().to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let c = read_json(&out.path().join("compare.json"));
    for metric in [
        "publish_rate",
        "publish_latency_ms.p99",
        "e2e_latency_ms.p99",
    ] {
        let m = &c["metrics"][metric];
        assert_eq!(m["ratio"].as_array().unwrap().len(), 2, "{metric}: {c}");
        assert!(m["median_ratio"].as_f64().unwrap() > 0.0, "{metric}: {c}");
    }
    // A B A B, in that order.
    let started: Vec<u64> = ["round-1-a", "round-1-b", "round-2-a", "round-2-b"]
        .iter()
        .map(|d| {
            read_json(&out.path().join(d).join("report.json"))["started_unix_ms"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert!(started.windows(2).all(|w| w[0] < w[1]), "{started:?}");
}

#[test]
fn ceiling_measures_the_disk_and_loopback_and_cleans_up() {
    let dir = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let o = bench(&[
        "ceiling",
        "--dir",
        dir.path().to_str().unwrap(),
        "--out",
        out.path().to_str().unwrap(),
        "--sizes",
        "100,1024",
        "--seconds",
        "0.2",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let c = read_json(&out.path().join("ceiling.json"));
    for key in ["disk_no_fsync", "disk_group_fsync", "tcp_stream"] {
        assert!(c[key]["mib_per_sec"].as_f64().unwrap() > 0.0, "{key}: {c}");
    }
    let sizes = c["sizes"].as_array().unwrap();
    assert_eq!(sizes.len(), 2);
    assert!(
        sizes[0]["tcp_stream_msgs_per_sec"].as_f64() > sizes[1]["tcp_stream_msgs_per_sec"].as_f64()
    );
    assert!(sizes[1]["ping_pong_p50_ms"].as_f64().unwrap() > 0.0);
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "the test file is removed"
    );
}

#[test]
fn bad_targets_and_bad_workloads_fail_with_a_clear_error() {
    let out = tempfile::tempdir().unwrap();
    let w = workload("simple-workload.yaml");
    let args = |ns: &'static str, w: &Path| {
        bench(&[
            "run",
            "--namesrv",
            ns,
            "--workload",
            w.to_str().unwrap(),
            "--out",
            out.path().to_str().unwrap(),
        ])
    };
    let o = args("127.0.0.1:1", &w);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("127.0.0.1:1"), "{err}");

    let bad = out.path().join("bad.yaml");
    std::fs::write(&bad, "name: x\ntopics: 1\npartitionsPerTopic: 1\nmessageSize: 10\nproducerRate: 0\ntestDurationMinutes: 1\nmesageSize: 3\n").unwrap();
    let o = args("127.0.0.1:1", &bad);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("mesageSize") && err.contains("bad.yaml"),
        "{err}"
    );
}

#[test]
fn a_run_where_every_send_fails_reports_why_and_exits_non_zero() {
    let (_dir, petrel) = petrel(&["maxMessageSize=512"]);
    let out = tempfile::tempdir().unwrap();
    let w = workload("max-rate-1-topic-1-partition-1p-1c-1kb.yaml");
    let o = bench(&[
        "run",
        "--namesrv",
        &petrel.namesrv(),
        "--workload",
        w.to_str().unwrap(),
        "--out",
        out.path().to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("no send was acknowledged"), "{err}");
    let r = read_json(&out.path().join("report.json"));
    let errors = r["errors"].as_object().unwrap();
    assert!(errors.keys().all(|k| k.starts_with("code ")), "{r}");
    assert!(!errors.is_empty(), "{r}");
}

#[test]
fn the_connections_measurement_reports_the_cost_of_idle_connections() {
    let (_dir, petrel) = petrel(&[]);
    let mut client = Client::new(&petrel.namesrv());
    common::create_topic(&mut client, &petrel, "Idle", 2);
    let (_, broker) = petrel.brokers()[0].clone();
    let out = tempfile::tempdir().unwrap();
    let pid = petrel.pid().to_string();
    let o = bench(&[
        "connections",
        "--broker",
        &broker,
        "--pid",
        &pid,
        "--topic",
        "Idle",
        "--loaded",
        "20",
        "--idle",
        "200",
        "--settle-secs",
        "1",
        "--out",
        out.path().to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r = read_json(&out.path().join("connections.json"));
    assert_eq!(r["connections"], 220, "{r}");
    assert_eq!(r["held"], 220, "{r}");
    assert!(r["rss_idle_kib"].as_u64().unwrap() > 0, "{r}");
    assert!(r["honest_send_max_ms"].as_f64().unwrap() > 0.0, "{r}");
    // Every loading send was stored: 20 connections × 8.
    assert_eq!(stored(&petrel.namesrv(), "Idle"), 160 + 21);
    let md = std::fs::read_to_string(out.path().join("connections.md")).unwrap();
    assert!(md.contains("bytes per held connection"), "{md}");
}
