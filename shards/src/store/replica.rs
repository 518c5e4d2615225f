//! A slave's side of replication: appending the log bytes its master streamed, at the same
//! offsets, checked whole before anything is taken.

use super::{cq_entry_of, Dispatch, Store};

impl Store {
    /// Appends log bytes a master streamed (a slave's replica), at the same offset as on the
    /// master: whole entries of one segment starting at this log's end, each with a valid
    /// crc32c trailer, whose queue offsets continue this store's queues. Anything else is
    /// refused whole and changes nothing. Returns the new log end.
    pub fn append_replica(&self, start: u64, bytes: &[u8]) -> Result<u64, String> {
        let end = self.log.reserved_end();
        if start != end {
            return Err(format!(
                "replica bytes at {start}, but the log ends at {end}"
            ));
        }
        let segment_bytes = self.config.segment_bytes;
        if start % segment_bytes + bytes.len() as u64 > segment_bytes {
            return Err(format!(
                "replica bytes at {start} ({} bytes) cross a segment end",
                bytes.len()
            ));
        }
        // First pass: every entry valid, every queue offset the next one.
        let mut next: std::collections::HashMap<(String, u32), u64> = Default::default();
        let mut wrong = None;
        let scan = crate::commitlog::recovery::scan_segment(bytes, start, |physical, view| {
            let Some((queue_id, queue_offset, _)) = cq_entry_of(physical, view) else {
                return;
            };
            let expected = next
                .entry((view.topic.to_string(), queue_id))
                .or_insert_with(|| {
                    let queues = self.queues.borrow();
                    let queue = queues.get(view.topic, queue_id as i32);
                    let idle = |q: &crate::consume_queue::ConsumeQueue| {
                        q.entries().is_empty() && q.next_offset() == q.max_offset()
                    };
                    match queue.map(|q| (q.next_offset(), idle(q))) {
                        // What an empty queue lacks was deleted by the master's retention
                        // (or this log started again past it): it begins where the master's does.
                        Some((next, true)) if queue_offset >= next => queue_offset,
                        None => queue_offset,
                        Some((next, _)) => next,
                    }
                });
            if *expected != queue_offset && wrong.is_none() {
                wrong = Some(format!(
                    "record at {physical} has queue offset {queue_offset} of {}:{queue_id}, expected {expected}",
                    view.topic
                ));
            }
            *expected = queue_offset + 1;
        });
        if scan.valid_bytes != bytes.len() || scan.end != crate::commitlog::recovery::End::Full {
            return Err(format!(
                "replica bytes at {start}: entry at {} is not valid ({:?})",
                start + scan.valid_bytes as u64,
                scan.end
            ));
        }
        if let Some(reason) = wrong {
            return Err(reason);
        }
        // Second pass: append, index, and dispatch once durable, as for a send.
        let new_end = self.log.append_replica(start, bytes);
        let mut queues = self.queues.borrow_mut();
        let mut index = self.index.borrow_mut();
        let mut dispatch = self.dispatch.borrow_mut();
        crate::commitlog::recovery::scan_segment(bytes, start, |physical, view| {
            index.add(view.topic, view.properties, physical, view.store_timestamp);
            let Some((queue_id, queue_offset, entry)) = cq_entry_of(physical, view) else {
                return;
            };
            let queue = queues.get_or_create(view.topic, queue_id);
            if queue.next_offset() < queue_offset {
                queue.start_at(queue_offset);
            }
            let reserved = queue.reserve();
            debug_assert_eq!(reserved, queue_offset);
            dispatch.push_back(Dispatch {
                topic: view.topic.to_string(),
                queue_id,
                queue_offset,
                end: physical + crate::commitlog::entry::entry_bytes(view.total_size) as u64,
                entry,
            });
        });
        Ok(new_end)
    }

    /// Starts this slave's log again at `first`, where its master's now starts: everything
    /// below goes (segments, consume-queue entries, index files), committed offsets move up
    /// to their queue's new first offset, and the queues continue at the master's offsets.
    /// All of it is older than what the master keeps, so its own retention would delete it.
    pub async fn restart_replica_at(&self, first: u64) -> Result<(), String> {
        // Entries of records already written reach their queues first.
        while !self.dispatch.borrow().is_empty() {
            glommio::timer::sleep(std::time::Duration::from_millis(5)).await;
        }
        let files = self.take_queue_files().await;
        let doomed = match self.log.restart_at(first) {
            Ok(doomed) => doomed,
            Err(e) => {
                self.queue_files.replace(Some(files));
                return Err(e);
            }
        };
        for path in &doomed {
            if let Err(e) = glommio::io::remove(path).await {
                log::error!("store: removing {}: {e}", path.display());
            }
        }
        log::info!(
            "store {}: log starts again at {first}, its master's first offset: {} segments deleted",
            self.config.dir.display(),
            doomed.len()
        );
        let files = self.forget_below(files).await;
        self.queue_files.replace(Some(files));
        Ok(())
    }

    /// Closes the current segment with a blank marker at `start`, as the master's log did.
    pub fn seal_replica(&self, start: u64) -> Result<u64, String> {
        self.log.seal_replica(start)
    }
}
