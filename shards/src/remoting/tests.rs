//! Codec tests: known answers, client quirks, property tests for round trips and for decoding
//! arbitrary bytes without panicking.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;

use super::*;

fn frame_of(serialize: u8, header: &[u8], body: &[u8]) -> Bytes {
    let mut out = Vec::new();
    out.extend_from_slice(&((4 + header.len() + body.len()) as u32).to_be_bytes());
    out.extend_from_slice(&(((serialize as u32) << 24) | header.len() as u32).to_be_bytes());
    out.extend_from_slice(header);
    out.extend_from_slice(body);
    Bytes::from(out)
}

fn decode_one(buf: &Bytes) -> RemotingCommand {
    match decode(buf, 1 << 24).expect("delimited") {
        Decoded::Command {
            command,
            frame_bytes,
        } => {
            assert_eq!(frame_bytes, buf.len());
            command
        }
        other => panic!("expected a command, got {other:?}"),
    }
}

#[test]
fn decodes_java_send_message_v2_json_header() {
    let header = br#"{"code":310,"extFields":{"a":"PG","b":"T","e":"3"},"flag":0,"language":"JAVA","opaque":42,"serializeTypeCurrentRPC":"JSON","version":479}"#;
    let cmd = decode_one(&frame_of(0, header, b"hello"));
    assert_eq!(cmd.code, request::SEND_MESSAGE_V2);
    assert_eq!(cmd.language, LanguageCode::JAVA);
    assert_eq!(cmd.opaque, 42);
    assert_eq!(cmd.version, 479);
    assert_eq!(cmd.field("b"), Some("T"));
    assert_eq!(cmd.field("e"), Some("3"));
    assert_eq!(&cmd.body[..], b"hello");
}

#[test]
fn decodes_cpp_numeric_and_boolean_ext_values_as_text() {
    let header = br#"{"code":11,"language":"CPP","version":333,"opaque":7,"flag":0,"remark":"","extFields":{"queueId":0,"maxMsgNums":32,"unitMode":false,"topic":"T"}}"#;
    let cmd = decode_one(&frame_of(0, header, b""));
    assert_eq!(cmd.field("queueId"), Some("0"));
    assert_eq!(cmd.field("maxMsgNums"), Some("32"));
    assert_eq!(cmd.field("unitMode"), Some("false"));
    assert_eq!(cmd.remark.as_deref(), Some(""));
}

#[test]
fn tolerates_missing_flag_version_and_string_numbers() {
    let header = br#"{"code":"34","opaque":"9","language":"GO"}"#;
    let cmd = decode_one(&frame_of(0, header, b""));
    assert_eq!((cmd.code, cmd.opaque, cmd.flag, cmd.version), (34, 9, 0, 0));
    assert_eq!(cmd.language.name(), "GO");
}

