//! One shard's store: its commit log, the consume queues built from it, and consumer offsets.
//!
//! Lives on one shard. `append` assigns the queue offset and physical offset at once and
//! returns the log end to wait for; the shard's writer task (`run_writer`) writes each pending
//! batch, then moves the batch's entries into the consume queues and records which queues got
//! messages, so held pulls can be woken. Consumers only ever see durable entries.

pub mod atomic_file;
pub mod checkpoint;
pub mod flow;
pub mod offsets;
pub mod replica;
pub mod replicated;
pub mod retention;

use std::cell::RefCell;
use std::collections::{BTreeSet, VecDeque};
use std::path::PathBuf;
use std::rc::Rc;

use crate::commitlog::{CommitLog, CommitLogConfig, CommitLogError, FlushDiskType};
use crate::consume_queue::{ConsumeQueues, CqEntry};
use crate::index::{IndexConfig, KeyIndex};
use crate::record::{self, find_property, property, MessageToStore, RecordView};
use crate::runtime::watermark::Signal;
use checkpoint::{Checkpoint, QueueFiles};
use offsets::ConsumerOffsets;

#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// The shard's directory: `<storePathRootDir>/shard-<i>`.
    pub dir: PathBuf,
    pub segment_bytes: u64,
    pub flush: FlushDiskType,
    pub index: IndexConfig,
    /// SYNC_MASTER: consumers see a message once the slave holds it (`replicated`).
    pub sync_replication: bool,
    /// `fileReservedTime`, `deleteWhen` and the disk ratios (`retention`).
    pub retention: retention::RetentionConfig,
    /// `waitTimeMillsInSendQueue` and the send queue's bounds (`flow`).
    pub flow: flow::FlowConfig,
}

/// An append waiting to become durable: its consume-queue entry and the log end that covers it.
struct Dispatch {
    topic: String,
    queue_id: u32,
    queue_offset: u64,
    entry: CqEntry,
    end: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub physical_offset: u64,
    pub queue_offset: u64,
    /// Acknowledge once the log is durable up to here.
    pub end: u64,
}

pub struct Store {
    pub config: StoreConfig,
    log: Rc<CommitLog>,
    queues: RefCell<ConsumeQueues>,
    index: RefCell<KeyIndex>,
    dispatch: RefCell<VecDeque<Dispatch>>,
    arrived: RefCell<BTreeSet<(String, i32)>>,
    arrival: Signal,
    pub offsets: RefCell<ConsumerOffsets>,
    /// Taken while a persist round runs, so two rounds never write the same files at once.
    queue_files: RefCell<Option<QueueFiles>>,
    /// The last checkpoint written.
    checkpointed: std::cell::Cell<u64>,
    /// A master's view of its slave.
    pub replicated: replicated::Replicated,
    /// The disk's use, and whether writes are refused for it.
    pub disk: retention::DiskGuard,
    /// Retention's rules in force (UPDATE_BROKER_CONFIG changes them).
    retention: std::cell::Cell<retention::RetentionConfig>,
    /// Flow control's bounds in force.
    flow: std::cell::Cell<flow::FlowConfig>,
}

