//! How records sit in a commit-log segment: each stored record is followed by a 4-byte
//! `crc32c` of the record, so recovery can tell a whole record from a torn or flipped one (the
//! record's own BODYCRC covers the body only). A segment ends with a blank marker
//! `remaining i32 · BLANK_MAGIC i32` when the next entry does not fit (spec §7.2).

/// RocketMQ's end-of-file marker magic.
pub const BLANK_MAGIC: i32 = 0xCBD43194_u32 as i32;
/// Size of the blank marker; every segment keeps room for one.
pub const BLANK_BYTES: usize = 8;
/// The crc32c trailer after each record.
pub const TRAILER_BYTES: usize = 4;

/// Bytes an entry of a record of `record_bytes` takes in a segment.
pub const fn entry_bytes(record_bytes: usize) -> usize {
    record_bytes + TRAILER_BYTES
}

/// Appends the trailer of the record that ends `out` (its first byte at `record_start`).
pub fn push_trailer(out: &mut Vec<u8>, record_start: usize) {
    let crc = crc32c::crc32c(&out[record_start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// Appends a blank marker that claims `remaining` bytes up to the segment end, followed by
/// zeros to that end, so that pending bytes stay at the offsets they will be written to.
pub fn push_blank(out: &mut Vec<u8>, remaining: usize) {
    assert!(
        remaining >= BLANK_BYTES,
        "blank marker needs {BLANK_BYTES} bytes, has {remaining}"
    );
    out.extend_from_slice(&(remaining as i32).to_be_bytes());
    out.extend_from_slice(&BLANK_MAGIC.to_be_bytes());
    out.resize(out.len() + remaining - BLANK_BYTES, 0);
}
