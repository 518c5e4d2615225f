//! Retention and the disk guard (F30, F29): RocketMQ's `CleanCommitLogService`, per shard.
//!
//! Every second the shard measures the use of the filesystem holding its log. Above
//! `diskSpaceWarningLevelRatio` writes are refused as a full disk until use falls back.
//! Whole segments are deleted, oldest first and never the one holding the log end, when one
//! of these holds:
//! - it is an hour listed in `deleteWhen` and the segment was last written more than
//!   `fileReservedTime` ago;
//! - use is above `diskMaxUsedSpaceRatio`: expired segments go at any hour;
//! - use is above `diskSpaceCleanForciblyRatio` (or the warning level) with
//!   `cleanFileForciblyEnable`: the oldest segments go, expired or not.
//!
//! After a deletion, consume-queue entries pointing into deleted segments are dropped (their
//! units punched out of the queue files), key-index files that point only there are removed,
//! and committed consumer offsets below a queue's new minimum are moved up to it, as
//! RocketMQ's consumers are moved by OFFSET_TOO_SMALL.

use std::cell::Cell;
use std::collections::HashMap;
use std::path::Path;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::Store;
use crate::commitlog::now_ms;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetentionConfig {
    /// `fileReservedTime` (hours, fractions allowed): how long a segment is kept after its
    /// last write.
    pub reserved: Duration,
    /// `deleteWhen` (`04`, `04;16`): bit `h` set for each hour of the local day at which
    /// expired segments are deleted.
    pub delete_hours: u32,
    /// `diskMaxUsedSpaceRatio` (%): above it expired segments are deleted at any hour.
    pub max_used_ratio: u8,
    /// `diskSpaceCleanForciblyRatio` (%): above it the oldest segments are deleted even when
    /// they have not expired, if `clean_forcibly`.
    pub clean_forcibly_ratio: u8,
    /// `diskSpaceWarningLevelRatio` (%): above it writes are refused.
    pub warning_ratio: u8,
    /// `cleanFileForciblyEnable`.
    pub clean_forcibly: bool,
    /// `deleteFileBatchMax`: segments deleted per round at most.
    pub batch_max: usize,
    /// `cleanResourceInterval`: how often deletion is considered when the disk is not
    /// above `diskMaxUsedSpaceRatio` (every second when it is).
    pub interval: Duration,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            reserved: Duration::from_secs(72 * 3600),
            delete_hours: 1 << 4,
            max_used_ratio: 75,
            clean_forcibly_ratio: 85,
            warning_ratio: 85,
            clean_forcibly: true,
            batch_max: 10,
            interval: Duration::from_secs(10),
        }
    }
}

