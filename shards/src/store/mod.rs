//! One shard's store: its commit log, the consume queues built from it, and consumer offsets.
//!
//! Lives on one shard. `append` assigns the queue offset and physical offset at once and
//! returns the log end to wait for; the shard's writer task (`run_writer`) writes each pending
//! batch, then moves the batch's entries into the consume queues and records which queues got
//! messages, so held pulls can be woken. Consumers only ever see durable entries.

pub mod atomic_file;
pub mod offsets;

use std::cell::RefCell;
use std::collections::{BTreeSet, VecDeque};
use std::path::PathBuf;
use std::rc::Rc;

use crate::commitlog::{CommitLog, CommitLogConfig, CommitLogError, FlushDiskType};
use crate::consume_queue::{ConsumeQueues, CqEntry};
use crate::record::{self, find_property, property, MessageToStore, RecordView};
use crate::runtime::watermark::Signal;
use offsets::ConsumerOffsets;

#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// The shard's directory: `<storePathRootDir>/shard-<i>`.
    pub dir: PathBuf,
    pub segment_bytes: u64,
    pub flush: FlushDiskType,
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
    dispatch: RefCell<VecDeque<Dispatch>>,
    arrived: RefCell<BTreeSet<(String, i32)>>,
    arrival: Signal,
    pub offsets: RefCell<ConsumerOffsets>,
}

impl Store {
    /// Opens the shard's store: recovers the commit log, rebuilding consume queues from it,
    /// and loads consumer offsets.
    pub async fn open(config: StoreConfig) -> Result<Rc<Store>, CommitLogError> {
        let mut queues = ConsumeQueues::default();
        let mut rebuilt = 0u64;
        let log_config = CommitLogConfig {
            dir: config.dir.join("commitlog"),
            segment_bytes: config.segment_bytes,
            flush: config.flush,
        };
        let log = CommitLog::open(log_config, |physical, view| {
            if let Some((queue_id, queue_offset, entry)) = cq_entry_of(physical, view) {
                let queue = queues.get_or_create(view.topic, queue_id);
                let _ = queue.reserve();
                if let Err((got, want)) = queue.push(queue_offset, entry) {
                    log::error!(
                        "record at {physical} of {}:{queue_id} has queue offset {got}, expected {want}; skipped",
                        view.topic
                    );
                } else {
                    rebuilt += 1;
                }
            }
        })
        .await?;
        log::info!(
            "store {}: recovered {rebuilt} messages, log end {}",
            config.dir.display(),
            log.reserved_end()
        );
        let offsets =
            ConsumerOffsets::load(&config.dir.join("consumerOffset.json")).map_err(|source| {
                CommitLogError::Io {
                    path: config.dir.join("consumerOffset.json"),
                    source,
                }
            })?;
        Ok(Rc::new(Store {
            config,
            log,
            queues: RefCell::new(queues),
            dispatch: RefCell::new(VecDeque::new()),
            arrived: RefCell::new(BTreeSet::new()),
            arrival: Signal::default(),
            offsets: RefCell::new(offsets),
        }))
    }

    pub fn log(&self) -> &Rc<CommitLog> {
        &self.log
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
            let (_, end) = match self.log.write_pending().await {
                Ok(range) => range,
                Err(e) => {
                    log::error!("store {}: {e}", self.config.dir.display());
                    return;
                }
            };
            let mut queues = self.queues.borrow_mut();
            let mut dispatch = self.dispatch.borrow_mut();
            let mut arrived = self.arrived.borrow_mut();
            while dispatch.front().is_some_and(|d| d.end <= end) {
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

    /// Reads one record's store timestamp (for SEARCH_OFFSET_BY_TIMESTAMP and friends).
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

    /// Drains pending appends to disk and syncs: the last step of a clean shutdown.
    pub async fn flush_all(&self) -> Result<(), CommitLogError> {
        let target = self.log.reserved_end();
        let _ = self.log.durable().wait_for(target).await;
        self.log.sync().await
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
