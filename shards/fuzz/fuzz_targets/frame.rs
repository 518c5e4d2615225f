//! Any bytes on a connection: delimited or refused, never a panic; a decoded command encodes
//! and decodes back to itself.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use petrel_shards::remoting::{self, Decoded};

fuzz_target!(|data: &[u8]| {
    let buf = Bytes::copy_from_slice(data);
    if let Ok(Decoded::Command {
        command,
        frame_bytes,
    }) = remoting::decode(&buf, 1 << 20)
    {
        assert!(frame_bytes <= data.len());
        let again = remoting::encode_to_bytes(&command);
        match remoting::decode(&again, u32::MAX) {
            Ok(Decoded::Command { command: back, .. }) => {
                assert_eq!(back.code, command.code);
                assert_eq!(back.opaque, command.opaque);
                assert_eq!(back.body, command.body);
            }
            other => panic!("a decoded command did not survive encoding: {other:?}"),
        }
    }
});
