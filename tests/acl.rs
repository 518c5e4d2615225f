//! ACL 1.0 (F40) on a real `petrel standalone` with `aclEnable=true`: requests signed by the
//! stock Java client's AclClientRPCHook, by Apache's mqadmin (conf/tools.yml), by `petrel
//! admin --accessKey` and by Petrel's own client; unsigned, wrongly signed and unauthorised
//! requests refused with NO_PERMISSION and a remark naming why, with nothing stored; the rules
//! reloaded when the file changes.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::java::Driver;
use common::{
    apache_mqadmin_with_env, eventually, petrel_bin, queue, run_to_exit, test_properties, Petrel,
};
use petrel::client::{properties, Client, ClientError, Credentials, Message, PullRequest};
use petrel_shards::broker::metadata::TopicConfig;
use petrel_shards::remoting::response;

fn rules(audit_right: &str) -> String {
    format!(
        "accounts:
  - accessKey: petrel_admin
    secretKey: admin-secret-1
    admin: true
  - accessKey: app_user
    secretKey: 12345678
    defaultTopicPerm: DENY
    defaultGroupPerm: SUB
    topicPerms:
      - Orders=PUB|SUB
      - Audit={audit_right}
"
    )
}

/// The broker's own account, for its registrations with the name server.
const INNER: &str = r#"innerClientAuthenticationCredentials={"accessKey":"petrel_admin","secretKey":"admin-secret-1"}"#;

fn start_with(dir: &Path, extra: &[&str]) -> Petrel {
    let file = dir.join("plain_acl.yml");
    std::fs::write(&file, rules("SUB")).unwrap();
    let store = dir.join("store");
    let acl_file = format!("aclFile={}", file.display());
    let mut properties = vec!["aclEnable=true", &acl_file];
    properties.extend_from_slice(extra);
    Petrel::start("standalone", &store, &properties)
}

/// A started broker whose shards the name server lists (their first registration, signed,
/// accepted), so `-c DefaultCluster` finds them.
fn start(dir: &Path) -> Petrel {
    let petrel = start_with(dir, &[INNER]);
    let mut client = Client::new(&petrel.namesrv());
    eventually(Duration::from_secs(20), || {
        let info = client.cluster_info().ok()?;
        let brokers = info["brokerAddrTable"].as_object()?;
        (!brokers.is_empty()).then_some(())
    });
    petrel
}

fn keys(access_key: &str, secret_key: &str) -> Credentials {
    Credentials {
        access_key: access_key.into(),
        secret_key: secret_key.into(),
    }
}

fn app_user(petrel: &Petrel) -> Client {
    Client::new(&petrel.namesrv()).with_credentials(keys("app_user", "12345678"))
}

