//! The controllers' Raft log (raft-rs `Storage`), kept in memory and written whole to
//! `controller-raft.json` (fsynced, by rename) before anything it holds is acted on. Every
//! entry carries the controller's whole state, which is small and changes rarely (elections,
//! in-sync set changes), so a snapshot is simply the state at the last applied entry and the
//! log is cut behind it.

use std::cell::RefCell;
use std::rc::Rc;

use raft::prelude::{ConfState, Entry, HardState, Snapshot};
use raft::{GetEntriesContext, RaftState, Storage, StorageError};
use serde::{Deserialize, Serialize};

/// Applied entries kept behind a snapshot before the log is cut.
const KEEP_APPLIED: usize = 64;

/// The file's form: hard state, the snapshot (its index, term and state) and the entries
/// after it.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Saved {
    term: u64,
    vote: u64,
    commit: u64,
    snapshot_index: u64,
    snapshot_term: u64,
    /// The controller state at `snapshot_index` (JSON), empty before the first.
    snapshot_state: String,
    entries: Vec<SavedEntry>,
}

#[derive(Debug, Serialize, Deserialize)]
struct SavedEntry {
    index: u64,
    term: u64,
    /// The controller state this entry sets (JSON); empty for a leader's no-op.
    state: String,
}

struct Core {
    hard: HardState,
    conf: ConfState,
    snapshot_index: u64,
    snapshot_term: u64,
    snapshot_state: Vec<u8>,
    entries: Vec<Entry>,
    /// The last applied entry and the state it set: what a lagging peer is sent.
    applied: (u64, u64),
    applied_state: Vec<u8>,
}

impl Core {
    fn first_index(&self) -> u64 {
        self.snapshot_index + 1
    }

    fn last_index(&self) -> u64 {
        self.snapshot_index + self.entries.len() as u64
    }
}

/// A handle on the log: raft-rs holds one, the controller another.
#[derive(Clone)]
pub struct RaftLog(Rc<RefCell<Core>>);

impl RaftLog {
    /// The log saved in `bytes` (empty: a new one, whose state starts as `seed`), for a group
    /// of `voters`.
    pub fn load(bytes: &[u8], voters: Vec<u64>, seed: Vec<u8>) -> Result<RaftLog, String> {
        let saved: Saved = if bytes.is_empty() {
            Saved {
                snapshot_state: String::from_utf8(seed).map_err(|e| e.to_string())?,
                ..Saved::default()
            }
        } else {
            serde_json::from_slice(bytes).map_err(|e| e.to_string())?
        };
        let mut entries = Vec::with_capacity(saved.entries.len());
        for (expected, e) in (saved.snapshot_index + 1..).zip(saved.entries) {
            if e.index != expected {
                return Err(format!("entry {} follows {}", e.index, expected - 1));
            }
            entries.push(Entry {
                index: e.index,
                term: e.term,
                data: e.state.into_bytes().into(),
                ..Default::default()
            });
        }
        let hard = HardState {
            term: saved.term,
            vote: saved.vote,
            commit: saved.commit,
            ..Default::default()
        };
        let snapshot_state = saved.snapshot_state.into_bytes();
        Ok(RaftLog(Rc::new(RefCell::new(Core {
            hard,
            conf: ConfState::from((voters, vec![])),
            snapshot_index: saved.snapshot_index,
            snapshot_term: saved.snapshot_term,
            applied: (saved.snapshot_index, saved.snapshot_term),
            applied_state: snapshot_state.clone(),
            snapshot_state,
            entries,
        }))))
    }

    /// What the file holds.
    pub fn to_bytes(&self) -> Vec<u8> {
        let core = self.0.borrow();
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let saved = Saved {
            term: core.hard.term,
            vote: core.hard.vote,
            commit: core.hard.commit,
            snapshot_index: core.snapshot_index,
            snapshot_term: core.snapshot_term,
            snapshot_state: text(&core.snapshot_state),
            entries: core
                .entries
                .iter()
                .map(|e| SavedEntry {
                    index: e.index,
                    term: e.term,
                    state: text(&e.data),
                })
                .collect(),
        };
        serde_json::to_vec(&saved).expect("the raft log serializes")
    }

    /// The state of the snapshot the log starts from (the seed in a new log).
    pub fn snapshot_state(&self) -> Vec<u8> {
        self.0.borrow().snapshot_state.clone()
    }

    /// The state the last applied entry (or the snapshot) set.
    pub fn applied_state(&self) -> Vec<u8> {
        self.0.borrow().applied_state.clone()
    }

    /// Appends what the leader sent, replacing any entries from `ents[0].index` on.
    pub fn append(&self, ents: &[Entry]) {
        let Some(first) = ents.first() else {
            return;
        };
        let mut core = self.0.borrow_mut();
        assert!(
            first.index >= core.first_index() && first.index <= core.last_index() + 1,
            "raft entries {} onward do not fit a log of {}..={}",
            first.index,
            core.first_index(),
            core.last_index()
        );
        let keep = (first.index - core.first_index()) as usize;
        core.entries.truncate(keep);
        core.entries.extend_from_slice(ents);
    }

    pub fn set_hard_state(&self, hard: &HardState) {
        self.0.borrow_mut().hard = hard.clone();
    }