impl Store {
    /// Opens the shard's store: loads consume queues up to the checkpoint, recovers the
    /// commit log from there (cutting a torn tail) and indexes what follows, then loads
    /// consumer offsets. When queues and log disagree, every queue is rebuilt from the log.
    pub async fn open(config: StoreConfig) -> Result<Rc<Store>, CommitLogError> {
        let io = |path: PathBuf| move |source| CommitLogError::Io { path, source };
        let checkpoint = checkpoint::load_checkpoint(&config.dir);
        let index_dir = config.dir.join("index");
        let attempt = match KeyIndex::open(&index_dir, config.index) {
            Ok(mut index) => Self::recover(&config, &checkpoint, &mut index)
                .await?
                .map(|(log, queues)| (log, queues, index)),
            Err(reason) => Err(reason),
        };
        let (log, queues, index) = match attempt {
            Ok(recovered) => recovered,
            Err(reason) => {
                log::warn!(
                    "store {}: {reason}; rebuilding consume queues and the key index from the whole log",
                    config.dir.display()
                );
                checkpoint::discard_all(&config.dir).map_err(io(config.dir.clone()))?;
                KeyIndex::discard(&index_dir).map_err(io(index_dir.clone()))?;
                let corrupt = |reason| CommitLogError::Corrupt {
                    path: config.dir.clone(),
                    offset: 0,
                    reason,
                };
                let mut index = KeyIndex::open(&index_dir, config.index).map_err(corrupt)?;
                let from_scratch =
                    Self::recover(&config, &Checkpoint::default(), &mut index).await?;
                let (log, queues) = from_scratch.map_err(corrupt)?;
                (log, queues, index)
            }
        };
        let offsets_path = config.dir.join("consumerOffset.json");
        let offsets = ConsumerOffsets::load(&offsets_path).map_err(io(offsets_path.clone()))?;
        Ok(Rc::new(Store {
            log,
            queues: RefCell::new(queues),
            index: RefCell::new(index),
            dispatch: RefCell::new(VecDeque::new()),
            arrived: RefCell::new(BTreeSet::new()),
            arrival: Signal::default(),
            offsets: RefCell::new(offsets),
            queue_files: RefCell::new(Some(QueueFiles::default())),
            checkpointed: std::cell::Cell::new(u64::MAX),
            replicated: replicated::Replicated::new(config.sync_replication),
            disk: retention::DiskGuard::default(),
            retention: std::cell::Cell::new(config.retention),
            flow: std::cell::Cell::new(config.flow),
            config,
        }))
    }

    /// Cuts the closed store in `dir` at log offset `at`: the commit log is cut there and the
    /// consume queues and key index are dropped, so the next `open` rebuilds them from the
    /// log. For a replica whose log parted from its master's at `at`.
    pub fn truncate_closed(
        dir: &std::path::Path,
        segment_bytes: u64,
        at: u64,
    ) -> std::io::Result<()> {
        crate::commitlog::truncate_closed(&dir.join("commitlog"), segment_bytes, at)?;
        checkpoint::discard_all(dir)?;
        KeyIndex::discard(&dir.join("index"))
    }

    /// One recovery attempt from `checkpoint`; the inner `Err` says why queues and log
    /// disagree.
    async fn recover(
        config: &StoreConfig,
        checkpoint: &Checkpoint,
        index: &mut KeyIndex,
    ) -> Result<Result<(Rc<CommitLog>, ConsumeQueues), String>, CommitLogError> {
        let complete_to = checkpoint.consume_queues_complete_to;
        let mut queues = checkpoint::load_queues(&config.dir, complete_to).map_err(|source| {
            CommitLogError::Io {
                path: config.dir.join("consumequeue"),
                source,
            }
        })?;
        if let Some(reason) = checkpoint.contradiction(&queues) {
            return Ok(Err(reason));
        }
        let mut mismatch = None;
        let mut indexed = 0u64;
        let log_config = CommitLogConfig {
            dir: config.dir.join("commitlog"),
            segment_bytes: config.segment_bytes,
            flush: config.flush,
        };
        // Retention deleted the log's first segments: a queue may begin past offset 0.
        let trimmed = crate::commitlog::first_segment_base(&log_config.dir) > 0;
        let log = CommitLog::open(log_config, complete_to, |physical, view| {
            index.add(view.topic, view.properties, physical, view.store_timestamp);
            let Some((queue_id, queue_offset, entry)) = cq_entry_of(physical, view) else { return };
            let queue = queues.get_or_create(view.topic, queue_id);
            if trimmed {
                queue.start_at(queue_offset);
            }
            let _ = queue.reserve();
            match queue.push(queue_offset, entry) {
                Ok(()) => indexed += 1,
                Err((got, want)) => {
                    mismatch.get_or_insert(format!(
                        "record at {physical} of {}:{queue_id} has queue offset {got}, expected {want}",
                        view.topic
                    ));
                }
            }
        })
        .await?;
        if let Some(reason) = mismatch {
            return Ok(Err(reason));
        }
        let end = log.reserved_end();
        // A crash between deleting segments and trimming the queues left entries behind.
        queues.trim_below(log.min_offset());
        for (topic, list) in queues.topics() {
            for (queue_id, queue) in list.iter().enumerate() {
                // A unit lost from the middle of a file shows at the last unit: its record
                // carries a queue offset past the unit's index.
                let Some(last) = queue.entries().last() else {
                    continue;
                };
                let expected = (queue.max_offset() - 1) as i64;
                let found = log.with_bytes(last.commit_log_offset, last.size as usize, |bytes| {
                    record::decode(bytes)
                        .ok()
                        .map(|v| (v.topic == topic.as_str(), v.queue_id, v.queue_offset))
                });
                if found.flatten() != Some((true, queue_id as i32, expected)) {
                    return Ok(Err(format!("consume queue {topic}:{queue_id} does not match the log at entry {expected}")));
                }
            }
        }
        log::info!(
            "store {}: log end {end}, queues complete to {complete_to}, {indexed} messages indexed from the log",
            config.dir.display()
        );
        Ok(Ok((log, queues)))
    }

