use std::net::SocketAddr;

use proptest::prelude::*;

use super::*;

fn sample<'a>(body: &'a [u8], props: &'a str) -> MessageToStore<'a> {
    MessageToStore {
        topic: "TopicTest",
        queue_id: 3,
        flag: 7,
        sys_flag: 0,
        born_timestamp: 1_718_000_000_000,
        born_host: "10.0.0.5:54321".parse().unwrap(),
        store_timestamp: 1_718_000_000_123,
        store_host: "192.168.0.10:10911".parse().unwrap(),
        reconsume_times: 0,
        prepared_transaction_offset: 0,
        body,
        properties: props,
    }
}

#[test]
fn tag_hash_matches_java() {
    assert_eq!(tags_code("TagA"), 2598919);
    assert_eq!(tags_code("*"), 42);
    assert_eq!(tags_code(""), 0);
}

#[test]
fn offset_msg_id_matches_spec_example() {
    let host: SocketAddr = "192.168.0.10:10911".parse().unwrap();
    let id = offset_msg_id(host, 0x1234);
    assert_eq!(id, "C0A8000A00002A9F0000000000001234");
    assert_eq!(decode_offset_msg_id(&id), Some((host, 0x1234)));
    assert_eq!(decode_offset_msg_id("zz"), None);
}

#[test]
fn record_layout_has_fields_at_spec_offsets() {
    let mut out = Vec::new();
    let size = encode(&sample(b"hello", "TAGS\u{1}A\u{2}"), 9, 4096, &mut out);
    assert_eq!(size, 91 + 5 + 9 + 7);
    assert_eq!(&out[0..4], &(size as i32).to_be_bytes());
    assert_eq!(&out[4..8], &MAGIC_V1.to_be_bytes());
    assert_eq!(&out[8..12], &body_crc(b"hello").to_be_bytes());
    assert_eq!(&out[20..28], &9i64.to_be_bytes());
    assert_eq!(&out[28..36], &4096i64.to_be_bytes());
    assert_eq!(&out[48..52], &[10, 0, 0, 5]);
    assert_eq!(&out[64..68], &[192, 168, 0, 10]);
    assert_eq!(&out[84..88], &5i32.to_be_bytes());
}

#[test]
fn properties_round_trip_and_tolerate_missing_terminator() {
    let props =
        decode_properties("TAGS\u{1}A\u{2}KEYS\u{1}k1 k2\u{2}EMPTY\u{1}\u{2}UNIQ_KEY\u{1}X");
    assert_eq!(props.get("TAGS"), Some("A"));
    assert_eq!(props.get("KEYS"), Some("k1 k2"));
    assert_eq!(props.get("EMPTY"), None);
    assert_eq!(props.get("UNIQ_KEY"), Some("X"));
    assert_eq!(decode_properties(&encode_properties(&props)), props);
    assert_eq!(find_property("TAGS\u{1}A\u{2}", "TAGS"), Some("A"));
}

#[test]
fn batch_items_decode_and_reject_bad_lengths() {
    let mut body = Vec::new();
    encode_batch_item(1, b"one", "TAGS\u{1}a\u{2}", &mut body);
    encode_batch_item(2, b"two!", "", &mut body);
    let items: Vec<_> = BatchIter::new(&body).collect::<Result<_, _>>().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(
        items[1],
        BatchItem {
            flag: 2,
            body: b"two!",
            properties: ""
        }
    );
    let mut broken = body.clone();
    broken[19] = 0xFF; // first body length now overruns
    assert!(BatchIter::new(&broken).any(|item| item.is_err()));
}

proptest! {
    #[test]
    fn record_round_trip(body in proptest::collection::vec(any::<u8>(), 0..300), props in "[a-zA-Z0-9 ]{0,40}", qo in any::<i64>(), po in any::<i64>(), v6 in any::<bool>()) {
        let mut msg = sample(&body, &props);
        if v6 {
            msg.born_host = "[2001:db8::1]:9".parse().unwrap();
        }
        let mut out = Vec::new();
        let size = encode(&msg, qo, po, &mut out);
        let view = decode(&out).unwrap();
        prop_assert_eq!(view.total_size, size);
        prop_assert_eq!(view.body, &body[..]);
        prop_assert_eq!(view.properties, &props[..]);
        prop_assert_eq!(view.topic, "TopicTest");
        prop_assert_eq!(view.queue_offset, qo);
        prop_assert_eq!(view.physical_offset, po);
        prop_assert_eq!(view.born_host, msg.born_host);
    }

    #[test]
    fn decode_never_panics(data in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = decode(&data);
        let _ = BatchIter::new(&data).count();
    }
}
