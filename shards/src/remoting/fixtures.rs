//! Known answers: frames captured on loopback (tcpdump) between Apache RocketMQ's Java client
//! 5.5.0 and Petrel. Java's frames are decoded and checked field by field, and survive
//! decode → encode → decode; Petrel's own responses re-encode byte for byte.

use bytes::{Bytes, BytesMut};

use super::*;
use crate::record;

fn fixture(hex: &str) -> Bytes {
    let hex = hex.trim();
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    Bytes::from(bytes)
}

fn decode_fixture(hex: &str) -> RemotingCommand {
    let frame = fixture(hex);
    match decode(&frame, 1 << 24).unwrap() {
        Decoded::Command {
            command,
            frame_bytes,
        } => {
            assert_eq!(frame_bytes, frame.len());
            command
        }
        other => panic!("fixture does not decode: {other:?}"),
    }
}

fn survives_reencoding(cmd: &RemotingCommand) {
    let again = decode(&encode_to_bytes(cmd), 1 << 24).unwrap();
    assert!(matches!(again, Decoded::Command { command, .. } if command == *cmd));
}

#[test]
fn java_send_message_v2_decodes_field_by_field() {
    let cmd = decode_fixture(include_str!("fixtures/java_send_message_v2.hex"));
    assert_eq!(
        (cmd.code, cmd.version, cmd.flag),
        (request::SEND_MESSAGE_V2, 513, 0)
    );
    assert_eq!(cmd.language, LanguageCode::JAVA);
    let header =
        headers::SendMessageHeader::parse(&cmd.ext_fields, headers::SendHeaderNames::Short)
            .unwrap();
    assert_eq!(header.producer_group, "petrel_interop_producer");
    assert_eq!(
        (header.topic.as_str(), header.queue_id, header.sys_flag),
        ("CapT", 3, 0)
    );
    let props = record::decode_properties(&header.properties);
    assert_eq!(props.get("TAGS"), Some("TagA"));
    assert_eq!(props.get("KEYS"), Some("key-0"));
    assert_eq!(props.get("color"), Some("blue"));
    assert_eq!(
        cmd.field("n"),
        Some("broker-a-s0"),
        "5.x sends the target broker name"
    );
    assert_eq!(&cmd.body[..], b"body-0");
    survives_reencoding(&cmd);
}

#[test]
fn java_consumer_requests_decode() {
    let heartbeat = decode_fixture(include_str!("fixtures/java_heart_beat.hex"));
    assert_eq!(heartbeat.code, request::HEART_BEAT);
    let body: serde_json::Value = serde_json::from_slice(&heartbeat.body).unwrap();
    assert_eq!(body["consumerDataSet"][0]["groupName"], "CapG");
    assert_eq!(
        body["consumerDataSet"][0]["subscriptionDataSet"][1]["topic"],
        "%RETRY%CapG"
    );
    survives_reencoding(&heartbeat);

    let pull = decode_fixture(include_str!("fixtures/java_pull_message.hex"));
    let header = headers::PullMessageHeader::parse(&pull.ext_fields).unwrap();
    assert_eq!(
        (header.queue_id, header.sys_flag, header.max_msg_nums),
        (3, 2, 32)
    );
    assert_eq!(
        (header.suspend_timeout_millis, header.max_msg_bytes),
        (15000, Some(262144))
    );
    assert_eq!(
        header.subscription, None,
        "push consumers take the subscription from the heartbeat"
    );
    survives_reencoding(&pull);

    let commit = decode_fixture(include_str!(
        "fixtures/java_update_consumer_offset_oneway.hex"
    ));
    assert_eq!(commit.code, request::UPDATE_CONSUMER_OFFSET);
    assert!(commit.is_oneway());
    assert_eq!(commit.field("commitOffset"), Some("1"));
}

#[test]
fn petrel_responses_reencode_byte_for_byte() {
    for hex in [
        include_str!("fixtures/petrel_send_response.hex"),
        include_str!("fixtures/petrel_pull_response.hex"),
        include_str!("fixtures/petrel_route_response.hex"),
    ] {
        let frame = fixture(hex);
        let cmd = decode_fixture(hex);
        let mut out = BytesMut::new();
        encode(&cmd, SerializeType::Json, &mut out);
        assert_eq!(&out[..], &frame[..]);
    }
    let send = decode_fixture(include_str!("fixtures/petrel_send_response.hex"));
    for key in [
        "msgId",
        "queueId",
        "queueOffset",
        "transactionId",
        "MSG_REGION",
        "TRACE_ON",
    ] {
        assert!(send.field(key).is_some(), "send response lacks {key}");
    }
}

#[test]
fn the_pulled_record_is_rocketmq_v1_and_reencodes_byte_for_byte() {
    let pull = decode_fixture(include_str!("fixtures/petrel_pull_response.hex"));
    let view = record::decode(&pull.body).unwrap();
    assert_eq!(view.total_size, pull.body.len());
    assert_eq!(view.magic, record::MAGIC_V1);
    assert_eq!(
        (view.topic, view.body, view.queue_id, view.queue_offset),
        ("CapT", &b"body-0"[..], 3, 0)
    );
    assert_eq!(view.body_crc, record::body_crc(b"body-0"));
    let msg = record::MessageToStore {
        topic: view.topic,
        queue_id: view.queue_id,
        flag: view.flag,
        sys_flag: view.sys_flag,
        born_timestamp: view.born_timestamp,
        born_host: view.born_host,
        store_timestamp: view.store_timestamp,
        store_host: view.store_host,
        reconsume_times: view.reconsume_times,
        prepared_transaction_offset: view.prepared_transaction_offset,
        body: view.body,
        properties: view.properties,
    };
    let mut out = Vec::new();
    record::encode(&msg, view.queue_offset, view.physical_offset, &mut out);
    assert_eq!(out, pull.body.to_vec());
}