    pub fn log(&self) -> &Rc<CommitLog> {
        &self.log
    }

    /// Whether appends are taken now: the log can grow (see `CommitLog::writable`) and the
    /// disk is below the warning level. Every writer asks first.
    pub fn writable(&self) -> bool {
        !self.disk.refusing() && self.log.writable()
    }

    pub fn retention(&self) -> retention::RetentionConfig {
        self.retention.get()
    }

    pub fn set_retention(&self, config: retention::RetentionConfig) {
        self.retention.set(config);
    }

    /// Why appends are refused now, for the client (see `writable`).
    pub fn write_refusal(&self) -> Option<String> {
        if !self.log.writable() {
            return Some(crate::remarks::DISK_FULL.to_string());
        }
        if self.disk.refusing() {
            let used = self.disk.used_percent().unwrap_or(100.0);
            return Some(crate::remarks::disk_above_warning(
                used,
                self.retention().warning_ratio,
            ));
        }
        None
    }

    /// Largest record the log accepts.
    pub fn record_bytes_max(&self) -> usize {
        self.log.record_bytes_max()
    }

    /// Appends one message to `msg.topic`/`msg.queue_id`.
    pub fn append(&self, msg: &MessageToStore<'_>) -> Appended {
        let queue_id = u32::try_from(msg.queue_id).expect("caller checked the queue id");
        let queue_offset = self
            .queues
            .borrow_mut()
            .get_or_create(msg.topic, queue_id)
            .reserve();
        let record_bytes = record::encoded_len(msg);
        let (physical_offset, end) = self.log.append(record_bytes, |physical, out| {
            record::encode(msg, queue_offset as i64, physical as i64, out);
        });
        let tags_code = find_property(msg.properties, property::TAGS).map_or(0, record::tags_code);
        self.index.borrow_mut().add(
            msg.topic,
            msg.properties,
            physical_offset,
            msg.store_timestamp,
        );
        self.dispatch.borrow_mut().push_back(Dispatch {
            topic: msg.topic.to_string(),
            queue_id,
            queue_offset,
            entry: CqEntry {
                commit_log_offset: physical_offset,
                size: record_bytes as u32,
                tags_code,
                store_timestamp: msg.store_timestamp,
            },
            end,
        });
        Appended {
            physical_offset,
            queue_offset,
            end,
        }
    }

    /// The writer task: writes batches as they come and dispatches what became durable.
    /// Returns when the log fails; appends after that are never acknowledged.
    pub async fn run_writer(self: Rc<Self>) {
        loop {
            if let Err(e) = self.log.write_pending().await {
                log::error!("store {}: {e}", self.config.dir.display());
                return;
            }
            self.dispatch_visible();
        }
    }

    /// Moves what consumers may now see into the consume queues: everything durable, or on a
    /// SYNC_MASTER with a slave in sync, everything the slave holds too.
    pub fn dispatch_visible(&self) {
        let limit = self.replicated.visible(self.log.durable().get());
        let mut queues = self.queues.borrow_mut();
        let mut dispatch = self.dispatch.borrow_mut();
        if dispatch.front().is_none_or(|d| d.end > limit) {
            return;
        }
        let mut arrived = self.arrived.borrow_mut();
        while dispatch.front().is_some_and(|d| d.end <= limit) {
            let d = dispatch.pop_front().expect("front exists");
            let queue = queues.get_or_create(&d.topic, d.queue_id);
            queue
                .push(d.queue_offset, d.entry)
                .expect("appends dispatch in queue order");
            arrived.insert((d.topic, d.queue_id as i32));
        }
        drop((queues, dispatch, arrived));
        self.arrival.raise();
    }