    pub fn set_commit(&self, commit: u64) {
        self.0.borrow_mut().hard.commit = commit;
    }

    /// Replaces the log with the leader's snapshot.
    pub fn apply_snapshot(&self, snapshot: &Snapshot) {
        let meta = snapshot.get_metadata();
        let mut core = self.0.borrow_mut();
        core.snapshot_index = meta.index;
        core.snapshot_term = meta.term;
        core.snapshot_state = snapshot.data.to_vec();
        core.entries.clear();
        core.hard.term = core.hard.term.max(meta.term);
        core.hard.commit = meta.index;
        core.applied = (meta.index, meta.term);
        core.applied_state = core.snapshot_state.clone();
    }

    /// Notes `entry` applied; the state it set, if it set one. Cuts the log behind it once
    /// enough applied entries piled up.
    pub fn applied(&self, entry: &Entry) {
        let mut core = self.0.borrow_mut();
        core.applied = (entry.index, entry.term);
        if !entry.data.is_empty() {
            core.applied_state = entry.data.to_vec();
        }
        let behind = entry.index.saturating_sub(core.snapshot_index) as usize;
        if behind > KEEP_APPLIED {
            core.entries.drain(..behind);
            core.snapshot_index = entry.index;
            core.snapshot_term = entry.term;
            core.snapshot_state = core.applied_state.clone();
        }
    }
}

impl Storage for RaftLog {
    fn initial_state(&self) -> raft::Result<RaftState> {
        let core = self.0.borrow();
        Ok(RaftState::new(core.hard.clone(), core.conf.clone()))
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        let core = self.0.borrow();
        if low < core.first_index() {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if high > core.last_index() + 1 {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        let from = (low - core.first_index()) as usize;
        let to = (high - core.first_index()) as usize;
        let mut ents = core.entries[from..to].to_vec();
        raft::util::limit_size(&mut ents, max_size.into());
        Ok(ents)
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        let core = self.0.borrow();
        if idx == core.snapshot_index {
            return Ok(core.snapshot_term);
        }
        if idx < core.first_index() {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if idx > core.last_index() {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        Ok(core.entries[(idx - core.first_index()) as usize].term)
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.0.borrow().first_index())
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.0.borrow().last_index())
    }

    fn snapshot(&self, request_index: u64, _to: u64) -> raft::Result<Snapshot> {
        let core = self.0.borrow();
        let (index, term) = core.applied;
        if index < request_index {
            return Err(raft::Error::Store(
                StorageError::SnapshotTemporarilyUnavailable,
            ));
        }
        let mut snapshot = Snapshot {
            data: core.applied_state.clone().into(),
            ..Default::default()
        };
        let meta = snapshot.mut_metadata();
        meta.index = index;
        meta.term = term;
        meta.set_conf_state(core.conf.clone());
        Ok(snapshot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(index: u64, term: u64, state: &str) -> Entry {
        Entry {
            index,
            term,
            data: state.as_bytes().to_vec().into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_log_survives_its_file_and_cuts_applied_entries_behind_a_snapshot() {
        let log = RaftLog::load(&[], vec![1, 2, 3], b"{\"seed\":1}".to_vec()).unwrap();
        assert_eq!(
            log.initial_state().unwrap().conf_state.voters,
            vec![1, 2, 3]
        );
        log.append(&[entry(1, 1, ""), entry(2, 1, "a"), entry(3, 1, "b")]);
        // A new leader replaces what its predecessor never committed.
        log.append(&[entry(3, 2, "c"), entry(4, 2, "d")]);
        let hard = HardState {
            term: 2,
            vote: 3,
            commit: 4,
            ..Default::default()
        };
        log.set_hard_state(&hard);
        let again = RaftLog::load(&log.to_bytes(), vec![1, 2, 3], Vec::new()).unwrap();
        assert_eq!(again.last_index().unwrap(), 4);
        assert_eq!(again.term(3).unwrap(), 2);
        assert_eq!(again.initial_state().unwrap().hard_state, hard);
        let ents = again.entries(2, 5, None, GetEntriesContext::empty(false));
        let states: Vec<_> = ents.unwrap().iter().map(|e| e.data.to_vec()).collect();
        assert_eq!(states, vec![b"a".to_vec(), b"c".to_vec(), b"d".to_vec()]);
        assert_eq!(again.snapshot_state(), b"{\"seed\":1}");

        for i in 5..=100 {
            again.append(&[entry(i, 2, &format!("s{i}"))]);
        }
        again.applied(&entry(100, 2, "s100"));
        assert_eq!(again.first_index().unwrap(), 101);
        assert!(again
            .entries(50, 51, None, GetEntriesContext::empty(false))
            .is_err());
        let snap = again.snapshot(100, 2).unwrap();
        assert_eq!(
            (snap.get_metadata().index, snap.data.to_vec()),
            (100, b"s100".to_vec())
        );
        let reloaded = RaftLog::load(&again.to_bytes(), vec![1, 2, 3], Vec::new()).unwrap();
        assert_eq!(reloaded.snapshot_state(), b"s100");
        assert_eq!(reloaded.term(100).unwrap(), 2);
    }
}