/// `petrel admin <args>` signed with `credentials` (none: unsigned): success, and all output.
fn admin_as(petrel: &Petrel, credentials: Option<(&str, &str)>, args: &[&str]) -> (bool, String) {
    let mut cmd = Command::new(petrel_bin());
    cmd.arg("admin")
        .args(args)
        .args(["-n", &petrel.namesrv()])
        .env_remove("PETREL_ACCESS_KEY")
        .env_remove("PETREL_SECRET_KEY")
        .stdin(Stdio::null());
    if let Some((ak, sk)) = credentials {
        cmd.args(["--accessKey", ak, "--secretKey", sk]);
    }
    let out = cmd.output().expect("petrel admin runs");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

fn refusal(result: Result<impl std::fmt::Debug, ClientError>) -> String {
    match result {
        Err(ClientError::Broker { code, remark }) => {
            assert_eq!(code, response::NO_PERMISSION, "{remark}");
            remark
        }
        other => panic!("expected NO_PERMISSION, got {other:?}"),
    }
}

fn message(i: usize) -> Message {
    Message::new(format!("m{i}"), properties(None, None, &[]))
}

#[test]
fn requests_are_signed_checked_per_right_and_the_rules_reload() {
    let dir = tempfile::tempdir().unwrap();
    let petrel = start(dir.path());
    let front = petrel.front_door();

    // Unsigned and wrongly signed requests are refused, naming why; nothing is created.
    let mut anonymous = Client::new(&petrel.namesrv());
    let created = anonymous.create_topic(&front, &TopicConfig::new("Orders", 2, 6));
    assert_eq!(refusal(created), "No accessKey is configured");
    let mut forger = Client::new(&petrel.namesrv()).with_credentials(keys("app_user", "guess"));
    let forged = forger.create_topic(&front, &TopicConfig::new("Orders", 2, 6));
    assert_eq!(
        refusal(forged),
        "Check signature failed for accessKey=app_user"
    );
    let (ok, out) = admin_as(&petrel, None, &["topicList"]);
    assert!(ok, "the name server is not behind the ACL: {out}");
    assert!(!out.contains("Orders"), "{out}");

    // Only an admin account creates topics, from the CLI as from any client.
    let update = ["updateTopic", "-c", "DefaultCluster", "-t", "Orders"];
    let (ok, out) = admin_as(&petrel, None, &update);
    assert!(!ok && out.contains("No accessKey is configured"), "{out}");
    let (ok, out) = admin_as(&petrel, Some(("app_user", "12345678")), &update);
    assert!(!ok && out.contains("not an admin"), "{out}");
    let (ok, out) = admin_as(&petrel, Some(("petrel_admin", "admin-secret-1")), &update);
    assert!(ok, "{out}");
    let (ok, out) = admin_as(
        &petrel,
        Some(("petrel_admin", "admin-secret-1")),
        &["updateTopic", "-c", "DefaultCluster", "-t", "Audit"],
    );
    assert!(ok, "{out}");
    let mut user = app_user(&petrel);
    eventually(Duration::from_secs(10), || user.route("Audit").ok());

    // app_user may send to Orders (PUB|SUB) but only read Audit (SUB).
    for i in 0..5 {
        user.send("Orders", &message(i), i).unwrap();
    }
    let remark = refusal(user.send("Audit", &message(0), 0));
    assert!(
        remark.contains("app_user") && remark.contains("PUB") && remark.contains("Audit"),
        "{remark}"
    );
    let remark = refusal(forger.send("Orders", &message(9), 0));
    assert!(remark.contains("Check signature failed"), "{remark}");

    // What it may read, it reads: the five sends and no refused one.
    let broker = petrel.brokers()[0].clone();
    let mut pulled = 0;
    for id in 0..8 {
        let q = queue("Orders", &broker.0, id);
        let pull = PullRequest {
            group: "app_group",
            queue: &q,
            offset: 0,
            max: 32,
            subscription: "*",
            suspend: None,
        };
        match user.pull(&broker.1, &pull) {
            Ok(r) => pulled += r.messages.len(),
            Err(e) => panic!("pull of queue {id}: {e}"),
        }
        let q = queue("Audit", &broker.0, id);
        let audit = PullRequest { queue: &q, ..pull };
        assert_eq!(user.pull(&broker.1, &audit).unwrap().messages.len(), 0);
    }
    assert_eq!(pulled, 5);

    // A changed file is in force within seconds, on every shard; a broken one is reported and
    // the rules before it stay.
    let file = dir.path().join("plain_acl.yml");
    std::fs::write(&file, rules("PUB|SUB")).unwrap();
    eventually(Duration::from_secs(15), || {
        user.send("Audit", &message(0), 0).ok()
    });
    std::fs::write(&file, rules("WRITE")).unwrap();
    eventually(Duration::from_secs(15), || {
        petrel
            .stderr_lines()
            .iter()
            .any(|l| l.contains("plain_acl.yml") && l.contains("WRITE"))
            .then_some(())
    });
    user.send("Audit", &message(1), 1)
        .expect("the rules loaded before stay in force");
    assert!(petrel
        .stderr_lines()
        .iter()
        .all(|l| !l.contains("12345678") && !l.contains("admin-secret-1")));
}

#[test]
fn a_broken_acl_file_stops_the_start_naming_the_fault() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain_acl.yml");
    std::fs::write(&file, rules("PUB|WRITE")).unwrap();
    let mut args = vec!["standalone".to_string()];
    for p in test_properties(&dir.path().join("store")) {
        args.extend(["-p".to_string(), p]);
    }
    args.extend([
        "-p".into(),
        "aclEnable=true".into(),
        "-p".into(),
        format!("aclFile={}", file.display()),
    ]);
    let (status, stderr) = run_to_exit(&args);
    assert!(!status.success());
    assert!(
        stderr.contains("plain_acl.yml") && stderr.contains("PUB|WRITE"),
        "{stderr}"
    );
    std::fs::remove_file(&file).unwrap();
    let (status, stderr) = run_to_exit(&args);
    assert!(!status.success());
    assert!(stderr.contains("reading ACL file"), "{stderr}");
}

/// Apache's mqadmin `updateTopic` of `topic`, signed with the keys of a `conf/tools.yml` under
/// its `ROCKETMQ_HOME`: success and output.
fn mqadmin_update_topic(ns: &str, home: &Path, keys: (&str, &str), topic: &str) -> (bool, String) {
    std::fs::create_dir_all(home.join("conf")).unwrap();
    let tools = format!("accessKey: {}\nsecretKey: {}\n", keys.0, keys.1);
    std::fs::write(home.join("conf/tools.yml"), tools).unwrap();
    let home = home.display().to_string();
    let (ok, out, err) = apache_mqadmin_with_env(
        &["updateTopic", "-n", ns, "-c", "DefaultCluster", "-t", topic],
        Duration::from_secs(120),
        &[("ROCKETMQ_HOME", &home)],
    );
    (ok && out.contains("success"), out + &err)
}