    /// Waits until messages arrived and returns the queues that got them.
    pub async fn wait_arrivals(&self) -> BTreeSet<(String, i32)> {
        loop {
            let arrived = std::mem::take(&mut *self.arrived.borrow_mut());
            if !arrived.is_empty() {
                return arrived;
            }
            self.arrival.wait().await;
        }
    }

    pub fn queues(&self) -> std::cell::Ref<'_, ConsumeQueues> {
        self.queues.borrow()
    }

    /// Max offset of a queue: the next offset to be written; 0 for an unknown queue.
    pub fn max_offset(&self, topic: &str, queue_id: i32) -> u64 {
        self.queues
            .borrow()
            .get(topic, queue_id)
            .map_or(0, |q| q.max_offset())
    }

    pub fn min_offset(&self, topic: &str, queue_id: i32) -> u64 {
        self.queues
            .borrow()
            .get(topic, queue_id)
            .map_or(0, |q| q.min_offset())
    }

    /// Copies the stored record at `offset` of `size` bytes into `out`.
    pub fn copy_record(&self, offset: u64, size: u32, out: &mut Vec<u8>) -> bool {
        self.log
            .with_bytes(offset, size as usize, |bytes| out.extend_from_slice(bytes))
            .is_some()
    }

    /// Decodes the stored record at `offset` of `size` bytes and hands it to `f`.
    pub fn with_record<R>(
        &self,
        offset: u64,
        size: u32,
        f: impl FnOnce(&RecordView<'_>) -> R,
    ) -> Option<R> {
        self.log.with_bytes(offset, size as usize, |bytes| {
            record::decode(bytes).ok().map(|v| f(&v))
        })?
    }

    /// Background flusher for ASYNC_FLUSH: fdatasync every `interval`.
    pub async fn run_flusher(self: Rc<Self>, interval: std::time::Duration) {
        if self.config.flush == FlushDiskType::Sync {
            return;
        }
        let mut synced = self.log.durable().get();
        loop {
            glommio::timer::sleep(interval).await;
            let durable = self.log.durable().get();
            if durable != synced {
                if let Err(e) = self.log.sync().await {
                    log::error!(
                        "store {}: background flush failed: {e}",
                        self.config.dir.display()
                    );
                }
                synced = durable;
            }
        }
    }

    /// Writes consumer offsets atomically.
    pub async fn persist_offsets(&self) -> std::io::Result<()> {
        let path = self.config.dir.join("consumerOffset.json");
        let bytes = self.offsets.borrow().to_json();
        atomic_file::write_off_shard(path, bytes).await
    }

    /// Drains pending appends to disk, syncs, and writes the consume queues: the last step
    /// of a clean shutdown, after which a restart scans nothing.
    pub async fn flush_all(&self) -> Result<(), CommitLogError> {
        let target = self.log.reserved_end();
        let _ = self.log.durable().wait_for(target).await;
        self.log.sync().await?;
        // A periodic round may be running; the final one must not be skipped.
        while self.queue_files.borrow().is_none() {
            glommio::timer::sleep(std::time::Duration::from_millis(5)).await;
        }
        self.persist_queues()
            .await
            .map_err(|source| CommitLogError::Io {
                path: self.config.dir.join("consumequeue"),
                source,
            })
    }

    /// Writes new consume-queue units, syncs them, then advances the checkpoint to what the
    /// log has on disk. Skips the round if another is running.
    pub async fn persist_queues(&self) -> std::io::Result<()> {
        let Some(mut files) = self.queue_files.borrow_mut().take() else {
            return Ok(());
        };
        // Every record below the durable end is already in the queues (the writer indexes a
        // batch before it yields) unless it still waits to be dispatched (a SYNC_MASTER's
        // record its slave does not hold yet), and nothing past the synced end may be claimed.
        let undispatched = self
            .dispatch
            .borrow()
            .front()
            .map_or(u64::MAX, |d| d.entry.commit_log_offset);
        let complete_to = self
            .log
            .durable()
            .get()
            .min(self.log.synced_end())
            .min(undispatched);
        let batch = checkpoint::collect_unpersisted(&self.queues.borrow());
        if batch.is_empty() && complete_to == self.checkpointed.get() {
            *self.queue_files.borrow_mut() = Some(files);
            return Ok(());
        }
        let marks: Vec<(String, u32, u64)> = batch
            .iter()
            .map(|(t, q, first, bytes)| {
                (
                    t.clone(),
                    *q,
                    first + (bytes.len() / crate::consume_queue::file::UNIT_BYTES) as u64,
                )
            })
            .collect();
        let result = files.write(&self.config.dir, batch).await;
        let result = match result {
            Ok(()) => self.sync_index().await,
            Err(e) => Err(e),
        };
        *self.queue_files.borrow_mut() = Some(files);
        result?;
        {
            let mut queues = self.queues.borrow_mut();
            for (topic, queue_id, upto) in marks {
                if let Some(q) = queues.get_mut(&topic, queue_id) {
                    q.mark_persisted(upto);
                }
            }
        }
        let checkpoint = Checkpoint::of(&self.queues.borrow(), complete_to);
        let bytes = serde_json::to_vec(&checkpoint).expect("checkpoint serializes");
        atomic_file::write_off_shard(checkpoint::checkpoint_path(&self.config.dir), bytes).await?;
        self.checkpointed.set(complete_to);
        Ok(())
    }

    /// Syncs the key index files, so the next checkpoint can vouch for them too.
    async fn sync_index(&self) -> std::io::Result<()> {
        let regions = self.index.borrow().regions();
        glommio::executor()
            .spawn_blocking(move || {
                // SAFETY: index files stay mapped while the store is open, and the store
                // outlives this await (the caller holds it).
                unsafe { crate::index::sync_regions(&regions) }
            })
            .await
    }

    /// The key index, for QUERY_MESSAGE.
    pub fn index(&self) -> std::cell::Ref<'_, KeyIndex> {
        self.index.borrow()
    }

    /// Persists consume queues every `interval`.
    pub async fn run_queue_persister(self: Rc<Self>, interval: std::time::Duration) {
        loop {
            glommio::timer::sleep(interval).await;
            if let Err(e) = self.persist_queues().await {
                log::error!(
                    "store {}: writing consume queues failed: {e}",
                    self.config.dir.display()
                );
            }
        }
    }
}

