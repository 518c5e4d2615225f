use super::address::AddressPattern;
use super::signature::{sign, sign_request, verify};
use super::*;
use crate::remoting::RemotingCommand;

const FILE: &str = r#"
globalWhiteRemoteAddresses:
  - 10.10.103.*
  - 192.168.0.{1,2}
accounts:
  - accessKey: RocketMQ
    secretKey: 12345678
    whiteRemoteAddress:
    admin: false
    defaultTopicPerm: DENY
    defaultGroupPerm: SUB
    topicPerms:
      - topicA=DENY
      - topicB=PUB|SUB
      - topicC=SUB
    groupPerms:
      - groupA=DENY
      - groupB=PUB|SUB
  - accessKey: rocketmq2
    secretKey: "12345678"
    whiteRemoteAddress: 192.168.1.*
    admin: true
  - accessKey: office
    secretKey: office-secret
    whiteRemoteAddress: 172.16.0.*
dataVersion:
  - counter: 1
    timestamp: 1600000000000
"#;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn request(code: i32, fields: &[(&str, &str)], body: &'static [u8]) -> RemotingCommand {
    RemotingCommand::request(
        code,
        fields.iter().copied().collect(),
        bytes::Bytes::from_static(body),
    )
}

fn signed(mut cmd: RemotingCommand, ak: &str, sk: &str) -> RemotingCommand {
    sign_request(&mut cmd, ak, sk, None);
    cmd
}

#[test]
fn the_signature_is_hmac_sha1_over_sorted_values_then_the_body() {
    // Keys sort as AccessKey < a < b, so the signed bytes are the values in that order and
    // then the body: "RocketMQa-valueb-valuebody", under HmacSHA1 with key 12345678.
    let cmd = request(
        request::SEND_MESSAGE_V2,
        &[("b", "b-value"), ("a", "a-value")],
        b"body",
    );
    let cmd = signed(cmd, "RocketMQ", "12345678");
    use hmac::{Hmac, KeyInit, Mac};
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(b"12345678").unwrap();
    mac.update(b"RocketMQa-valueb-valuebody");
    use base64::Engine;
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    assert_eq!(cmd.ext_fields.get("Signature"), Some(expected.as_str()));
    assert!(verify(&cmd, "12345678"));
    assert!(!verify(&cmd, "1234567"));
    assert_eq!(
        sign(&cmd, "12345678"),
        expected,
        "Signature itself is not signed"
    );
}

#[test]
fn any_changed_field_or_body_byte_breaks_the_signature() {
    let cmd = signed(
        request(
            request::PULL_MESSAGE,
            &[("topic", "t"), ("queueId", "1")],
            b"",
        ),
        "RocketMQ",
        "12345678",
    );
    let mut changed = cmd.clone();
    changed.ext_fields.insert("queueId", "2");
    assert!(!verify(&changed, "12345678"));
    let mut added = cmd.clone();
    added.ext_fields.insert("extra", "x");
    assert!(!verify(&added, "12345678"));
    let mut body = cmd.clone();
    body.body = bytes::Bytes::from_static(b"x");
    assert!(!verify(&body, "12345678"));
    let mut garbage = cmd;
    garbage.ext_fields.insert("Signature", "not base64 !!");
    assert!(!verify(&garbage, "12345678"));
}

#[test]
fn old_admin_tools_unique_key_flag_is_left_out_only_for_old_versions() {
    let mut cmd = signed(
        request(request::QUERY_MESSAGE, &[("topic", "t")], b""),
        "RocketMQ",
        "12345678",
    );
    cmd.ext_fields.insert("_UNIQUE_KEY_QUERY", "true");
    cmd.version = 399;
    assert!(verify(&cmd, "12345678"));
    cmd.version = 400;
    assert!(!verify(&cmd, "12345678"));
}

