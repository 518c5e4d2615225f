#![allow(
    clippy::disallowed_methods,
    reason = "tests tear segment files directly"
)]

//! Commit-log tests on a real executor and real files: append, read back, roll segments,
//! reopen, and cut a torn tail.

use std::rc::Rc;

use super::*;
use crate::record;
use crate::testing::{message, run};

async fn append_n(log: &Rc<CommitLog>, n: usize, body_bytes: usize) -> Vec<u64> {
    let mut offsets = Vec::new();
    let mut last_end = 0;
    for i in 0..n {
        let body = vec![i as u8; body_bytes];
        let msg = message("T", &body, "");
        let (offset, end) = log.append(record::encoded_len(&msg), |phys, out| {
            record::encode(&msg, i as i64, phys as i64, out);
        });
        offsets.push(offset);
        last_end = end;
    }
    log.write_pending().await.expect("write");
    log.durable().wait_for(last_end).await.expect("durable");
    offsets
}

fn config(dir: &Path, flush: FlushDiskType) -> CommitLogConfig {
    CommitLogConfig {
        dir: dir.join("commitlog"),
        segment_bytes: 4096,
        flush,
    }
}

#[test]
fn appended_records_read_back_across_segment_rolls_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    run(move || async move {
        let log = CommitLog::open(config(&path, FlushDiskType::Sync), 0, |_, _| {})
            .await
            .unwrap();
        let offsets = append_n(&log, 40, 300).await;
        assert!(
            offsets.last().unwrap() >= &4096,
            "records rolled into a second segment"
        );
        for (i, offset) in offsets.iter().enumerate() {
            let body = log
                .with_bytes(*offset, 8, |b| {
                    i32::from_be_bytes(b[0..4].try_into().unwrap())
                })
                .unwrap();
            assert!(body > 0, "record {i} has a size");
        }
        drop(log);
        let mut seen = Vec::new();
        let log = CommitLog::open(config(&path, FlushDiskType::Sync), 0, |off, view| {
            seen.push((off, view.queue_offset))
        })
        .await
        .unwrap();
        assert_eq!(seen.iter().map(|s| s.0).collect::<Vec<_>>(), offsets);
        let more = append_n(&log, 1, 10).await;
        assert!(more[0] > *offsets.last().unwrap());
    });
}

#[test]
fn reopen_cuts_a_torn_tail_and_appends_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    run(move || async move {
        let log = CommitLog::open(config(&path, FlushDiskType::Async), 0, |_, _| {})
            .await
            .unwrap();
        let offsets = append_n(&log, 3, 100).await;
        drop(log);
        // Tear the last record: flip a byte in its body.
        let seg = path.join("commitlog").join(segment::segment_name(0));
        let mut bytes = std::fs::read(&seg).unwrap();
        bytes[offsets[2] as usize + 100] ^= 0xFF;
        std::fs::write(&seg, &bytes).unwrap();
        let mut seen = 0;
        let log = CommitLog::open(config(&path, FlushDiskType::Async), 0, |_, _| seen += 1)
            .await
            .unwrap();
        assert_eq!(seen, 2);
        assert_eq!(log.reserved_end(), offsets[2]);
        let again = append_n(&log, 1, 100).await;
        assert_eq!(again[0], offsets[2]);
    });
}

#[test]
fn reopen_from_a_checkpoint_scans_only_what_follows_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    run(move || async move {
        let log = CommitLog::open(config(&path, FlushDiskType::Sync), 0, |_, _| {})
            .await
            .unwrap();
        let offsets = append_n(&log, 30, 300).await;
        let end = log.reserved_end();
        drop(log);
        let checkpoint = offsets[20];
        let mut seen = Vec::new();
        let log = CommitLog::open(config(&path, FlushDiskType::Sync), checkpoint, |off, _| {
            seen.push(off)
        })
        .await
        .unwrap();
        assert_eq!(seen, offsets[20..].to_vec());
        assert_eq!(log.reserved_end(), end);
        assert_eq!(log.synced_end(), end);
    });
}

#[test]
fn a_segment_preallocated_ahead_of_the_end_is_not_taken_for_the_end_on_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    run(move || async move {
        let log = CommitLog::open(config(&path, FlushDiskType::Sync), 0, |_, _| {})
            .await
            .unwrap();
        // Past half of the first segment, the preallocator makes the second one.
        append_n(&log, 8, 300).await;
        let end = log.durable().get();
        assert!(end > 2048 && end < 4096, "end {end}");
        glommio::spawn_local(log.clone().run_preallocator()).detach();
        let next = path.join("commitlog").join(segment::segment_name(4096));
        for _ in 0..100 {
            if std::fs::metadata(&next).is_ok_and(|m| m.len() == 4096) {
                break;
            }
            glommio::timer::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert!(std::fs::metadata(&next).is_ok_and(|m| m.len() == 4096));
        drop(log);
        // Reopened, the log ends where it did, inside the first segment.
        let mut seen = 0;
        let log = CommitLog::open(config(&path, FlushDiskType::Sync), 0, |_, _| seen += 1)
            .await
            .unwrap();
        assert_eq!(seen, 8);
        assert_eq!(log.reserved_end(), end);
        assert!(log.writable());
    });
}
