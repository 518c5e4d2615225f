//! Consume-queue files and the checkpoint that says how far they are complete.
//!
//! Every second (and at shutdown) the shard appends new consume-queue units to their files,
//! fdatasyncs them, then records `consumeQueuesCompleteTo = X` in `<shard>/checkpoint`, where X
//! is no further than the commit log has reached the disk. Recovery loads the files, keeps the
//! units wholly below X and rebuilds the rest by scanning the log from X: a clean restart scans
//! nothing, a crash scans only what followed the last checkpoint. If the files and the log
//! disagree, recovery rebuilds every queue from the whole log.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use glommio::io::{BufferedFile, OpenOptions};
use serde::{Deserialize, Serialize};

use crate::consume_queue::file::{decode_units, encode_unit, UNIT_BYTES};
use crate::consume_queue::{ConsumeQueue, ConsumeQueues};

#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", default)]
pub struct Checkpoint {
    pub consume_queues_complete_to: u64,
    /// Each queue's end below `consume_queues_complete_to` (entries, counting those deleted):
    /// a file found shorter lost its tail, and the queues are rebuilt.
    pub queue_entries: BTreeMap<String, Vec<u64>>,
}

impl Checkpoint {
    /// The checkpoint for queues complete to `complete_to`.
    pub fn of(queues: &ConsumeQueues, complete_to: u64) -> Checkpoint {
        let queue_entries = queues
            .topics()
            .map(|(topic, list)| {
                let counts = list
                    .iter()
                    .map(|q| {
                        let below = q.entries().partition_point(|e| {
                            e.commit_log_offset + e.size as u64 <= complete_to
                        });
                        q.min_offset() + below as u64
                    })
                    .collect();
                (topic.clone(), counts)
            })
            .collect();
        Checkpoint {
            consume_queues_complete_to: complete_to,
            queue_entries,
        }
    }

    /// Why `queues` (as loaded) cannot be what this checkpoint recorded, if they cannot.
    pub fn contradiction(&self, queues: &ConsumeQueues) -> Option<String> {
        for (topic, counts) in &self.queue_entries {
            for (queue_id, want) in counts.iter().enumerate() {
                let have = queues
                    .get(topic, queue_id as i32)
                    .map_or(0, |q| q.max_offset());
                if have < *want {
                    return Some(format!("consume queue {topic}:{queue_id} has {have} entries on disk, the checkpoint recorded {want}"));
                }
            }
        }
        None
    }
}

pub fn checkpoint_path(dir: &Path) -> PathBuf {
    dir.join("checkpoint")
}

fn queue_path(dir: &Path, topic: &str, queue_id: u32) -> PathBuf {
    dir.join("consumequeue")
        .join(topic)
        .join(queue_id.to_string())
}

#[allow(
    clippy::disallowed_methods,
    reason = "start-up, before the shard serves"
)]
pub fn load_checkpoint(dir: &Path) -> Checkpoint {
    std::fs::read(checkpoint_path(dir))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// Loads every consume-queue file, keeping units wholly below `complete_to`, and truncates the
/// files to what was kept (the rest is rebuilt from the log and written again).
#[allow(
    clippy::disallowed_methods,
    reason = "start-up, before the shard serves"
)]
pub fn load_queues(dir: &Path, complete_to: u64) -> std::io::Result<ConsumeQueues> {
    let mut queues = ConsumeQueues::default();
    let root = dir.join("consumequeue");
    let Ok(topics) = std::fs::read_dir(&root) else {
        return Ok(queues);
    };
    for topic_dir in topics {
        let topic_dir = topic_dir?;
        let Some(topic) = topic_dir.file_name().to_str().map(str::to_string) else {
            continue;
        };
        for file in std::fs::read_dir(topic_dir.path())? {
            let file = file?;
            let Some(queue_id) = file
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            let bytes = std::fs::read(file.path())?;
            let (first, mut entries) = decode_units(&bytes, u64::MAX);
            entries.retain(|e| e.commit_log_offset + e.size as u64 <= complete_to);
            let keep = (first + entries.len() as u64) * UNIT_BYTES as u64;
            if keep != bytes.len() as u64 {
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(file.path())?
                    .set_len(keep)?;
            }
            let queue = ConsumeQueue::from_persisted(first, entries);
            queues.insert_loaded(&topic, queue_id, queue);
        }
    }
    Ok(queues)
}

