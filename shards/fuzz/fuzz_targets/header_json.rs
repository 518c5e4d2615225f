//! Any header bytes in a well-delimited frame of the json serialize type: a command or a
//! malformed-frame answer, never a panic.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use petrel_shards::remoting;

fuzz_target!(|data: &[u8]| {
    let header = &data[..data.len().min(0xFF_FFFF)];
    let mut frame = Vec::with_capacity(8 + header.len());
    frame.extend_from_slice(&((4 + header.len()) as u32).to_be_bytes());
    frame.extend_from_slice(&((0u32 << 24) | header.len() as u32).to_be_bytes());
    frame.extend_from_slice(header);
    let decoded = remoting::decode(&Bytes::from(frame), u32::MAX);
    assert!(
        decoded.is_ok(),
        "a delimited frame is never fatal: {decoded:?}"
    );
});
