//! A consume queue on disk: `<shard>/consumequeue/<topic>/<queueId>`, a sequence of 28-byte
//! units `commit-log offset u64 · size u32 · tag code i64 · store timestamp i64`, big-endian.
//! RocketMQ's unit is 20 bytes; ours adds the store timestamp so SEARCH_OFFSET_BY_TIMESTAMP and
//! GET_EARLIEST_MSG_STORETIME never touch the log. Consume queues are derived data: what is
//! missing or torn after a crash is rebuilt from the commit log (`store::checkpoint`).

use super::CqEntry;

pub const UNIT_BYTES: usize = 28;

pub fn encode_unit(entry: &CqEntry, out: &mut Vec<u8>) {
    out.extend_from_slice(&entry.commit_log_offset.to_be_bytes());
    out.extend_from_slice(&entry.size.to_be_bytes());
    out.extend_from_slice(&entry.tags_code.to_be_bytes());
    out.extend_from_slice(&entry.store_timestamp.to_be_bytes());
}

/// Decodes whole units into the queue offset of the first kept unit and the units from there.
/// Leading zero units are skipped: retention punched them out with their log segments. A
/// torn last unit is ignored. Stops at the first unit that goes back in the log or reaches
/// past `log_end`, since everything from there is rebuilt from the log.
pub fn decode_units(bytes: &[u8], log_end: u64) -> (u64, Vec<CqEntry>) {
    let units = bytes.chunks_exact(UNIT_BYTES);
    let deleted = units
        .clone()
        .take_while(|u| u.iter().all(|b| *b == 0))
        .count();
    let mut out: Vec<CqEntry> = Vec::with_capacity(bytes.len() / UNIT_BYTES - deleted);
    for unit in units.skip(deleted) {
        let entry = CqEntry {
            commit_log_offset: u64::from_be_bytes(unit[0..8].try_into().expect("8 bytes")),
            size: u32::from_be_bytes(unit[8..12].try_into().expect("4 bytes")),
            tags_code: i64::from_be_bytes(unit[12..20].try_into().expect("8 bytes")),
            store_timestamp: i64::from_be_bytes(unit[20..28].try_into().expect("8 bytes")),
        };
        let after_previous = out
            .last()
            .is_none_or(|p| entry.commit_log_offset >= p.commit_log_offset + p.size as u64);
        if entry.size == 0
            || !after_previous
            || entry.commit_log_offset + entry.size as u64 > log_end
        {
            break;
        }
        out.push(entry);
    }
    (deleted as u64, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(offset: u64) -> CqEntry {
        CqEntry {
            commit_log_offset: offset,
            size: 100,
            tags_code: 7,
            store_timestamp: 9,
        }
    }

    #[test]
    fn units_round_trip_and_torn_or_stale_tails_are_dropped() {
        let mut bytes = Vec::new();
        for i in 0..5 {
            encode_unit(&entry(i * 100), &mut bytes);
        }
        assert_eq!(
            decode_units(&bytes, 500),
            (0, (0..5).map(|i| entry(i * 100)).collect::<Vec<_>>())
        );
        assert_eq!(
            decode_units(&bytes[..bytes.len() - 3], 500).1.len(),
            4,
            "torn unit"
        );
        assert_eq!(
            decode_units(&bytes, 350).1.len(),
            3,
            "past the recovered log end"
        );
        let mut backwards = bytes.clone();
        encode_unit(&entry(0), &mut backwards);
        assert_eq!(
            decode_units(&backwards, 10_000).1.len(),
            5,
            "a unit going back in the log"
        );
        let mut tail = bytes.clone();
        tail.extend_from_slice(&[0; 56]);
        assert_eq!(decode_units(&tail, 10_000).1.len(), 5, "zero fill");
    }

    #[test]
    fn leading_zero_units_were_deleted_and_set_the_first_offset() {
        let mut bytes = vec![0; 3 * UNIT_BYTES];
        for i in 3..6 {
            encode_unit(&entry(i * 100), &mut bytes);
        }
        let (first, units) = decode_units(&bytes, 10_000);
        assert_eq!(first, 3);
        assert_eq!(units, (3..6).map(|i| entry(i * 100)).collect::<Vec<_>>());
        assert_eq!(decode_units(&[0; 56], 10_000), (2, vec![]), "all deleted");
    }
}
