//! Bad input on a broker port (F35): a catalogue of malformed frames, HTTP and telnet text,
//! sent while an honest client keeps producing. Delimited garbage gets an error response and
//! the connection stays usable; undelimitable garbage closes that connection only. The honest
//! client never sees an error.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::Petrel;
use petrel::client::{Client, Connection, Message, MessageQueue};
use petrel_shards::broker::metadata::TopicConfig;
use petrel_shards::remoting::{request, ExtFields, RemotingCommand};

fn frame(serialize: u8, header: &[u8], body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&((4 + header.len() + body.len()) as u32).to_be_bytes());
    out.extend_from_slice(&(((serialize as u32) << 24) | header.len() as u32).to_be_bytes());
    out.extend_from_slice(header);
    out.extend_from_slice(body);
    out
}

/// Sends `bytes` on a fresh connection and says whether the broker closed it.
fn closes_connection(addr: &str, bytes: &[u8]) -> bool {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(bytes).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

#[test]
fn malformed_frames_are_answered_or_closed_without_disturbing_other_clients() {
    let dir = tempfile::tempdir().unwrap();
    let petrel = Petrel::start("standalone", dir.path(), &["frameMaxLength=1048576"]);
    let mut client = Client::new(&petrel.namesrv());
    client
        .create_topic(&petrel.front_door(), &TopicConfig::new("TH", 1, 6))
        .unwrap();
    let (broker, addr) = petrel.brokers()[0].clone();

    let stop = Arc::new(AtomicBool::new(false));
    let honest = {
        let (ns, addr, broker, stop) =
            (petrel.namesrv(), addr.clone(), broker.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut client = Client::new(&ns);
            let q = MessageQueue {
                topic: "TH".into(),
                broker_name: broker,
                queue_id: 0,
            };
            let mut sent = 0u32;
            while !stop.load(Ordering::Relaxed) || sent < 100 {
                client
                    .send_to(
                        &addr,
                        &q,
                        &Message::new(Bytes::from(format!("m{sent}")), Default::default()),
                    )
                    .expect("the honest client never sees an error");
                sent += 1;
            }
            sent
        })
    };

    // Undelimitable: the connection is closed.
    let undelimitable: Vec<(&str, Vec<u8>)> = vec![
        (
            "HTTP request",
            b"GET / HTTP/1.1\r\nHost: petrel\r\n\r\n".to_vec(),
        ),
        ("telnet text", b"hello broker\r\n".to_vec()),
        (
            "length over frameMaxLength",
            [&(2u32 << 20).to_be_bytes()[..], &[0; 16]].concat(),
        ),
        (
            "length 0xFFFFFFFF",
            vec![0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0],
        ),
        ("length below 4", vec![0, 0, 0, 2, 0, 0]),
    ];
    for (name, bytes) in &undelimitable {
        assert!(
            closes_connection(&addr, bytes),
            "{name}: connection should be closed"
        );
    }

    // Delimited but malformed: answered with an error, and the connection keeps working.
    let malformed: Vec<(&str, Vec<u8>)> = vec![
        ("invalid JSON", frame(0, b"{\"code\":", b"")),
        ("JSON array header", frame(0, b"[1,2,3]", b"")),
        ("unknown serialize type", frame(9, b"{}", b"")),
        ("binary header cut short", frame(1, &[0, 10, 0], b"")),
        ("binary remark length overruns", frame(1, &[0, 10, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0x7F, 0xFF, 0xFF, 0xFF], b"")),
        ("header length beyond frame", vec![0, 0, 0, 8, 0, 0, 0, 200, 1, 2, 3, 4]),
        ("extFields not an object", frame(0, br#"{"code":10,"opaque":1,"extFields":7}"#, b"")),
        ("send without required fields", frame(0, br#"{"code":310,"opaque":1,"extFields":{"b":"TH"}}"#, b"x")),
        ("pull with a non-numeric queue", frame(0, br#"{"code":11,"opaque":1,"extFields":{"consumerGroup":"G","topic":"TH","queueId":"zero","queueOffset":"0","maxMsgNums":"1","sysFlag":"0"}}"#, b"")),
        ("heartbeat with a broken body", frame(0, br#"{"code":34,"opaque":1}"#, b"{not json")),
    ];
    for (name, bytes) in &malformed {
        let mut conn = Connection::connect(&addr, Duration::from_secs(10)).unwrap();
        conn.send_raw(bytes).unwrap();
        let reply = conn
            .receive()
            .unwrap_or_else(|e| panic!("{name}: no error response: {e}"));
        assert_ne!(reply.code, 0, "{name}: answered with success");
        // The same connection still serves a valid request.
        let mut ext = ExtFields::new();
        ext.insert("topic", "TH");
        ext.insert("queueId", "0");
        let ok = conn
            .call(RemotingCommand::request(
                request::GET_MIN_OFFSET,
                ext,
                Bytes::new(),
            ))
            .unwrap();
        assert_eq!(ok.code, 0, "{name}: connection unusable afterwards");
    }

    stop.store(true, Ordering::Relaxed);
    let sent = honest.join().expect("honest producer saw no error");
    assert!(sent >= 100);
}

#[test]
fn a_client_that_never_reads_is_held_back_and_others_are_served() {
    // Method: flood one connection with requests without reading a single answer. The broker
    // must stop reading from it (its queue of answers is bounded), so the flooder's writes
    // eventually block; meanwhile another client is served normally.
    let dir = tempfile::tempdir().unwrap();
    let petrel = Petrel::start("standalone", dir.path(), &[]);
    let (_, addr) = petrel.brokers()[0].clone();
    let mut ext = ExtFields::new();
    ext.insert("topic", "TBW102");
    ext.insert("queueId", "0");
    let request = petrel_shards::remoting::encode_to_bytes(&RemotingCommand::request(
        request::GET_MIN_OFFSET,
        ext.clone(),
        Bytes::new(),
    ));
    let mut flood = TcpStream::connect(&addr).unwrap();
    flood
        .set_write_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let mut sent = 0u64;
    let blocked = loop {
        match flood.write_all(&request) {
            Ok(()) => sent += 1,
            Err(_) => break true,
        }
        if sent >= 2_000_000 {
            break false;
        }
    };
    assert!(
        blocked,
        "the broker kept reading {sent} requests from a client that reads nothing"
    );
    let mut honest = Connection::connect(&addr, Duration::from_secs(10)).unwrap();
    let reply = honest
        .call(RemotingCommand::request(
            request::GET_MIN_OFFSET,
            ext,
            Bytes::new(),
        ))
        .unwrap();
    assert_eq!(reply.code, 0);
}

/// Waits until the broker closes `s`, and says how long that took.
fn time_to_close(s: &mut TcpStream, started: std::time::Instant) -> Duration {
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return started.elapsed(),
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return started.elapsed(),
            Err(e) => panic!("the connection was not closed within 20 s: {e}"),
        }
    }
}

#[test]
fn stalled_frames_and_idle_connections_are_closed_and_active_ones_are_not() {
    use std::time::Instant;
    let dir = tempfile::tempdir().unwrap();
    let petrel = Petrel::start(
        "standalone",
        dir.path(),
        &[
            "frameReadTimeoutMillis=600",
            "serverChannelMaxIdleTimeSeconds=3",
        ],
    );
    let (_, addr) = petrel.brokers()[0].clone();
    // Each watched connection gets a thread that reads until the server closes it.
    let watch = |mut s: TcpStream| {
        let started = Instant::now();
        std::thread::spawn(move || time_to_close(&mut s, started))
    };

    // A frame announced as 100 KiB, 10 bytes of it sent, then nothing.
    let mut stalled = TcpStream::connect(&addr).unwrap();
    stalled.write_all(&(100u32 << 10).to_be_bytes()).unwrap();
    stalled.write_all(&[0; 10]).unwrap();
    let stalled = watch(stalled);
    // One byte every 200 ms: trickling does not extend the frame's deadline.
    let mut trickle = TcpStream::connect(&addr).unwrap();
    trickle.write_all(&(100u32 << 10).to_be_bytes()).unwrap();
    let trickled = watch(trickle.try_clone().unwrap());
    std::thread::spawn(move || {
        for _ in 0..50 {
            if trickle.write_all(&[0]).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    // Connected and silent, on the broker and on the name server.
    let idle = watch(TcpStream::connect(&addr).unwrap());
    let idle_ns = watch(TcpStream::connect(petrel.namesrv()).unwrap());

    // An active connection, one request a second for longer than the idle timeout.
    let mut active = Connection::connect(&addr, Duration::from_secs(10)).unwrap();
    let mut ext = ExtFields::new();
    ext.insert("topic", "TBW102");
    ext.insert("queueId", "0");
    for _ in 0..5 {
        let reply = active
            .call(RemotingCommand::request(
                request::GET_MIN_OFFSET,
                ext.clone(),
                Bytes::new(),
            ))
            .expect("an active connection stays open");
        assert_eq!(reply.code, 0);
        std::thread::sleep(Duration::from_secs(1));
    }

    let t = stalled.join().unwrap();
    assert!(
        (Duration::from_millis(550)..Duration::from_millis(2500)).contains(&t),
        "a stalled frame's connection closed after {t:?}"
    );
    let t = trickled.join().unwrap();
    assert!(
        (Duration::from_millis(550)..Duration::from_millis(2500)).contains(&t),
        "a trickled frame's connection closed after {t:?}"
    );
    for (name, idle) in [("broker", idle), ("name server", idle_ns)] {
        let t = idle.join().unwrap();
        assert!(
            (Duration::from_millis(2900)..Duration::from_secs(8)).contains(&t),
            "idle {name} connection closed after {t:?}"
        );
    }
}
