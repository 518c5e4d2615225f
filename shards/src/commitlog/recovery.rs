//! The recovery scan: walks one segment's bytes and finds where its valid entries end. Pure,
//! so every truncation and bit flip of a small log is tested exhaustively.
//!
//! Decision table for the bytes at the scan position `p` of a segment of `len` bytes:
//!
//! | found at `p`                                          | verdict                 |
//! |-------------------------------------------------------|-------------------------|
//! | `p == len`, or fewer than 8 bytes left                | `End::Full` / `End::Tail` |
//! | blank marker whose size reaches exactly `len`         | `End::Sealed`           |
//! | eight zero bytes                                      | `End::Zeros` (unwritten) |
//! | record that decodes, says physical offset `base + p`, |                         |
//! |   and whose crc32c trailer matches                    | valid: advance          |
//! | anything else (torn, flipped, stale)                  | `End::Invalid(reason)`  |
//!
//! The caller decides what an end means: in the last segment anything but `Sealed` is the
//! torn tail and is cut; in a sealed (older) segment an `Invalid` is corruption.

use crate::record::{self, RecordView};

use super::entry::{BLANK_BYTES, BLANK_MAGIC, TRAILER_BYTES};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// The segment holds valid entries up to its last byte.
    Full,
    /// A blank marker closes the segment.
    Sealed,
    /// Zeros where the next entry would start: never written.
    Zeros,
    /// Fewer bytes than a blank marker remain and they are not a marker.
    Tail,
    /// Bytes that are not a valid entry.
    Invalid(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scan {
    /// Bytes from the segment start covered by valid entries (excluding a blank marker).
    pub valid_bytes: usize,
    pub end: End,
}

/// Scans `buf`, the bytes of the segment whose first byte is at commit-log offset `base`.
/// `on_record` sees every valid record with its physical offset.
pub fn scan_segment(
    buf: &[u8],
    base: u64,
    mut on_record: impl FnMut(u64, &RecordView<'_>),
) -> Scan {
    let mut pos = 0usize;
    loop {
        let rest = &buf[pos..];
        if rest.is_empty() {
            return Scan {
                valid_bytes: pos,
                end: End::Full,
            };
        }
        if rest.len() < BLANK_BYTES {
            return Scan {
                valid_bytes: pos,
                end: End::Tail,
            };
        }
        let size = i32::from_be_bytes(rest[0..4].try_into().expect("4 bytes"));
        let magic = i32::from_be_bytes(rest[4..8].try_into().expect("4 bytes"));
        if magic == BLANK_MAGIC && usize::try_from(size).ok() == Some(rest.len()) {
            return Scan {
                valid_bytes: pos,
                end: End::Sealed,
            };
        }
        if size == 0 && magic == 0 {
            return Scan {
                valid_bytes: pos,
                end: End::Zeros,
            };
        }
        match check_entry(rest, base + pos as u64) {
            Ok((view, entry_bytes)) => {
                on_record(base + pos as u64, &view);
                pos += entry_bytes;
            }
            Err(reason) => {
                return Scan {
                    valid_bytes: pos,
                    end: End::Invalid(reason),
                }
            }
        }
    }
}

/// Validates the entry at the start of `rest`, expected at physical offset `physical`.
fn check_entry(rest: &[u8], physical: u64) -> Result<(RecordView<'_>, usize), String> {
    let view = record::decode(rest).map_err(|e| e.to_string())?;
    let end = view.total_size + TRAILER_BYTES;
    if end > rest.len() {
        return Err(format!("trailer of record at {physical} is cut off"));
    }
    if view.physical_offset != physical as i64 {
        return Err(format!(
            "record says offset {} but sits at {physical}",
            view.physical_offset
        ));
    }
    let stored = u32::from_be_bytes(rest[view.total_size..end].try_into().expect("4 bytes"));
    let actual = crc32c::crc32c(&rest[..view.total_size]);
    if stored != actual {
        return Err(format!(
            "crc32c mismatch at {physical}: stored {stored:#x}, computed {actual:#x}"
        ));
    }
    Ok((view, end))
}

/// Fuzz entry: the scan never panics and never claims more bytes than it was given.
pub fn fuzz_commitlog_recovery(data: &[u8]) {
    let scan = scan_segment(data, 0, |_, _| {});
    assert!(scan.valid_bytes <= data.len());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commitlog::entry::{push_blank, push_trailer};
    use crate::testing::message;

    fn log_of(n: usize) -> (Vec<u8>, Vec<usize>) {
        let mut out = Vec::new();
        let mut ends = Vec::new();
        for i in 0..n {
            let body = vec![b'a' + i as u8; 3 + i];
            let msg = message("T", &body, "TAGS\u{1}x\u{2}");
            let start = out.len();
            record::encode(&msg, i as i64, start as i64, &mut out);
            push_trailer(&mut out, start);
            ends.push(out.len());
        }
        (out, ends)
    }

    fn valid_prefix(ends: &[usize], limit: usize) -> usize {
        ends.iter()
            .copied()
            .filter(|end| *end <= limit)
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn recovery_reads_a_clean_log_to_the_end() {
        let (log, ends) = log_of(3);
        let mut seen = Vec::new();
        let scan = scan_segment(&log, 0, |off, _| seen.push(off));
        assert_eq!(
            scan,
            Scan {
                valid_bytes: log.len(),
                end: End::Full
            }
        );
        assert_eq!(seen.len(), 3);
        assert_eq!(*ends.last().unwrap(), log.len());
    }

    #[test]
    fn recovery_stops_at_zero_fill_and_at_blank_marker() {
        let (mut log, ends) = log_of(2);
        log.extend_from_slice(&[0; 64]);
        assert_eq!(scan_segment(&log, 0, |_, _| {}).end, End::Zeros);
        let (mut sealed, _) = log_of(2);
        push_blank(&mut sealed, 16);
        sealed[ends[1] + 8..].fill(0xEE);
        let scan = scan_segment(&sealed, 0, |_, _| {});
        assert_eq!(
            scan,
            Scan {
                valid_bytes: ends[1],
                end: End::Sealed
            }
        );
    }

    #[test]
    fn recovery_truncates_torn_tail_at_every_length() {
        let (log, ends) = log_of(4);
        for cut in 0..=log.len() {
            let mut torn = log[..cut].to_vec();
            torn.resize(log.len() + 32, 0);
            let scan = scan_segment(&torn, 0, |_, _| {});
            assert_eq!(scan.valid_bytes, valid_prefix(&ends, cut), "cut at {cut}");
        }
    }

    #[test]
    fn recovery_keeps_exactly_the_prefix_before_any_bit_flip() {
        let (log, ends) = log_of(4);
        for pos in 0..log.len() {
            for bit in [0x01u8, 0x80] {
                let mut flipped = log.clone();
                flipped[pos] ^= bit;
                let scan = scan_segment(&flipped, 0, |_, _| {});
                let record_start = valid_prefix(&ends, pos);
                assert_eq!(scan.valid_bytes, record_start, "flip {bit:#x} at {pos}");
                assert!(
                    matches!(scan.end, End::Invalid(_)),
                    "flip at {pos}: {:?}",
                    scan.end
                );
            }
        }
    }

    #[test]
    fn recovery_rejects_a_record_copied_from_another_offset() {
        let (log, ends) = log_of(2);
        let mut stale = log.clone();
        stale.extend_from_slice(&log[..ends[0]]);
        let scan = scan_segment(&stale, 0, |_, _| {});
        assert_eq!(scan.valid_bytes, log.len());
        assert!(matches!(scan.end, End::Invalid(_)));
    }

    proptest::proptest! {
        #[test]
        fn scan_never_panics(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            fuzz_commitlog_recovery(&data);
        }
    }
}
