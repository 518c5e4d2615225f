//! END_TRANSACTION over the wire, with Petrel's own client: a half message is invisible until
//! committed, an end that names the wrong group or offset is refused with a remark saying
//! which, and a transaction ends once however many times its outcome arrives.

mod common;

use common::{create_topic, pull_all, queue, standalone};
use petrel::client::{properties, Client, Message};
use petrel_shards::record::decode_offset_msg_id;
use petrel_shards::remoting::{request, response};

#[test]
fn a_half_message_is_delivered_once_after_its_commit_and_bad_ends_are_named() {
    let (_dir, petrel) = standalone(&[]);
    let mut client = Client::new(&petrel.namesrv());
    create_topic(&mut client, &petrel, "TxWire", 1);
    let addr = petrel.brokers()[0].1.clone();
    let q = queue("TxWire", "broker-a-s0", 0);
    let half = |body: &str| {
        let user = [
            ("TRAN_MSG".to_string(), "true".to_string()),
            ("PGROUP".to_string(), "PGWire".to_string()),
        ];
        Message::new(body.to_string(), properties(Some("T"), None, &user))
    };
    // A batch of half messages is refused whole, whether the flag is on the request or on
    // its messages.
    let err = client
        .send_batch_to(&addr, &q, &[half("b1"), half("b2")])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("transactional messages cannot be sent in a batch"),
        "{err}"
    );
    let sent = client.send_to(&addr, &q, &half("committed")).unwrap();
    let rolled = client.send_to(&addr, &q, &half("rolled back")).unwrap();
    assert_eq!(
        (sent.queue_id, sent.queue_offset),
        (0, 0),
        "offset in the half queue"
    );
    assert_eq!(rolled.queue_offset, 1);
    assert!(
        pull_all(&mut client, &addr, &q, "*").is_empty(),
        "half messages are invisible"
    );

    let end = |client: &mut Client, group: &str, half_offset: i64, id: &str, kind: i32| {
        let (_, physical) = decode_offset_msg_id(id).unwrap();
        client
            .call_fields(
                &addr,
                request::END_TRANSACTION,
                &[
                    ("producerGroup", group.to_string()),
                    ("tranStateTableOffset", half_offset.to_string()),
                    ("commitLogOffset", physical.to_string()),
                    ("commitOrRollback", kind.to_string()),
                    ("fromTransactionCheck", "false".to_string()),
                ],
            )
            .unwrap()
    };
    let wrong_group = end(&mut client, "Other", 0, &sent.offset_msg_id, 8);
    assert_eq!(wrong_group.code, response::SYSTEM_ERROR);
    assert!(
        wrong_group
            .remark
            .as_deref()
            .unwrap()
            .contains("producer group"),
        "{:?}",
        wrong_group.remark
    );
    let wrong_offset = end(&mut client, "PGWire", 1, &sent.offset_msg_id, 8);
    assert_eq!(wrong_offset.code, response::SYSTEM_ERROR);
    assert!(
        wrong_offset.remark.as_deref().unwrap().contains("offset"),
        "{:?}",
        wrong_offset.remark
    );
    let bad_kind = end(&mut client, "PGWire", 0, &sent.offset_msg_id, 5);
    assert_eq!(bad_kind.code, response::SYSTEM_ERROR);
    assert!(pull_all(&mut client, &addr, &q, "*").is_empty());

    for _ in 0..2 {
        assert_eq!(
            end(&mut client, "PGWire", 0, &sent.offset_msg_id, 8).code,
            response::SUCCESS
        );
        assert_eq!(
            end(&mut client, "PGWire", 1, &rolled.offset_msg_id, 12).code,
            response::SUCCESS
        );
    }
    // A commit after the rollback changes nothing either.
    end(&mut client, "PGWire", 1, &rolled.offset_msg_id, 8);
    let got = pull_all(&mut client, &addr, &q, "*");
    assert_eq!(got.len(), 1, "{got:?}");
    let m = &got[0];
    assert_eq!(&m.body[..], b"committed");
    assert_eq!(m.msg_id, sent.msg_id, "the UNIQ_KEY is kept");
    assert_eq!(m.properties.get("TAGS"), Some("T"));
    assert_eq!(m.sys_flag & 0xC, 8, "marked committed");
}
