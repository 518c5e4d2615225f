//! Deleting topics and groups, and listing a group's connections, with `petrel admin` against
//! a two-shard `petrel standalone`: a topic is not deleted while a consumer subscribes to it
//! or a producer sends to it (F36, in the seed's words), not even on the shard the client
//! does not use; once they leave, it goes from every shard and every route and stays gone
//! after a restart.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{admin, eventually, Petrel};
use petrel::client::{properties, Client, ClientError, Connection, Message};
use petrel_shards::remoting::{request, ExtFields, RemotingCommand};
use serde_json::json;

fn heartbeat(addr: &str, client_id: &str, body: serde_json::Value) -> Connection {
    let mut conn = Connection::connect(addr, Duration::from_secs(5)).unwrap();
    let mut data = body;
    data["clientID"] = json!(client_id);
    let reply = conn
        .call(RemotingCommand::request(
            request::HEART_BEAT,
            ExtFields::new(),
            Bytes::from(data.to_string()),
        ))
        .unwrap();
    assert_eq!(reply.code, 0);
    conn
}

fn route_gone(client: &mut Client, topic: &str) -> bool {
    matches!(client.route(topic), Err(ClientError::NoRoute(_)))
}

#[test]
fn a_topic_in_use_is_not_deleted_and_one_deleted_stays_gone() {
    let dir = tempfile::tempdir().unwrap();
    let petrel = Petrel::start("standalone", dir.path(), &["shards=2"]);
    let ns = petrel.namesrv();
    let (ok, _, err) = admin(
        &ns,
        &[
            "updateTopic",
            "-b",
            &petrel.front_door(),
            "-t",
            "Doomed",
            "-r",
            "4",
            "-w",
            "4",
        ],
    );
    assert!(ok, "{err}");
    let mut client = Client::new(&ns);
    eventually(Duration::from_secs(10), || client.route("Doomed").ok());
    let shard1 = petrel.brokers()[1].1.clone();

    // A consumer of the topic, connected to shard 1 only.
    let consumer = heartbeat(
        &shard1,
        "c-doomed",
        json!({"producerDataSet": [], "consumerDataSet": [{
            "groupName": "GDoomed", "consumeType": "CONSUME_PASSIVELY", "messageModel": "CLUSTERING",
            "consumeFromWhere": "CONSUME_FROM_FIRST_OFFSET",
            "subscriptionDataSet": [{"topic": "Doomed", "subString": "*", "tagsSet": [], "codeSet": [], "subVersion": 1}]
        }]}),
    );
    let (ok, _, err) = admin(
        &ns,
        &["deleteTopic", "-c", "DefaultCluster", "-t", "Doomed"],
    );
    assert!(!ok);
    assert!(
        err.contains("topic Doomed is consuming by consumer GDoomed"),
        "{err}"
    );
    let route = client.route("Doomed").unwrap();
    assert_eq!(
        route.queue_datas.len(),
        2,
        "nothing was deleted on shard 0 either"
    );
    let (ok, out, err) = admin(&ns, &["consumerConnection", "-g", "GDoomed"]);
    assert!(ok, "{err}");
    assert!(out.contains("c-doomed") && out.contains("RUST"), "{out}");
    assert!(
        out.contains("Doomed") && out.contains("MessageModel: CLUSTERING"),
        "{out}"
    );
    // Every group in one line: its members, type, model, TPS and backlog.
    let out = eventually(Duration::from_secs(10), || {
        let (ok, out, _) = admin(&ns, &["consumerProgress"]);
        (ok && out.contains("GDoomed")).then_some(out)
    });
    let row: Vec<&str> = out
        .lines()
        .find(|l| l.starts_with("GDoomed "))
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(
        [row[0], row[1], row[3], row[4]],
        ["GDoomed", "1", "PUSH", "CLUSTERING"],
        "{out}"
    );
    drop(consumer);

    // A producer that sent to the topic and is still online.
    let producer = heartbeat(
        &petrel.brokers()[0].1,
        "p-doomed",
        json!({"producerDataSet": [{"groupName": "PETREL_PRODUCER"}], "consumerDataSet": []}),
    );
    let (name, addr) = petrel.brokers()[0].clone();
    client
        .send_to(
            &addr,
            &common::queue("Doomed", &name, 0),
            &Message::new("last words", properties(None, None, &[])),
        )
        .unwrap();
    let refused = eventually(Duration::from_secs(10), || {
        let (ok, _, err) = admin(
            &ns,
            &["deleteTopic", "-c", "DefaultCluster", "-t", "Doomed"],
        );
        (!ok && err.contains("publishing")).then_some(err)
    });
    assert!(
        refused.contains("topic Doomed is publishing by producer PETREL_PRODUCER"),
        "{refused}"
    );
    let (ok, out, err) = admin(
        &ns,
        &[
            "producerConnection",
            "-g",
            "PETREL_PRODUCER",
            "-t",
            "Doomed",
        ],
    );
    assert!(ok, "{err}");
    assert!(out.contains("p-doomed"), "{out}");
    drop(producer);

    // Everyone left: deleted from both shards and the name server.
    let out = eventually(Duration::from_secs(10), || {
        let (ok, out, _) = admin(
            &ns,
            &["deleteTopic", "-c", "DefaultCluster", "-t", "Doomed"],
        );
        ok.then_some(out)
    });
    assert!(
        out.contains("delete topic [Doomed] from cluster [DefaultCluster] success."),
        "{out}"
    );
    assert!(
        out.contains("delete topic [Doomed] from NameServer success."),
        "{out}"
    );
    assert!(route_gone(&mut client, "Doomed"));
    // System topics stay.
    let (ok, _, err) = admin(
        &ns,
        &["deleteTopic", "-c", "DefaultCluster", "-t", "TBW102"],
    );
    assert!(!ok && err.contains("system topic"), "{err}");

    // Its messages are still in the log, but a restart does not bring the topic back.
    assert!(petrel.terminate().success());
    let petrel = Petrel::start("standalone", dir.path(), &["shards=2"]);
    let mut client = Client::new(&petrel.namesrv());
    eventually(Duration::from_secs(10), || client.route("TBW102").ok());
    assert!(route_gone(&mut client, "Doomed"));

    // Groups: deleted everywhere, offsets too with -r.
    let ns = petrel.namesrv();
    let (ok, _, err) = admin(
        &ns,
        &["updateSubGroup", "-c", "DefaultCluster", "-g", "GGone"],
    );
    assert!(ok, "{err}");
    let (ok, out, err) = admin(
        &ns,
        &[
            "deleteSubGroup",
            "-c",
            "DefaultCluster",
            "-g",
            "GGone",
            "-r",
            "true",
        ],
    );
    assert!(ok, "{err}");
    assert_eq!(
        out.matches("delete subscription group [GGone] from broker")
            .count(),
        2,
        "{out}"
    );
}
