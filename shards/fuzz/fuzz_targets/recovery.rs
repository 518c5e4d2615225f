//! Any segment content at recovery: the scan keeps a prefix of whole, valid entries, each
//! within the segment and in order, and never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use petrel_shards::commitlog::recovery::scan_segment;

fuzz_target!(|data: &[u8]| {
    let base = 1 << 30;
    let mut last = None;
    let scan = scan_segment(data, base, |offset, view| {
        assert!(offset >= base && offset < base + data.len() as u64);
        assert!(last.is_none_or(|l| offset > l));
        assert!(view.total_size as usize <= data.len());
        last = Some(offset);
    });
    assert!(scan.valid_bytes <= data.len());
    if let Some(l) = last {
        assert!(l < base + scan.valid_bytes as u64);
    }
});
