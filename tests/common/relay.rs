//! A TCP relay between a slave and its master's HA port, to break the stream on purpose: flip
//! a bit of it, or cut it as a network partition does (nothing passes, no connection closes).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub struct Relay {
    pub addr: String,
    cut: Arc<AtomicBool>,
}

impl Relay {
    /// Relays to `target`; with `flip_at`, the first connection's master-to-slave stream has
    /// one bit flipped once that many bytes have passed.
    pub fn start(target: String, flip_at: Option<usize>) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let cut = Arc::new(AtomicBool::new(false));
        let gate = cut.clone();
        std::thread::spawn(move || {
            for (n, slave_side) in listener.incoming().enumerate() {
                let Ok(slave_side) = slave_side else { return };
                // Cut, a connection is taken but nothing reaches the master.
                while gate.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(20));
                }
                let Ok(master_side) = TcpStream::connect(&target) else {
                    continue;
                };
                let to_master = (
                    slave_side.try_clone().unwrap(),
                    master_side.try_clone().unwrap(),
                );
                pump(to_master.0, to_master.1, None, gate.clone());
                let flip = if n == 0 { flip_at } else { None };
                pump(master_side, slave_side, flip, gate.clone());
            }
        });
        Relay { addr, cut }
    }

    /// From now on nothing passes either way, and the connections stay open.
    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
    }

    pub fn heal(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

fn pump(mut from: TcpStream, mut to: TcpStream, flip: Option<usize>, cut: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 << 10];
        let mut passed = 0usize;
        loop {
            while cut.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(20));
            }
            let got = match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(got) => got,
            };
            // Read before the cut, held back until the heal, as a dropped packet is resent.
            while cut.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(20));
            }
            if let Some(at) = flip {
                if passed <= at && at < passed + got {
                    buf[at - passed] ^= 0x04;
                }
            }
            passed += got;
            if to.write_all(&buf[..got]).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Both);
        let _ = from.shutdown(Shutdown::Both);
    });
}