#[test]
fn stock_java_clients_and_mqadmin_sign_with_their_own_hook() {
    let dir = tempfile::tempdir().unwrap();
    let petrel = start(dir.path());
    let ns = petrel.namesrv();
    let home = dir.path().join("rocketmq-home");
    let (ok, out) = mqadmin_update_topic(&ns, &home, ("app_user", "12345678"), "Orders");
    assert!(!ok && out.contains("not an admin"), "{out}");
    let (ok, out) = mqadmin_update_topic(&ns, &home, ("petrel_admin", "wrong"), "Orders");
    assert!(!ok && out.contains("Check signature failed"), "{out}");
    let (ok, out) = mqadmin_update_topic(&ns, &home, ("petrel_admin", "admin-secret-1"), "Orders");
    assert!(ok, "{out}");
    eventually(Duration::from_secs(10), || {
        app_user(&petrel).route("Orders").ok()
    });
    let good = [
        ("PETREL_ACL_ACCESS_KEY", "app_user"),
        ("PETREL_ACL_SECRET_KEY", "12345678"),
    ];
    let sent = Driver::start_with_env(&["produce", &ns, "Orders", "20", "sync"], &good)
        .finish(Duration::from_secs(120));
    let done = sent.last().unwrap();
    assert_eq!(
        (&done["sent"], &done["failed"]),
        (&20.into(), &0.into()),
        "{done}"
    );

    // A wrong secret: every send fails with the broker's reason; nothing is stored.
    let bad = [
        ("PETREL_ACL_ACCESS_KEY", "app_user"),
        ("PETREL_ACL_SECRET_KEY", "wrong"),
    ];
    let lines = Driver::start_with_env(&["produce", &ns, "Orders", "3", "sync"], &bad)
        .all_lines(Duration::from_secs(120));
    let text = format!("{lines:?}");
    assert!(text.contains("Check signature failed"), "{text}");
    assert!(!lines.iter().any(|l| l.get("msgId").is_some()), "{text}");
    // And without the hook at all.
    let lines =
        Driver::start(&["produce", &ns, "Orders", "2", "sync"]).all_lines(Duration::from_secs(120));
    assert!(format!("{lines:?}").contains("No accessKey"), "{lines:?}");

    // A push consumer with the right keys gets exactly the 20.
    let got = Driver::start_with_env(
        &[
            "push",
            &ns,
            "acl_push_group",
            "Orders",
            "*",
            "20",
            "120",
            "5",
        ],
        &good,
    )
    .finish(Duration::from_secs(180));
    let done = got.last().unwrap();
    assert_eq!(done["received"], 20, "{done}");
}

#[test]
fn name_server_changes_need_an_admin_signature() {
    let dir = tempfile::tempdir().unwrap();
    let petrel = start(dir.path());
    let ns = petrel.namesrv();
    let (ok, out) = admin_as(
        &petrel,
        Some(("petrel_admin", "admin-secret-1")),
        &["updateTopic", "-c", "DefaultCluster", "-t", "Orders"],
    );
    assert!(ok, "{out}");
    let mut user = app_user(&petrel);
    let route = eventually(Duration::from_secs(10), || user.route("Orders").ok());
    let real = route.broker_datas[0].master().unwrap().to_string();

    // A forged registration (the route hijack of an open name server) is refused: unsigned,
    // or signed by an account that is not an admin.
    let forged = |client: &mut Client| {
        let fields = [
            ("brokerName", route.broker_datas[0].broker_name.as_str()),
            ("brokerAddr", "127.0.0.1:1"),
            ("clusterName", "DefaultCluster"),
            ("haServerAddr", "127.0.0.1:1"),
            ("brokerId", "0"),
        ];
        let body = br#"{"topicConfigSerializeWrapper":{"topicConfigTable":{"Orders":{"topicName":"Orders","readQueueNums":8,"writeQueueNums":8,"perm":6}},"dataVersion":{"counter":1,"timestamp":1}},"filterServerList":[]}"#;
        let cmd = petrel_shards::remoting::RemotingCommand::request(
            petrel_shards::remoting::request::REGISTER_BROKER,
            fields.into_iter().collect(),
            bytes::Bytes::from_static(body),
        );
        client.call(&ns, cmd).unwrap()
    };
    let reply = forged(&mut Client::new(&ns));
    assert_eq!(reply.code, response::NO_PERMISSION, "{reply:?}");
    assert_eq!(reply.remark.as_deref(), Some("No accessKey is configured"));
    let reply = forged(&mut user);
    assert_eq!(reply.code, response::NO_PERMISSION, "{reply:?}");
    assert!(reply.remark.unwrap().contains("not an admin"));
    let (ok, out) = admin_as(
        &petrel,
        Some(("app_user", "12345678")),
        &["deleteTopic", "-c", "DefaultCluster", "-t", "Orders"],
    );
    assert!(!ok && out.contains("not an admin"), "{out}");
    let route = user.route("Orders").unwrap();
    assert_eq!(route.broker_datas[0].master(), Some(real.as_str()));

    // A broker without its own account is refused by an ACL name server, and says so.
    let bare = tempfile::tempdir().unwrap();
    let unregistered = start_with(bare.path(), &[]);
    eventually(Duration::from_secs(15), || {
        unregistered
            .stderr_lines()
            .iter()
            .any(|l| l.contains("register with") && l.contains("No accessKey is configured"))
            .then_some(())
    });
    let info = Client::new(&unregistered.namesrv()).cluster_info().unwrap();
    assert!(
        info["brokerAddrTable"]
            .as_object()
            .is_none_or(|t| t.is_empty()),
        "{info}"
    );
}
