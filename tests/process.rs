//! Process-level behaviour: start-up failures name their cause (F31, F32, bad config), and
//! SIGTERM drains and exits 0.

mod common;

use common::{run_to_exit, test_properties, Petrel};

fn args(role: &str, store: &std::path::Path, extra: &[&str]) -> Vec<String> {
    let mut out = vec![role.to_string()];
    for p in test_properties(store)
        .into_iter()
        .chain(extra.iter().map(|s| s.to_string()))
    {
        out.push("-p".into());
        out.push(p);
    }
    out
}

#[test]
fn a_taken_port_fails_with_the_port_and_its_key() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let (status, stderr) = run_to_exit(&args(
        "standalone",
        dir.path(),
        &["bindAddress=127.0.0.1", &format!("listenPort={port}")],
    ));
    assert!(!status.success());
    assert!(
        stderr.contains(&format!("listenPort {port}: address already in use")),
        "{stderr}"
    );
}

#[test]
fn bad_config_keys_and_values_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let (status, stderr) = run_to_exit(&args("broker", dir.path(), &["flushDiskTyp=SYNC_FLUSH"]));
    assert!(!status.success());
    assert!(
        stderr.contains("unknown config key `flushDiskTyp`"),
        "{stderr}"
    );
    let (status, stderr) = run_to_exit(&args("broker", dir.path(), &["maxMessageSize=-5"]));
    assert!(!status.success());
    assert!(
        stderr.contains("config key `maxMessageSize`: bad value \"-5\""),
        "{stderr}"
    );
    let conf = dir.path().join("broker.conf");
    std::fs::write(&conf, "listenPort=notaport\n").unwrap();
    let (status, stderr) = run_to_exit(&["broker".into(), "-c".into(), conf.display().to_string()]);
    assert!(!status.success());
    assert!(
        stderr.contains("config key `listenPort`: bad value \"notaport\""),
        "{stderr}"
    );
}

#[test]
fn a_store_is_bound_to_its_broker_name() {
    let dir = tempfile::tempdir().unwrap();
    let petrel = Petrel::start("standalone", dir.path(), &["brokerName=alpha"]);
    assert!(petrel.terminate().success());
    let (status, stderr) = run_to_exit(&args("standalone", dir.path(), &["brokerName=beta"]));
    assert!(!status.success());
    assert!(
        stderr.contains("beta does not match the expected group name: alpha"),
        "{stderr}"
    );
}

#[test]
fn a_running_store_cannot_be_opened_twice() {
    let dir = tempfile::tempdir().unwrap();
    let _petrel = Petrel::start("standalone", dir.path(), &[]);
    let (status, stderr) = run_to_exit(&args("standalone", dir.path(), &[]));
    assert!(!status.success());
    assert!(
        stderr.contains("is locked by another running broker"),
        "{stderr}"
    );
}

#[test]
fn namesrv_and_broker_run_as_separate_processes() {
    let ns_dir = tempfile::tempdir().unwrap();
    let namesrv = Petrel::start("namesrv", ns_dir.path(), &[]);
    let dir = tempfile::tempdir().unwrap();
    let ns = namesrv.namesrv();
    let broker = Petrel::start(
        "broker",
        dir.path(),
        &[&format!("namesrvAddr={ns}"), "shards=2"],
    );
    let mut client = petrel::client::Client::new(&ns);
    let info = common::eventually(std::time::Duration::from_secs(10), || {
        let info = client.cluster_info().ok()?;
        (info["clusterAddrTable"]["DefaultCluster"].as_array()?.len() == 2).then_some(info)
    });
    assert_eq!(
        info["brokerAddrTable"]["broker-a-s1"]["brokerAddrs"]["0"],
        broker.brokers()[1].1.as_str()
    );
    assert!(broker.terminate().success());
    // A broker that stops unregisters at once.
    let info = client.cluster_info().unwrap();
    assert!(
        info["clusterAddrTable"].as_object().unwrap().is_empty(),
        "{info}"
    );
    assert!(namesrv.terminate().success());
}

#[test]
fn a_broker_registers_with_every_name_server_in_its_list() {
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (ns1, ns2) = (
        Petrel::start("namesrv", d1.path(), &[]),
        Petrel::start("namesrv", d2.path(), &[]),
    );
    let list = format!("namesrvAddr={};{}", ns1.namesrv(), ns2.namesrv());
    let dir = tempfile::tempdir().unwrap();
    let _broker = Petrel::start("broker", dir.path(), &[&list]);
    for ns in [ns1.namesrv(), ns2.namesrv()] {
        let mut client = petrel::client::Client::new(&ns);
        common::eventually(std::time::Duration::from_secs(10), || {
            client.route("TBW102").ok()
        });
    }
}

#[test]
fn a_start_whose_mesh_did_not_form_starts_again_and_serves() {
    let dir = tempfile::tempdir().unwrap();
    let env = [("PETREL_FAULT_MESH_JOIN", "1")];
    let petrel = Petrel::start_with_env("standalone", dir.path(), &["shards=2"], "warn", &env);
    let mut client = petrel::client::Client::new(&petrel.namesrv());
    common::create_topic(&mut client, &petrel, "Again", 2);
    for (name, addr) in petrel.brokers() {
        let msg = petrel::client::Message::new("m", petrel::client::properties(None, None, &[]));
        let q = common::queue("Again", &name, 0);
        client.send_to(&addr, &q, &msg).unwrap();
    }
    let said: Vec<String> = petrel.stderr_lines();
    assert!(
        said.iter()
            .any(|l| l.contains("the cross-shard mesh did not form")
                && l.contains("starting again (attempt 2)")),
        "{said:?}"
    );
    assert!(petrel.terminate().success());
}
