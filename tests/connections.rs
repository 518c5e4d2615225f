//! Connection hygiene (F35): thousands of idle connections, some of which carried a load of
//! 16 KiB sends first, cost the broker at most 16 KiB each once idle; an honest client is
//! still answered quickly; connections past `clientConnectionsMax` are closed at once.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{create_topic, eventually, queue, rss_kib, Petrel};
use petrel::client::pipeline::{FrameReader, SendTemplate};
use petrel::client::{properties, Client, Message};
use petrel_shards::remoting::response;

const LOADED: usize = 300;
const IDLE: usize = 2400;
const CAP: usize = 3000;

#[test]
fn idle_connections_stay_small_after_a_load_and_the_cap_closes_the_excess() {
    let dir = tempfile::tempdir().unwrap();
    let cap = format!("clientConnectionsMax={CAP}");
    let petrel = Petrel::start("standalone", dir.path(), &[cap.as_str()]);
    let mut client = Client::new(&petrel.namesrv());
    create_topic(&mut client, &petrel, "Idle", 1);
    let (name, addr) = petrel.brokers()[0].clone();
    let q = queue("Idle", &name, 0);
    let send = |client: &mut Client| {
        let msg = Message::new("honest", properties(None, None, &[]));
        let started = Instant::now();
        let r = client.send_to(&addr, &q, &msg).unwrap();
        assert_eq!(r.code, response::SUCCESS);
        started.elapsed()
    };
    send(&mut client);
    std::thread::sleep(Duration::from_millis(500));
    let base = rss_kib(petrel.pid());

    // A load on some connections: pipelined 16 KiB sends fill their buffers.
    let body = vec![b'l'; 16 << 10];
    let mut loaded = Vec::new();
    for i in 0..LOADED {
        let stream = TcpStream::connect(&addr).unwrap();
        let mut writer = stream.try_clone().unwrap();
        let mut template = SendTemplate::new("G_idle", "Idle", 0, false, i as u64);
        let mut out = Vec::new();
        for seq in 0..8u64 {
            template.encode(&mut out, seq as i32, 0, seq, 1, &body);
        }
        writer.write_all(&out).unwrap();
        loaded.push((writer, FrameReader::new(stream)));
    }
    for (_, reader) in &mut loaded {
        for _ in 0..8 {
            assert_eq!(reader.next_frame().unwrap().code, response::SUCCESS);
        }
    }
    let idle: Vec<TcpStream> = (0..IDLE)
        .map(|_| TcpStream::connect(&addr).unwrap())
        .collect();
    // Idle connections give their buffers back after a second, and the trim follows within
    // two more: wait for that, up to ten seconds.
    let connections = (LOADED + IDLE) as u64;
    let per_connection = |rss: u64| rss.saturating_sub(base) / connections;
    let deadline = Instant::now() + Duration::from_secs(10);
    let rss = loop {
        let rss = rss_kib(petrel.pid());
        if per_connection(rss) <= 16 || Instant::now() > deadline {
            break rss;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let each = per_connection(rss);
    println!("RSS {base} KiB → {rss} KiB with {connections} connections: {each} KiB each");
    assert!(each <= 16, "{each} KiB per idle connection");

    // An honest client is answered quickly among them.
    let mut worst = Duration::ZERO;
    for _ in 0..20 {
        worst = worst.max(send(&mut client));
    }
    println!("honest client: worst of 20 sends {worst:?}");
    assert!(worst < Duration::from_millis(50), "worst send {worst:?}");

    // Past the cap, new connections are closed as they arrive.
    let open = LOADED + IDLE + 1;
    let filler: Vec<TcpStream> = (open..CAP - 2)
        .map(|_| TcpStream::connect(&addr).unwrap())
        .collect();
    let mut closed = 0;
    let mut extra = Vec::new();
    for _ in 0..50 {
        let mut s = TcpStream::connect(&addr).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let mut byte = [0u8; 1];
        if let Ok(0) = s.read(&mut byte) {
            closed += 1;
        }
        // Kept open: one closed here would make room for the next.
        extra.push(s);
    }
    assert!(
        closed >= 45,
        "{closed} of the connections past the cap were closed"
    );
    drop(idle);
    drop(filler);
    drop(extra);
    drop(loaded);
    // Room again once they close.
    let msg = Message::new("honest", properties(None, None, &[]));
    eventually(Duration::from_secs(10), || {
        let r = Client::new(&petrel.namesrv()).send_to(&addr, &q, &msg);
        r.is_ok_and(|r| r.code == response::SUCCESS).then_some(())
    });
}

/// Two descriptors per connection: a process with few open files serves fewer connections
/// than `clientConnectionsMax` asks for, says so at start, and closes the excess at once
/// rather than running out of descriptors and leaving new clients unanswered in the backlog.
#[test]
fn the_open_files_limit_caps_connections_and_the_excess_is_closed_not_left_waiting() {
    const LIMIT: u64 = 600;
    let dir = tempfile::tempdir().unwrap();
    let petrel = Petrel::start_with_open_files("standalone", dir.path(), &[], LIMIT);
    let mut client = Client::new(&petrel.namesrv());
    create_topic(&mut client, &petrel, "Few", 1);
    let (name, addr) = petrel.brokers()[0].clone();
    let q = queue("Few", &name, 0);
    let msg = Message::new("honest", properties(None, None, &[]));
    assert_eq!(
        client.send_to(&addr, &q, &msg).unwrap().code,
        response::SUCCESS
    );
    let logged = petrel.stderr_lines().join("\n");
    assert!(
        logged.contains("serving at most"),
        "no warning about the open-files limit in:\n{logged}"
    );

    // More connections than the limit has descriptors for: each is served or closed, none
    // is left waiting unaccepted (a send on it answered, or the connection gone).
    let opened: Vec<TcpStream> = (0..LIMIT / 2)
        .map(|_| TcpStream::connect(&addr).unwrap())
        .collect();
    let mut held = Vec::new();
    let mut closed = 0;
    for (i, s) in opened.into_iter().enumerate() {
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        let mut template = SendTemplate::new("G_few", "Few", 0, false, i as u64);
        let mut out = Vec::new();
        template.encode(&mut out, 0, 0, 0, 1, b"crowd");
        let mut writer = s.try_clone().unwrap();
        let mut reader = FrameReader::new(s);
        let answered = match writer.write_all(&out) {
            Ok(()) => reader.next_frame().map(|f| f.code),
            Err(e) => Err(e),
        };
        match answered {
            Ok(code) => {
                assert_eq!(code, response::SUCCESS);
                held.push(writer);
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                panic!("connection {i} was left unanswered: {e}")
            }
            Err(_) => closed += 1,
        }
    }
    println!("{} served, {closed} closed at once", held.len());
    assert!(closed > 0, "all {} connections were served", held.len());
    assert!(
        held.len() > 100,
        "only {} connections were served",
        held.len()
    );
    let logged = petrel.stderr_lines().join("\n");
    assert!(
        !logged.contains("accept failed") && !logged.contains("cannot duplicate"),
        "the broker ran out of descriptors:\n{logged}"
    );
    // The client's own connection is among those held: it is still answered.
    assert_eq!(
        client.send_to(&addr, &q, &msg).unwrap().code,
        response::SUCCESS
    );
    // Room again once some close.
    held.truncate(held.len() - 10);
    eventually(Duration::from_secs(10), || {
        let r = Client::new(&petrel.namesrv()).send_to(&addr, &q, &msg);
        r.is_ok_and(|r| r.code == response::SUCCESS).then_some(())
    });
}