#[test]
fn reads_odd_but_valid_headers_the_lenient_way() {
    let header = br#"{"code":10,"language":12,"opaque":1,"remark":42,"unknown":{"x":[1]},"extFields":{"a":null,"b":1.5,"c":[1,"x"],"d":{"k":true},"e":"1","e":"2"},"flag":null}"#;
    let cmd = decode_one(&frame_of(0, header, b""));
    assert_eq!(cmd.language.name(), "RUST");
    assert_eq!(cmd.remark.as_deref(), Some("42"));
    assert_eq!(cmd.flag, 0);
    assert_eq!(cmd.field("a"), None);
    assert_eq!(cmd.field("b"), Some("1.5"));
    assert_eq!(cmd.field("c"), Some(r#"[1,"x"]"#));
    assert_eq!(cmd.field("d"), Some(r#"{"k":true}"#));
    assert_eq!(cmd.field("e"), Some("2"), "the last of two equal keys wins");
    let no_ext = decode_one(&frame_of(0, br#"{"code":1,"extFields":null}"#, b""));
    assert!(no_ext.ext_fields.is_empty());
    for bad in [
        &br#"{"code":1,"extFields":"x"}"#[..],
        br#"{"code":"one"}"#,
        br#"{"code":4294967296}"#,
        br#"[1,2]"#,
        br#"{"code":1} trailing"#,
    ] {
        let frame = frame_of(0, bad, b"");
        assert!(
            matches!(decode(&frame, 1 << 20), Ok(Decoded::Malformed { .. })),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
}

#[test]
fn encodes_compact_json_with_string_ext_values() {
    let cmd = RemotingCommand::response(response::SUCCESS, 5)
        .with_field("queueId", 3)
        .with_field("MSG_REGION", "DefaultRegion");
    let bytes = encode_to_bytes(&cmd);
    let header_len = (u32::from_be_bytes(bytes[4..8].try_into().unwrap()) & 0xFF_FFFF) as usize;
    let header = std::str::from_utf8(&bytes[8..8 + header_len]).unwrap();
    assert_eq!(
        header,
        r#"{"code":0,"extFields":{"queueId":"3","MSG_REGION":"DefaultRegion"},"flag":1,"language":"JAVA","opaque":5,"serializeTypeCurrentRPC":"JSON","version":479}"#
    );
}

#[test]
fn binary_header_known_answer() {
    // code 105, JAVA, version 401, opaque 1, flag 0, no remark, extFields {topic: T}.
    let mut header = vec![
        0x00, 0x69, 0x00, 0x01, 0x91, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    let ext: Vec<u8> = [&[0u8, 5][..], b"topic", &[0, 0, 0, 1], b"T"].concat();
    header.extend_from_slice(&(ext.len() as u32).to_be_bytes());
    header.extend_from_slice(&ext);
    let frame = frame_of(1, &header, b"");
    let cmd = decode_one(&frame);
    assert_eq!((cmd.code, cmd.version, cmd.opaque), (105, 401, 1));
    assert_eq!(cmd.field("topic"), Some("T"));
    let mut again = BytesMut::new();
    encode(&cmd, SerializeType::RocketMq, &mut again);
    assert_eq!(&again[..], &frame[..]);
}

#[test]
fn oversized_and_undersized_lengths_cannot_be_delimited() {
    let huge = Bytes::from_static(&[0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0]);
    assert!(matches!(
        decode(&huge, 1 << 24),
        Err(FrameError::TooLarge { .. })
    ));
    let tiny = Bytes::from_static(&[0, 0, 0, 2, 0, 0]);
    assert!(matches!(
        decode(&tiny, 1 << 24),
        Err(FrameError::TooShort { declared: 2 })
    ));
}

#[test]
fn delimited_garbage_is_malformed_not_fatal() {
    let cases: Vec<Bytes> = vec![
        frame_of(0, b"{not json", b""),
        frame_of(0, b"[1,2]", b""),
        frame_of(7, b"{}", b""),
        frame_of(1, &[0, 1], b""),
        // header length larger than the frame
        Bytes::from_static(&[0, 0, 0, 8, 0, 0, 0, 200, 1, 2, 3, 4]),
    ];
    for case in cases {
        match decode(&case, 1 << 24).expect("delimited") {
            Decoded::Malformed { frame_bytes, .. } => assert_eq!(frame_bytes, case.len()),
            other => panic!("expected malformed, got {other:?}"),
        }
    }
}

#[test]
fn http_request_line_is_rejected_by_length() {
    // "GET " read as a length is 1 195 725 856 bytes: over any sane limit.
    let http = Bytes::from_static(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(matches!(
        decode(&http, 16 << 20),
        Err(FrameError::TooLarge { .. })
    ));
}

#[test]
fn incomplete_frames_ask_for_more() {
    let full = encode_to_bytes(&RemotingCommand::response(0, 1));
    for cut in 0..full.len() {
        let part = full.slice(..cut);
        assert!(matches!(
            decode(&part, 1 << 24).unwrap(),
            Decoded::Incomplete { .. }
        ));
    }
}

fn arb_command() -> impl Strategy<Value = RemotingCommand> {
    (
        any::<i16>(),
        0u8..14,
        any::<i16>(),
        any::<i32>(),
        0i32..4,
        proptest::option::of("[ -~]{1,20}"),
        proptest::collection::vec(("[a-zA-Z]{1,8}", "[ -~]{1,16}"), 0..6),
        proptest::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(
            |(code, lang, version, opaque, flag, remark, ext, body)| RemotingCommand {
                code: code as i32,
                language: LanguageCode(lang),
                version: version as i32,
                opaque,
                flag,
                remark,
                ext_fields: ext.into_iter().collect(),
                body: Bytes::from(body),
            },
        )
}

proptest! {
    #[test]
    fn json_round_trip(cmd in arb_command()) {
        let mut out = BytesMut::new();
        encode(&cmd, SerializeType::Json, &mut out);
        prop_assert_eq!(decode_one(&out.freeze()), cmd);
    }

    #[test]
    fn binary_round_trip(cmd in arb_command()) {
        let mut out = BytesMut::new();
        encode(&cmd, SerializeType::RocketMq, &mut out);
        prop_assert_eq!(decode_one(&out.freeze()), cmd);
    }

    #[test]
    fn decode_never_panics(data in proptest::collection::vec(any::<u8>(), 0..256)) {
        frame::fuzz_remoting_frame(&data);
    }

    #[test]
    fn decode_never_panics_on_valid_prefixes(cmd in arb_command(), cut in 0usize..512, flip in any::<(usize, u8)>()) {
        let mut out = BytesMut::new();
        encode(&cmd, SerializeType::RocketMq, &mut out);
        let mut bytes = out.to_vec();
        if !bytes.is_empty() {
            let i = flip.0 % bytes.len();
            bytes[i] ^= flip.1;
        }
        bytes.truncate(cut.min(bytes.len()));
        frame::fuzz_remoting_frame(&bytes);
    }
}