impl RetentionConfig {
    /// Applies `key=value` if `key` is one of retention's (None if it is not), with
    /// RocketMQ's bounds: `diskMaxUsedSpaceRatio` 10–95, `diskSpaceCleanForciblyRatio` 30–85,
    /// `diskSpaceWarningLevelRatio` 35–90.
    pub fn set(&mut self, key: &str, value: &str) -> Option<Result<(), String>> {
        let v = value.trim();
        let ratio = |min: u8, max: u8| match v.parse::<u8>() {
            Ok(r) if (min..=max).contains(&r) => Ok(r),
            _ => Err(format!("must be a percentage between {min} and {max}")),
        };
        let number = |min: u64, max: u64, unit: &str| match v.parse::<u64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(format!("must be {unit}between {min} and {max}")),
        };
        let result = match key {
            "fileReservedTime" => match v.parse::<f64>() {
                Ok(h) if h > 0.0 && h <= 100_000.0 => {
                    self.reserved = Duration::from_secs_f64(h * 3600.0);
                    Ok(())
                }
                _ => Err("must be hours above 0 (fractions allowed)".to_string()),
            },
            "deleteWhen" => parse_delete_when(v).map(|h| self.delete_hours = h),
            "diskMaxUsedSpaceRatio" => ratio(10, 95).map(|r| self.max_used_ratio = r),
            "diskSpaceCleanForciblyRatio" => ratio(30, 85).map(|r| self.clean_forcibly_ratio = r),
            "diskSpaceWarningLevelRatio" => ratio(35, 90).map(|r| self.warning_ratio = r),
            "cleanFileForciblyEnable" => match v {
                "true" | "false" => {
                    self.clean_forcibly = v == "true";
                    Ok(())
                }
                _ => Err("expected true or false".to_string()),
            },
            "deleteFileBatchMax" => number(1, 1000, "").map(|n| self.batch_max = n as usize),
            "cleanResourceInterval" => number(1, 3_600_000, "milliseconds ")
                .map(|ms| self.interval = Duration::from_millis(ms)),
            _ => return None,
        };
        Some(result)
    }

    /// The keys with their values as broker.conf spells them.
    pub fn properties(&self) -> Vec<(&'static str, String)> {
        let hours: Vec<String> = (0..24)
            .filter(|h| self.delete_hours & (1 << h) != 0)
            .map(|h| format!("{h:02}"))
            .collect();
        vec![
            (
                "fileReservedTime",
                format!("{}", self.reserved.as_secs_f64() / 3600.0),
            ),
            ("deleteWhen", hours.join(";")),
            ("diskMaxUsedSpaceRatio", self.max_used_ratio.to_string()),
            (
                "diskSpaceCleanForciblyRatio",
                self.clean_forcibly_ratio.to_string(),
            ),
            ("diskSpaceWarningLevelRatio", self.warning_ratio.to_string()),
            ("cleanFileForciblyEnable", self.clean_forcibly.to_string()),
            ("deleteFileBatchMax", self.batch_max.to_string()),
            (
                "cleanResourceInterval",
                self.interval.as_millis().to_string(),
            ),
        ]
    }
}

/// Parses `deleteWhen`: hours `00`–`23` separated by `;`.
pub fn parse_delete_when(value: &str) -> Result<u32, String> {
    let mut hours = 0u32;
    for part in value.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        match part.parse::<u32>() {
            Ok(h) if h < 24 => hours |= 1 << h,
            _ => return Err(format!("{part:?} is not an hour 00-23")),
        }
    }
    if hours == 0 {
        return Err("expected hours of the day such as 04 or 04;16".into());
    }
    Ok(hours)
}

/// What the disk guard last measured: the filesystem's use, and whether writes are refused.
#[derive(Debug, Default)]
pub struct DiskGuard {
    used_percent: Cell<Option<f64>>,
    refusing: Cell<bool>,
    /// Rounds left in which expired segments are deleted at any hour: DELETE_EXPIRED_COMMITLOG
    /// (mqadmin deleteExpiredCommitLog) asks for RocketMQ's 20.
    manual_rounds: Cell<u32>,
}

/// Rounds of deletion at any hour one DELETE_EXPIRED_COMMITLOG asks for (RocketMQ's
/// `MAX_MANUAL_DELETE_FILE_TIMES`).
const MANUAL_ROUNDS: u32 = 20;

impl DiskGuard {
    /// Whether use is above the warning level, so writes are refused.
    pub fn refusing(&self) -> bool {
        self.refusing.get()
    }

    pub fn used_percent(&self) -> Option<f64> {
        self.used_percent.get()
    }

    /// Expired segments go in the next rounds, whatever the hour (deleteExpiredCommitLog).
    pub fn delete_expired_now(&self) {
        self.manual_rounds.set(MANUAL_ROUNDS);
    }

    fn take_manual_round(&self) -> bool {
        let left = self.manual_rounds.get();
        self.manual_rounds.set(left.saturating_sub(1));
        left > 0
    }
}

/// The use of the filesystem holding `dir`, in percent, as RocketMQ measures it (blocks in
/// use, reserved ones counted as free).
fn used_percent(dir: &Path) -> std::io::Result<f64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes())?;
    // SAFETY: statvfs is plain data; all zeros is a valid value.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is NUL-terminated and `stat` is a valid out-pointer.
    if unsafe { libc::statvfs(path.as_ptr(), &mut stat) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if stat.f_blocks == 0 {
        return Ok(0.0);
    }
    let used = stat.f_blocks.saturating_sub(stat.f_bfree) as f64;
    Ok(used * 100.0 / stat.f_blocks as f64)
}

