//! A shard's epochs: which controller term wrote which part of its log. Each time the
//! controller elects a master it names a new epoch; the new master records `(epoch, start)`,
//! `start` being its log end when it took over, before it accepts a write. A slave takes its
//! master's epochs. Two replicas that hold the same `(epoch, start)` hold the same bytes from
//! `start` for as far as both logs go in that epoch, since one master wrote them; so a
//! slave's log is a prefix of its master's exactly when every epoch the slave holds is the
//! master's too and the slave's log does not run past the end of its last epoch on the master.
//! Pure, apart from `load`/`save`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Epoch {
    pub epoch: u64,
    /// The log offset of the epoch's first record.
    pub start: u64,
}

/// Epochs in order, each starting at or after the one before.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Epochs {
    entries: Vec<Epoch>,
}

impl Epochs {
    pub fn new(entries: Vec<Epoch>) -> Epochs {
        Epochs { entries }
    }

    pub fn path(store_dir: &Path) -> PathBuf {
        store_dir.join("epochs.json")
    }

    /// The shard's epochs; none for a store that never ran under a controller. Blocking: for
    /// start-up.
    #[allow(
        clippy::disallowed_methods,
        reason = "start-up, before the shard serves"
    )]
    pub fn load(store_dir: &Path) -> Result<Epochs, String> {
        let path = Self::path(store_dir);
        match std::fs::read(&path) {
            Ok(bytes) => {
                let entries: Vec<Epoch> = serde_json::from_slice(&bytes)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                if entries
                    .windows(2)
                    .any(|w| w[1].epoch <= w[0].epoch || w[1].start < w[0].start)
                {
                    return Err(format!("{}: epochs out of order", path.display()));
                }
                Ok(Epochs { entries })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Epochs::default()),
            Err(e) => Err(format!("{}: {e}", path.display())),
        }
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(&self.entries).expect("epochs serialize")
    }

    pub fn entries(&self) -> &[Epoch] {
        &self.entries
    }

    /// The newest epoch this replica knows, 0 if none.
    pub fn last_epoch(&self) -> u64 {
        self.entries.last().map_or(0, |e| e.epoch)
    }

    /// The epochs whose records a log ending at `log_end` holds: those starting before it.
    pub fn held(&self, log_end: u64) -> Vec<Epoch> {
        self.entries
            .iter()
            .copied()
            .filter(|e| e.start < log_end)
            .collect()
    }

    /// Becomes master of `epoch` with its log ending at `log_end`: epochs this log never
    /// reached are forgotten, and the new one starts there. An epoch already begun keeps its
    /// start.
    pub fn begin(&mut self, epoch: u64, log_end: u64) {
        if self.last_epoch() == epoch {
            return; // elected again in the epoch it already began (a restart)
        }
        self.entries
            .retain(|e| e.start < log_end && e.epoch < epoch);
        self.entries.push(Epoch {
            epoch,
            start: log_end,
        });
    }

    /// A slave takes its master's epochs once its log was found to be a prefix of the
    /// master's; those its log has not reached yet are held from when it does.
    pub fn adopt(&mut self, master: &[Epoch]) {
        self.entries = master.to_vec();
    }

    /// Whether a slave log ending at `slave_end`, holding the epochs `slave`, is a prefix of
    /// this master's log ending at `master_end`; if not, the offset the two logs agree up to.
    pub fn check_follower(
        &self,
        master_end: u64,
        slave: &[Epoch],
        slave_end: u64,
    ) -> Result<(), Divergence> {
        let Some(last) = slave.last() else {
            return Ok(()); // a slave from before any controller: offsets alone decide
        };
        let common = |upto: usize| {
            slave[..upto]
                .iter()
                .rev()
                .find_map(|e| self.end_of(e).map(|end| end.min(slave_end)))
                .unwrap_or(0)
        };
        for (i, e) in slave.iter().enumerate() {
            if self.end_of(e).is_none() {
                return Err(Divergence {
                    agreed: common(i).min(e.start),
                    epoch: e.epoch,
                });
            }
        }
        let end = self.end_of(last).expect("checked above").min(master_end);
        if slave_end > end {
            return Err(Divergence {
                agreed: end,
                epoch: last.epoch,
            });
        }
        Ok(())
    }

    /// Where `e` ends in this log (the next epoch's start), `u64::MAX` if it is the newest;
    /// `None` if this log has no such epoch.
    fn end_of(&self, e: &Epoch) -> Option<u64> {
        let i = self.entries.iter().position(|m| m == e)?;
        Some(self.entries.get(i + 1).map_or(u64::MAX, |next| next.start))
    }
}

/// A slave's log is not a prefix of its master's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Divergence {
    /// The two logs hold the same bytes below this offset.
    pub agreed: u64,
    /// The slave's epoch where they part.
    pub epoch: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn epochs(list: &[(u64, u64)]) -> Epochs {
        Epochs::new(
            list.iter()
                .map(|&(epoch, start)| Epoch { epoch, start })
                .collect(),
        )
    }

    #[test]
    fn a_slave_behind_in_the_masters_epochs_is_a_prefix() {
        let master = epochs(&[(1, 0), (2, 500)]);
        assert_eq!(master.check_follower(900, &[], 0), Ok(()));
        assert_eq!(
            master.check_follower(900, &epochs(&[(1, 0)]).entries, 400),
            Ok(())
        );
        assert_eq!(
            master.check_follower(900, &epochs(&[(1, 0)]).entries, 500),
            Ok(())
        );
        assert_eq!(master.check_follower(900, &master.held(700), 700), Ok(()));
        assert_eq!(master.check_follower(900, &master.held(900), 900), Ok(()));
    }

    #[test]
    fn an_old_master_that_wrote_past_the_new_epochs_start_diverges_there() {
        // Master of epoch 1 wrote to 620; its slave took over at 500 as epoch 2.
        let new_master = epochs(&[(1, 0), (2, 500)]);
        let old = epochs(&[(1, 0)]);
        assert_eq!(
            new_master.check_follower(900, &old.held(620), 620),
            Err(Divergence {
                agreed: 500,
                epoch: 1
            })
        );
        // A slave past the master's own end is never a prefix either.
        assert_eq!(
            new_master.check_follower(900, &new_master.held(950), 950),
            Err(Divergence {
                agreed: 900,
                epoch: 2
            })
        );
    }

    #[test]
    fn an_epoch_the_master_never_had_diverges_at_its_start() {
        // Epoch 2 went to a replica whose records the master (elected at 3) never got.
        let master = epochs(&[(1, 0), (3, 400)]);
        let other = epochs(&[(1, 0), (2, 450)]);
        assert_eq!(
            master.check_follower(900, &other.held(600), 600),
            Err(Divergence {
                agreed: 400,
                epoch: 2
            })
        );
    }

    #[test]
    fn beginning_an_epoch_forgets_those_the_log_never_reached() {
        let mut slave = epochs(&[(1, 0)]);
        slave.adopt(&epochs(&[(1, 0), (2, 500)]).entries);
        assert_eq!(slave.held(300), epochs(&[(1, 0)]).entries);
        slave.begin(3, 300);
        assert_eq!(slave, epochs(&[(1, 0), (3, 300)]));
        assert_eq!(slave.last_epoch(), 3);
    }
}