/// Removes every consume-queue file and the checkpoint, before a full rebuild.
#[allow(
    clippy::disallowed_methods,
    reason = "start-up, before the shard serves"
)]
pub fn discard_all(dir: &Path) -> std::io::Result<()> {
    match std::fs::remove_dir_all(dir.join("consumequeue")) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    match std::fs::remove_file(checkpoint_path(dir)) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Open consume-queue files of one shard.
#[derive(Default)]
pub struct QueueFiles {
    files: HashMap<(String, u32), Rc<BufferedFile>>,
    /// Units punched out of each file so far (retention).
    punched: HashMap<(String, u32), u64>,
}

impl QueueFiles {
    async fn file(
        &mut self,
        dir: &Path,
        topic: &str,
        queue_id: u32,
    ) -> std::io::Result<Rc<BufferedFile>> {
        if let Some(f) = self.files.get(&(topic.to_string(), queue_id)) {
            return Ok(f.clone());
        }
        let path = queue_path(dir, topic, queue_id);
        let parent = path
            .parent()
            .expect("queue files live in a directory")
            .to_path_buf();
        #[allow(clippy::disallowed_methods, reason = "runs on the blocking pool")]
        let create = move || std::fs::create_dir_all(parent);
        glommio::executor().spawn_blocking(create).await?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .buffered_open(&path)
            .await?;
        let file = Rc::new(file);
        self.files
            .insert((topic.to_string(), queue_id), file.clone());
        Ok(file)
    }

    /// Punches the units below `first` out of a queue's file (their records were deleted),
    /// leaving a hole that reads as zeros: the file keeps each unit at its queue offset.
    pub async fn delete_units(
        &mut self,
        dir: &Path,
        topic: &str,
        queue_id: u32,
        first: u64,
    ) -> std::io::Result<()> {
        let done = self
            .punched
            .get(&(topic.to_string(), queue_id))
            .copied()
            .unwrap_or(0);
        if first <= done {
            return Ok(());
        }
        let file = self.file(dir, topic, queue_id).await?;
        let unit = UNIT_BYTES as u64;
        file.deallocate(done * unit, (first - done) * unit).await?;
        self.punched.insert((topic.to_string(), queue_id), first);
        Ok(())
    }

    /// Writes the units of `batch` (topic, queue, first unit index, units) and syncs the files.
    pub async fn write(
        &mut self,
        dir: &Path,
        batch: Vec<(String, u32, u64, Vec<u8>)>,
    ) -> std::io::Result<()> {
        let mut written = Vec::new();
        for (topic, queue_id, first, bytes) in batch {
            let file = self.file(dir, &topic, queue_id).await?;
            let len = bytes.len();
            let n = file.write_at(bytes, first * UNIT_BYTES as u64).await?;
            if n != len {
                return Err(std::io::Error::other(format!(
                    "short write to consume queue {topic}:{queue_id}"
                )));
            }
            written.push(file);
        }
        for file in written {
            file.fdatasync().await?;
        }
        Ok(())
    }
}

/// The units of every queue not yet on disk, as (topic, queue, first index, bytes, count).
pub fn collect_unpersisted(queues: &ConsumeQueues) -> Vec<(String, u32, u64, Vec<u8>)> {
    let mut out = Vec::new();
    for (topic, list) in queues.topics() {
        for (queue_id, queue) in list.iter().enumerate() {
            let (first, entries) = queue.unpersisted();
            if entries.is_empty() {
                continue;
            }
            let mut bytes = Vec::with_capacity(entries.len() * UNIT_BYTES);
            for e in entries {
                encode_unit(e, &mut bytes);
            }
            out.push((topic.clone(), queue_id as u32, first, bytes));
        }
    }
    out
}