/// The hour of the local day now.
fn local_hour() -> u32 {
    let now = (now_ms() / 1000) as libc::time_t;
    // SAFETY: tm is plain data (its zone pointer null); all zeros is a valid value.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid; localtime_r is the re-entrant form.
    if unsafe { libc::localtime_r(&now, &mut tm) }.is_null() {
        return 0;
    }
    tm.tm_hour as u32
}

/// The shard's retention task: measures the disk every second, deletes by the rules above.
pub async fn run(store: Rc<Store>) {
    let dir = store.config.dir.join("commitlog");
    let mut last_round: Option<Instant> = None;
    let mut warned_nothing = false;
    loop {
        let probe = dir.clone();
        let used = glommio::executor()
            .spawn_blocking(move || used_percent(&probe))
            .await;
        let used = match used {
            Ok(used) => used,
            Err(e) => {
                log::warn!("store {}: cannot measure disk use: {e}", dir.display());
                0.0
            }
        };
        let config = store.retention();
        store.guard(used);
        let above_max = used > config.max_used_ratio as f64;
        let manual = store.disk.manual_rounds.get() > 0;
        if above_max || manual || last_round.is_none_or(|at| at.elapsed() >= config.interval) {
            last_round = Some(Instant::now());
            let forced = config.clean_forcibly
                && (used > config.clean_forcibly_ratio as f64
                    || used > config.warning_ratio as f64);
            let time_up = config.delete_hours & (1 << local_hour()) != 0;
            let manual = store.disk.take_manual_round();
            if time_up || above_max || forced || manual {
                let deleted = store.delete_segments(forced).await;
                if deleted == 0 && above_max && !warned_nothing {
                    log::warn!(
                        "store {}: disk {used:.1}% used, above diskMaxUsedSpaceRatio {}%, but no segment can be deleted yet (none expired{})",
                        dir.display(),
                        config.max_used_ratio,
                        if config.clean_forcibly { "" } else { ", cleanFileForciblyEnable=false" }
                    );
                }
                warned_nothing = deleted == 0 && above_max;
            }
        }
        glommio::timer::sleep(Duration::from_secs(1)).await;
    }
}

impl Store {
    /// Records the disk's use and starts or stops refusing writes at the warning level.
    pub(super) fn guard(&self, used: f64) {
        let warning = self.retention().warning_ratio as f64;
        self.disk.used_percent.set(Some(used));
        let refuse = used > warning;
        if refuse != self.disk.refusing.replace(refuse) {
            if refuse {
                log::error!(
                    "store {}: disk {used:.1}% used, above diskSpaceWarningLevelRatio {warning}%: refusing writes",
                    self.config.dir.display()
                );
            } else {
                log::info!(
                    "store {}: disk {used:.1}% used, at or below diskSpaceWarningLevelRatio {warning}%: writes resume",
                    self.config.dir.display()
                );
            }
        }
    }

    /// Deletes the segments retention allows now (`forced`: expired or not) and what points
    /// into them; returns how many segments went.
    pub async fn delete_segments(&self, forced: bool) -> usize {
        let config = self.retention();
        let written_before = now_ms() - config.reserved.as_millis() as i64;
        let doomed = self.log.deletable(written_before, forced, config.batch_max);
        if doomed.is_empty() {
            return 0;
        }
        let files = self.take_queue_files().await;
        let mut deleted = 0;
        for (base, written_ms) in doomed {
            let Some(path) = self.log.close_oldest(base) else {
                break;
            };
            if let Err(e) = glommio::io::remove(&path).await {
                log::error!("store: removing {}: {e}", path.display());
            }
            deleted += 1;
            log::info!(
                "store {}: deleted segment {} (last written {} s ago{})",
                self.config.dir.display(),
                path.display(),
                (now_ms() - written_ms) / 1000,
                if forced {
                    ", deleted forcibly: the disk is nearly full"
                } else {
                    ""
                }
            );
        }
        let files = self.forget_below(files).await;
        *self.queue_files.borrow_mut() = Some(files);
        deleted
    }

