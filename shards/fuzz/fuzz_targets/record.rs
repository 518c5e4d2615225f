//! Any stored bytes read as a record: a view within the bytes or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use petrel_shards::record;

fuzz_target!(|data: &[u8]| {
    if let Ok(view) = record::decode(data) {
        assert!(view.total_size as usize <= data.len());
        assert!(view.body.len() <= data.len());
    }
});