/// The consume-queue entry of a recovered record, unless it is not dispatched (prepared or
/// rolled-back transaction records, spec §6.2).
fn cq_entry_of(physical: u64, view: &RecordView<'_>) -> Option<(u32, u64, CqEntry)> {
    let tx = view.sys_flag & 0xC;
    if tx == record::sys_flag::TRANSACTION_PREPARED || tx == record::sys_flag::TRANSACTION_ROLLBACK
    {
        return None;
    }
    let queue_id = u32::try_from(view.queue_id).ok()?;
    let tags_code = find_property(view.properties, property::TAGS).map_or(0, record::tags_code);
    Some((
        queue_id,
        u64::try_from(view.queue_offset).ok()?,
        CqEntry {
            commit_log_offset: physical,
            size: view.total_size as u32,
            tags_code,
            store_timestamp: view.store_timestamp,
        },
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::disallowed_methods, reason = "tests damage files directly")]

    use super::*;
    use crate::testing::{message, run};

    fn config(dir: &std::path::Path) -> StoreConfig {
        StoreConfig {
            dir: dir.to_path_buf(),
            segment_bytes: 1 << 16,
            flush: FlushDiskType::Async,
            index: IndexConfig::default(),
            sync_replication: false,
            retention: retention::RetentionConfig::default(),
            flow: flow::FlowConfig::default(),
        }
    }

    async fn append(store: &Rc<Store>, n: usize, tag: &str) {
        let props = format!("TAGS\u{1}{tag}\u{2}");
        let mut end = 0;
        for i in 0..n {
            let body = format!("{tag}-{i}");
            let msg = message("T", body.as_bytes(), &props);
            end = store.append(&msg).end;
        }
        store.log().durable().wait_for(end).await.unwrap();
    }

    fn queue_bodies(store: &Store) -> Vec<String> {
        let queues = store.queues();
        let q = queues.get("T", 0).unwrap();
        q.entries()
            .iter()
            .map(|e| {
                store
                    .with_record(e.commit_log_offset, e.size, |v| {
                        String::from_utf8_lossy(v.body).into_owned()
                    })
                    .unwrap()
            })
            .collect()
    }

    #[test]
    fn a_replica_takes_only_whole_valid_entries_at_its_end_and_builds_the_same_queues() {
        let (m_dir, s_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (m_path, s_path) = (m_dir.path().to_path_buf(), s_dir.path().to_path_buf());
        run(move || async move {
            let master = Store::open(config(&m_path)).await.unwrap();
            glommio::spawn_local(master.clone().run_writer()).detach();
            append(&master, 10, "a").await;
            let end = master.log().durable().get();
            let mut bytes = Vec::new();
            master
                .log()
                .with_bytes(0, end as usize, |b| bytes.extend_from_slice(b))
                .unwrap();
            let first = master.log().entry_at(0).unwrap().unwrap() as usize;

            let slave = Store::open(config(&s_path)).await.unwrap();
            glommio::spawn_local(slave.clone().run_writer()).detach();
            let refused = |r: Result<u64, String>, what: &str| {
                let e = r.expect_err(what);
                assert!(e.contains(what), "{e}");
            };
            // Not at its end, a cut entry, a flipped bit: each refused, nothing taken.
            refused(
                slave.append_replica(first as u64, &bytes[first..]),
                "the log ends at 0",
            );
            refused(
                slave.append_replica(0, &bytes[..first + 10]),
                "is not valid",
            );
            for i in [0, 20, first - 5, first + 60] {
                let mut bad = bytes.clone();
                bad[i] ^= 0x10;
                refused(slave.append_replica(0, &bad), "is not valid");
            }
            assert_eq!(slave.log().reserved_end(), 0);
            // The first entry alone, then the rest: the same queue as the master's.
            assert_eq!(slave.append_replica(0, &bytes[..first]), Ok(first as u64));
            // The same entry again would repeat queue offset 0.
            refused(
                slave.append_replica(first as u64, &bytes[..first]),
                "sits at",
            );
            assert_eq!(slave.append_replica(first as u64, &bytes[first..]), Ok(end));
            slave.log().durable().wait_for(end).await.unwrap();
            glommio::timer::sleep(std::time::Duration::from_millis(10)).await;
            assert_eq!(queue_bodies(&slave), queue_bodies(&master));
            assert_eq!(queue_bodies(&slave).len(), 10);
        });
    }

    #[test]
    fn queues_after_the_checkpoint_are_rebuilt_from_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        run(move || async move {
            let store = Store::open(config(&path)).await.unwrap();
            glommio::spawn_local(store.clone().run_writer()).detach();
            append(&store, 10, "a").await;
            store.log().sync().await.unwrap();
            store.persist_queues().await.unwrap();
            let checkpoint = checkpoint::load_checkpoint(&path).consume_queues_complete_to;
            assert_eq!(checkpoint, store.log().durable().get());
            append(&store, 5, "b").await;
            drop(store);
            // Reopen as after a crash: 10 entries come from the file, 5 from the log.
            let store = Store::open(config(&path)).await.unwrap();
            let bodies = queue_bodies(&store);
            assert_eq!(bodies.len(), 15);
            assert_eq!(bodies[9], "a-9");
            assert_eq!(bodies[14], "b-4");
        });
    }

    #[test]
    fn a_damaged_queue_file_is_rebuilt_from_the_whole_log() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        run(move || async move {
            let store = Store::open(config(&path)).await.unwrap();
            glommio::spawn_local(store.clone().run_writer()).detach();
            append(&store, 12, "a").await;
            store.flush_all().await.unwrap();
            drop(store);
            // Lose units below the checkpoint: the queue would have a gap.
            let file = path.join("consumequeue").join("T").join("0");
            let bytes = std::fs::read(&file).unwrap();
            std::fs::write(&file, &bytes[..3 * crate::consume_queue::file::UNIT_BYTES]).unwrap();
            let store = Store::open(config(&path)).await.unwrap();
            let bodies = queue_bodies(&store);
            assert_eq!(
                bodies,
                (0..12).map(|i| format!("a-{i}")).collect::<Vec<_>>()
            );
        });
    }
}