    /// The consume-queue files, once no persist round uses them: persist rounds sync the
    /// index maps and write the queue files, and none may run while files go. Given back
    /// with `self.queue_files.replace(Some(files))`.
    pub(super) async fn take_queue_files(&self) -> super::checkpoint::QueueFiles {
        loop {
            if let Some(files) = self.queue_files.borrow_mut().take() {
                return files;
            }
            glommio::timer::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Drops consume-queue entries, index files and consumer offsets below the log's new
    /// first offset.
    pub(super) async fn forget_below(
        &self,
        mut files: super::checkpoint::QueueFiles,
    ) -> super::checkpoint::QueueFiles {
        let log_min = self.log.min_offset();
        let dropped = self.queues.borrow_mut().trim_below(log_min);
        let firsts: HashMap<(String, i32), u64> = self
            .queues
            .borrow()
            .topics()
            .flat_map(|(topic, list)| {
                list.iter()
                    .enumerate()
                    .map(move |(id, q)| ((topic.clone(), id as i32), q.min_offset()))
            })
            .collect();
        for ((topic, queue_id), first) in &firsts {
            let queue_id = *queue_id as u32;
            if let Err(e) = files
                .delete_units(&self.config.dir, topic, queue_id, *first)
                .await
            {
                log::warn!("store: consume queue {topic}:{queue_id}: punching deleted units: {e}");
            }
        }
        let stale = self.index.borrow_mut().close_below(log_min);
        for path in stale {
            if let Err(e) = glommio::io::remove(&path).await {
                log::error!("store: removing {}: {e}", path.display());
            }
        }
        let moved = self
            .offsets
            .borrow_mut()
            .raise_to(|topic, queue_id| firsts.get(&(topic.to_string(), queue_id)).copied());
        log::info!(
            "store {}: log now starts at {log_min}: {dropped} consume-queue entries dropped, {moved} committed offsets moved to their queue's new first offset",
            self.config.dir.display()
        );
        files
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::disallowed_methods, reason = "tests read files directly")]

    use super::*;
    use crate::commitlog::FlushDiskType;
    use crate::index::IndexConfig;
    use crate::store::StoreConfig;
    use crate::testing::{message, run};

    fn config(dir: &Path) -> StoreConfig {
        StoreConfig {
            dir: dir.to_path_buf(),
            segment_bytes: 64 << 10,
            flush: FlushDiskType::Async,
            index: IndexConfig {
                enabled: true,
                slots: 64,
                entries: 200,
            },
            sync_replication: false,
            retention: RetentionConfig {
                reserved: Duration::from_millis(1),
                ..RetentionConfig::default()
            },
            flow: crate::store::flow::FlowConfig::default(),
        }
    }

    /// Appends `n` 1 KiB messages with keys `k<i>` to T/0; waits until they are durable.
    async fn append(store: &Rc<Store>, from: usize, n: usize) {
        let body = vec![b'x'; 1024];
        let mut end = 0;
        for i in from..from + n {
            let props = format!("KEYS\u{1}k{i}\u{2}");
            end = store.append(&message("T", &body, &props)).end;
        }
        store.log().durable().wait_for(end).await.unwrap();
        glommio::timer::sleep(Duration::from_millis(5)).await;
    }

    fn segment_count(dir: &Path) -> usize {
        std::fs::read_dir(dir.join("commitlog")).unwrap().count()
    }

    #[test]
    fn every_key_round_trips_and_bad_values_name_the_rule() {
        let mut config = RetentionConfig::default();
        for (key, value) in [
            ("fileReservedTime", "0.5"),
            ("deleteWhen", "04;16"),
            ("diskMaxUsedSpaceRatio", "70"),
            ("diskSpaceCleanForciblyRatio", "80"),
            ("diskSpaceWarningLevelRatio", "88"),
            ("cleanFileForciblyEnable", "false"),
            ("deleteFileBatchMax", "3"),
            ("cleanResourceInterval", "500"),
        ] {
            assert_eq!(config.set(key, value), Some(Ok(())), "{key}");
        }
        let mut again = RetentionConfig::default();
        for (key, value) in config.properties() {
            assert_eq!(again.set(key, &value), Some(Ok(())), "{key}={value}");
        }
        assert_eq!(again, config);
        assert_eq!(config.reserved, Duration::from_secs(1800));
        let bad = config
            .set("diskSpaceWarningLevelRatio", "95")
            .unwrap()
            .unwrap_err();
        assert!(bad.contains("between 35 and 90"), "{bad}");
        assert!(config.set("fileReservedTime", "-1").unwrap().is_err());
        assert_eq!(config.set("listenPort", "1"), None);
    }

    #[test]
    fn delete_when_takes_hours_of_the_day() {
        assert_eq!(parse_delete_when("04"), Ok(1 << 4));
        assert_eq!(parse_delete_when("04;16"), Ok(1 << 4 | 1 << 16));
        assert!(parse_delete_when("24").unwrap_err().contains("\"24\""));
        assert!(parse_delete_when("").is_err());
    }

    #[test]
    fn expired_segments_go_with_their_queue_entries_index_files_and_offsets() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        run(move || async move {
            let store = Store::open(config(&path)).await.unwrap();
            glommio::spawn_local(store.clone().run_writer()).detach();
            append(&store, 0, 300).await;
            store.flush_all().await.unwrap();
            store.offsets.borrow_mut().commit("T", "G", 0, 10);
            store.offsets.borrow_mut().commit("T", "H", 0, 299);
            let segments = segment_count(&path);
            let index_files = std::fs::read_dir(path.join("index")).unwrap().count();
            assert!(
                segments >= 5 && index_files >= 2,
                "{segments} {index_files}"
            );

            glommio::timer::sleep(Duration::from_millis(5)).await;
            let deleted = store.delete_segments(false).await;
            assert!(deleted >= 3, "{deleted} of {segments}");
            assert_eq!(segment_count(&path), segments - deleted);
            let log_min = store.log().min_offset();
            assert_eq!(log_min, deleted as u64 * (64 << 10));
            let first = store.min_offset("T", 0);
            let entry = *store.queues().get("T", 0).unwrap().get(first).unwrap();
            assert!(entry.commit_log_offset >= log_min);
            assert!(store.queues().get("T", 0).unwrap().get(first - 1).is_none());
            assert!(store
                .with_record(entry.commit_log_offset, entry.size, |_| ())
                .is_some());
            assert_eq!(store.max_offset("T", 0), 300);
            assert_eq!(store.offsets.borrow().get("T", "G", 0), Some(first as i64));
            assert_eq!(store.offsets.borrow().get("T", "H", 0), Some(299));
            let left = std::fs::read_dir(path.join("index")).unwrap().count();
            assert!(
                left < index_files,
                "{left} of {index_files} index files left"
            );
            // A key of a deleted message is no longer found; a kept one is.
            let found = |key: &str| !store.index().lookup("T", key, 0, i64::MAX, 4).is_empty();
            assert!(found("k299"));
            assert!(!found("k0"));

            // Nothing else expired yet is deleted while the last segment is written.
            append(&store, 300, 10).await;
            store.flush_all().await.unwrap();
            drop(store);

            // A restart finds the same first offset, from the queue file's holes.
            let store = Store::open(config(&path)).await.unwrap();
            assert_eq!(store.min_offset("T", 0), first);
            assert_eq!(store.max_offset("T", 0), 310);
            drop(store);

            // And a rebuild from the log alone starts the queue at its first record.
            super::super::checkpoint::discard_all(&path).unwrap();
            let store = Store::open(config(&path)).await.unwrap();
            assert_eq!(store.min_offset("T", 0), first);
            assert_eq!(store.max_offset("T", 0), 310);
        });
    }

    #[test]
    fn the_segment_holding_the_log_end_is_never_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        run(move || async move {
            let store = Store::open(config(&path)).await.unwrap();
            glommio::spawn_local(store.clone().run_writer()).detach();
            append(&store, 0, 200).await;
            for _ in 0..3 {
                store.delete_segments(true).await;
            }
            let end = store.log().durable().get();
            assert_eq!(
                store.log().min_offset(),
                (end - 1) / (64 << 10) * (64 << 10)
            );
            let last = store.max_offset("T", 0) - 1;
            let entry = *store.queues().get("T", 0).unwrap().get(last).unwrap();
            assert!(store
                .with_record(entry.commit_log_offset, entry.size, |_| ())
                .is_some());
            append(&store, 200, 5).await;
            assert_eq!(store.max_offset("T", 0), 205);
        });
    }
}