#[test]
fn the_file_parses_with_numbers_as_keys_and_rights() {
    let acl = Acl::parse(FILE).unwrap();
    assert_eq!(acl.accounts(), 3);
    let debug = format!("{acl:?}");
    assert!(!debug.contains("12345678"), "no secret in {debug}");
    let bad = FILE.replace("topicC=SUB", "topicC=WRITE");
    let err = Acl::parse(&bad).unwrap_err();
    assert!(err.contains("topicPerms") && err.contains("WRITE"), "{err}");
    let unknown = FILE.replace("admin: true", "admn: true");
    assert!(Acl::parse(&unknown).unwrap_err().contains("admn"));
    let twice = FILE.replace("rocketmq2", "RocketMQ");
    assert!(Acl::parse(&twice).unwrap_err().contains("twice"));
}

#[test]
fn rights_are_checked_per_topic_and_group_with_defaults() {
    let acl = Acl::parse(FILE).unwrap();
    let peer = ip("127.0.0.1");
    let send = |topic: &str| {
        signed(
            request(request::SEND_MESSAGE_V2, &[("a", "pg"), ("b", topic)], b"m"),
            "RocketMQ",
            "12345678",
        )
    };
    assert!(acl.check(peer, &send("topicB")).is_ok());
    let refused = acl.check(peer, &send("topicC")).unwrap_err();
    assert!(
        refused.contains("PUB") && refused.contains("topicC"),
        "{refused}"
    );
    assert!(acl.check(peer, &send("topicA")).is_err());
    assert!(acl.check(peer, &send("unlisted")).is_err(), "default DENY");
    assert!(
        acl.check(peer, &send("RMQ_SYS_TRACE_TOPIC")).is_ok(),
        "traces"
    );
    // A retry topic is its group: the default group right SUB lets a consumer send back.
    assert!(acl.check(peer, &send("%RETRY%groupC")).is_ok());
    assert!(acl.check(peer, &send("%RETRY%groupA")).is_err());

    let pull = |topic: &str, group: &str| {
        signed(
            request(
                request::PULL_MESSAGE,
                &[("topic", topic), ("consumerGroup", group)],
                b"",
            ),
            "RocketMQ",
            "12345678",
        )
    };
    assert!(acl.check(peer, &pull("topicC", "groupB")).is_ok());
    assert!(acl.check(peer, &pull("topicC", "groupA")).is_err());
    assert!(acl.check(peer, &pull("topicA", "groupB")).is_err());
    // Only an admin creates topics.
    let create = signed(
        request(request::UPDATE_AND_CREATE_TOPIC, &[("topic", "x")], b""),
        "RocketMQ",
        "12345678",
    );
    assert!(acl.check(peer, &create).unwrap_err().contains("admin"));
    let admin = signed(
        request(request::UPDATE_AND_CREATE_TOPIC, &[("topic", "x")], b""),
        "rocketmq2",
        "12345678",
    );
    assert!(acl.check(peer, &admin).is_ok());
}

#[test]
fn heartbeats_need_sub_on_every_group_and_subscribed_topic() {
    let acl = Acl::parse(FILE).unwrap();
    let beat = |body: &'static [u8]| {
        signed(
            request(request::HEART_BEAT, &[], body),
            "RocketMQ",
            "12345678",
        )
    };
    let ok = br#"{"clientID":"c","producerDataSet":[],"consumerDataSet":[{"groupName":"groupB","subscriptionDataSet":[{"topic":"topicC"},{"topic":"%RETRY%groupB"}]}]}"#;
    assert!(acl.check(ip("127.0.0.1"), &beat(ok)).is_ok());
    let denied = br#"{"clientID":"c","consumerDataSet":[{"groupName":"groupB","subscriptionDataSet":[{"topic":"topicA"}]}]}"#;
    assert!(acl.check(ip("127.0.0.1"), &beat(denied)).is_err());
    assert!(acl.check(ip("127.0.0.1"), &beat(b"{not json")).is_err());
}

