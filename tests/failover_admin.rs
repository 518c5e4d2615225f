//! The controller's operator commands, driven with Apache RocketMQ's own mqadmin
//! (rocketmq-tools 5.5.0) and with `petrel admin`: `getSyncStateSet` and `electMaster`.

mod common;

use std::time::Duration;

use common::ha::{controller, in_sync_pair, routed_master, SHARDS};
use common::{admin, admin_ok, apache_mqadmin, eventually};

/// The line of `out` that starts with `key` and a tab, without them.
fn line_value<'a>(out: &'a str, key: &str) -> Option<&'a str> {
    out.lines()
        .find_map(|l| l.trim_start().strip_prefix(key)?.strip_prefix('\t'))
}

/// mqadmin's command line making replica `id` master of `broker-a-s0`.
fn elect<'a>(ns: &'a str, id: &'a str) -> [&'a str; 9] {
    [
        "electMaster",
        "-a",
        ns,
        "-c",
        "DefaultCluster",
        "-bn",
        "broker-a-s0",
        "-b",
        id,
    ]
}

#[test]
fn apache_mqadmin_and_petrel_admin_read_the_sync_state_set_and_elect_a_master() {
    let (_ns_dir, _namesrv, ns, mut client) = controller();
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let (a, b) = in_sync_pair(&mut client, &ns, [dirs[0].path(), dirs[1].path()], None);
    let limit = Duration::from_secs(300);

    // Apache mqadmin asks the controller which controller leads, then reads the set.
    let (ok, out, err) =
        apache_mqadmin(&["getSyncStateSet", "-a", &ns, "-b", "broker-a-s0"], limit);
    assert!(ok, "mqadmin getSyncStateSet: {out}{err}");
    assert_eq!(line_value(&out, "#MasterBrokerId"), Some("1"), "{out}");
    assert_eq!(
        line_value(&out, "#MasterAddr"),
        Some(a.brokers()[0].1.as_str()),
        "{out}"
    );
    assert_eq!(line_value(&out, "#SyncStateSetNums"), Some("2"), "{out}");
    assert_eq!(out.matches("InSyncReplica:").count(), 2, "{out}");

    // Apache mqadmin moves shard 0's master to replica 2.
    let (ok, out, err) = apache_mqadmin(&elect(&ns, "2"), limit);
    assert!(ok, "mqadmin electMaster: {out}{err}");
    let b_s0 = b.brokers()[0].1.clone();
    assert_eq!(
        line_value(&out, "#BrokerMasterAddr"),
        Some(b_s0.as_str()),
        "{out}"
    );
    assert_eq!(line_value(&out, "#MasterEpoch"), Some("2"), "{out}");
    assert!(out.contains(&format!("#Broker\t2\t{b_s0}")), "{out}");
    eventually(Duration::from_secs(10), || {
        (routed_master(&mut client, 0).as_deref() == Some(b_s0.as_str())).then_some(())
    });

    // petrel admin speaks the same commands, with mqadmin's options and output.
    let out = admin_ok(&ns, &["getSyncStateSet", "-a", &ns, "-c", "DefaultCluster"]);
    assert_eq!(out.matches("#brokerName\t").count(), SHARDS, "{out}");
    assert!(out.contains("#MasterBrokerId\t2"), "{out}");
    assert!(out.contains("#MasterBrokerId\t1"), "{out}");
    let out = admin_ok(&ns, &elect(&ns, "1"));
    let a_s0 = a.brokers()[0].1.clone();
    assert_eq!(
        line_value(&out, "#BrokerMasterAddr"),
        Some(a_s0.as_str()),
        "{out}"
    );
    eventually(Duration::from_secs(10), || {
        (routed_master(&mut client, 0).as_deref() == Some(a_s0.as_str())).then_some(())
    });

    // clusterList shows each shard's role and epoch: shard 0 was elected three times.
    fn row(out: &str, name: &str, id: &str) -> Option<Vec<String>> {
        out.lines()
            .map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
            .find(|cols| cols.len() >= 7 && cols[1] == name && cols[2] == id)
    }
    // The replaced master re-registers as brokerId 2 once it follows.
    let out = eventually(Duration::from_secs(10), || {
        let out = admin_ok(&ns, &["clusterList"]);
        let settled = row(&out, "broker-a-s0", "2").is_some_and(|r| r[4] == "SLAVE" && r[6] == "3");
        settled.then_some(out)
    });
    let row = |name: &str, id: &str| {
        row(&out, name, id).unwrap_or_else(|| panic!("no {name} brokerId {id} in {out}"))
    };
    let (master, slave) = (row("broker-a-s0", "0"), row("broker-a-s0", "2"));
    assert!(master[4].ends_with("MASTER"), "{out}");
    assert_eq!(master[6], "3", "{out}");
    assert_eq!(slave[6], "3", "{out}");
    assert_eq!(row("broker-a-s1", "0")[6], "1", "{out}");
    // A replica that does not exist is refused by name, and nothing changes.
    let (ok, out, err) = admin(&ns, &elect(&ns, "7"));
    assert!(!ok, "{out}");
    assert!(err.contains("brokerId 7"), "{err}");
    let (ok, out, err) = apache_mqadmin(&elect(&ns, "7"), limit);
    // mqadmin prints the controller's refusal (and exits 0 after a failed command).
    let said = format!("{out}{err}");
    assert!(
        said.contains("brokerId 7 of broker-a-s0 is not alive"),
        "mqadmin exit ok={ok}: {said}"
    );
    assert_eq!(
        routed_master(&mut client, 0).as_deref(),
        Some(a_s0.as_str())
    );
}