#[test]
fn authentication_refusals_name_what_was_wrong() {
    let acl = Acl::parse(FILE).unwrap();
    let peer = ip("127.0.0.1");
    let bare = request(request::GET_MAX_OFFSET, &[("topic", "t")], b"");
    assert_eq!(
        acl.check(peer, &bare).unwrap_err(),
        "No accessKey is configured"
    );
    let stranger = signed(bare.clone(), "nobody", "x");
    assert_eq!(
        acl.check(peer, &stranger).unwrap_err(),
        "No acl config for nobody"
    );
    let wrong = signed(bare.clone(), "RocketMQ", "wrong");
    assert_eq!(
        acl.check(peer, &wrong).unwrap_err(),
        "Check signature failed for accessKey=RocketMQ"
    );
    // White lists: global ones skip everything, an account's skips the signature.
    assert!(acl.check(ip("10.10.103.7"), &bare).is_ok());
    assert!(acl.check(ip("192.168.0.2"), &bare).is_ok());
    assert!(acl.check(ip("192.168.0.3"), &bare).is_err());
    assert!(acl.check(ip("::ffff:10.10.103.9"), &bare).is_ok());
    let unsigned_admin = {
        let mut cmd = bare;
        cmd.ext_fields.insert("AccessKey", "rocketmq2");
        cmd
    };
    assert!(acl.check(ip("192.168.1.20"), &unsigned_admin).is_ok());
    assert!(acl.check(peer, &unsigned_admin).is_err());
}

#[test]
fn address_patterns() {
    let m = |pattern: &str, addr: &str| AddressPattern::parse(pattern).unwrap().matches(ip(addr));
    assert!(m("*", "1.2.3.4"));
    assert!(m("*.*.*.*", "1.2.3.4"));
    assert!(m("1.2.3.4", "1.2.3.4"));
    assert!(!m("1.2.3.4", "1.2.3.5"));
    assert!(m("1.2.3.4,1.2.3.5", "1.2.3.5"));
    assert!(m("192.168.*", "192.168.9.9"));
    assert!(!m("192.168.*", "192.169.9.9"));
    assert!(m("192.168.1.1-100", "192.168.1.100"));
    assert!(!m("192.168.1.1-100", "192.168.1.101"));
    assert!(m("192.168.1.{1,2,3}", "192.168.1.3"));
    assert!(!m("192.168.1.{1,2,3}", "192.168.1.4"));
    assert!(m("10.{1,2}.*.5, 7.7.7.7", "10.2.200.5"));
    assert!(m("::1", "::1"));
    assert!(!m("", "1.2.3.4"), "an empty pattern matches nothing");
    for bad in [
        "1.2.3",
        "1.2.3.256",
        "a.b.c.d",
        "1.2.3.{}",
        "1.2.3.9-1",
        "1.2.3.4.5",
    ] {
        let err = AddressPattern::parse(bad).unwrap_err();
        assert!(err.contains(bad), "{err}");
    }
}

#[test]
fn an_accounts_white_address_allows_the_whole_request() {
    let acl = Acl::parse(FILE).unwrap();
    let mut create = request(request::UPDATE_AND_CREATE_TOPIC, &[("topic", "x")], b"");
    create.ext_fields.insert("AccessKey", "office");
    assert!(acl.check(ip("172.16.0.9"), &create).is_ok());
    assert!(acl.check_admin(ip("172.16.0.9"), &create).is_ok());
    let err = acl.check(ip("172.16.1.9"), &create).unwrap_err();
    assert!(err.contains("Check signature failed"), "{err}");
    let signed = signed(create, "office", "office-secret");
    assert!(acl
        .check(ip("172.16.1.9"), &signed)
        .unwrap_err()
        .contains("admin"));
    assert!(acl
        .check_admin(ip("172.16.1.9"), &signed)
        .unwrap_err()
        .contains("admin"));
}

#[test]
fn a_producer_unregisters_without_a_group() {
    let acl = Acl::parse(FILE).unwrap();
    let producer = signed(
        request(
            request::UNREGISTER_CLIENT,
            &[("clientID", "c"), ("producerGroup", "p")],
            b"",
        ),
        "RocketMQ",
        "12345678",
    );
    assert!(acl.check(ip("127.0.0.1"), &producer).is_ok());
    let consumer = signed(
        request(
            request::UNREGISTER_CLIENT,
            &[("clientID", "c"), ("consumerGroup", "groupA")],
            b"",
        ),
        "RocketMQ",
        "12345678",
    );
    assert!(
        acl.check(ip("127.0.0.1"), &consumer).is_err(),
        "groupA=DENY"
    );
}
