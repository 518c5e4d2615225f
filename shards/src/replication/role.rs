//! A shard's replication role as it changes at run time. Without a controller the role is
//! `brokerRole` for the life of the process. With one (`enableControllerMode`), a shard
//! starts as a slave that refuses writes and follows whichever replica the controller names;
//! when the controller names it, it records the new epoch durably and only then takes writes;
//! when the controller names another, it stops writing at once (it is fenced) and follows.

use std::cell::{Cell, RefCell};

use super::epochs::Epochs;
use crate::runtime::watermark::Watermark;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Takes writes (brokerId 0 in routes).
    Master,
    /// Named master by the controller; recording its epoch, not yet writing.
    Promoting,
    /// Follows a master, refuses writes.
    Slave,
}

pub struct Ha {
    /// `enableControllerMode`.
    pub controller: bool,
    /// `brokerId`: the replica's own id (routes show a master as 0).
    pub replica_id: i64,
    role: Cell<Role>,
    /// Rises at every role change, so tasks that act on a role notice it has ended.
    changes: Watermark,
    /// The epoch the controller last named, 0 without a controller.
    epoch: Cell<u64>,
    pub epochs: RefCell<Epochs>,
    /// The master's HA address as the controller or the name servers last named it.
    named_master: RefCell<Option<String>>,
    /// Whether this slave is following its master now (welcomed, stream open).
    following: Cell<bool>,
}

impl Ha {
    pub fn new(controller: bool, replica_id: i64, role: Role, epochs: Epochs) -> Ha {
        Ha {
            controller,
            replica_id,
            role: Cell::new(role),
            changes: Watermark::new(0),
            epoch: Cell::new(epochs.last_epoch()),
            epochs: RefCell::new(epochs),
            named_master: RefCell::new(None),
            following: Cell::new(false),
        }
    }

    pub fn role(&self) -> Role {
        self.role.get()
    }

    pub fn is_master(&self) -> bool {
        self.role.get() == Role::Master
    }

    pub fn is_slave(&self) -> bool {
        self.role.get() == Role::Slave
    }

    /// Whether this slave's stream from a live master is open.
    pub fn following(&self) -> bool {
        self.following.get()
    }

    pub fn set_following(&self, following: bool) {
        self.following.set(following);
    }

    pub fn epoch(&self) -> u64 {
        self.epoch.get()
    }

    pub fn set_epoch(&self, epoch: u64) {
        self.epoch.set(epoch);
    }

    /// The number of role changes so far.
    pub fn generation(&self) -> u64 {
        self.changes.get()
    }

    pub fn set_role(&self, role: Role) {
        if self.role.replace(role) != role {
            self.changes.advance(self.changes.get() + 1);
        }
    }

    /// Resolves once the role changed after `generation`.
    pub async fn changed_since(&self, generation: u64) {
        let _ = self.changes.wait_for(generation + 1).await;
    }

    /// The brokerId this shard registers with: its own (`brokerId`), or 0 as the master the
    /// controller elected.
    pub fn registered_id(&self) -> i64 {
        if self.controller && self.is_master() {
            0
        } else {
            self.replica_id
        }
    }

    /// Notes the master's HA address; true if it changed (which, under a controller, counts
    /// as a role change).
    pub fn name_master(&self, ha_addr: Option<&str>) -> bool {
        let mut named = self.named_master.borrow_mut();
        if named.as_deref() == ha_addr {
            return false;
        }
        *named = ha_addr.map(str::to_string);
        drop(named);
        if self.controller {
            // A slave following the old master stops, and follows the new one. (Without a
            // controller, a master named at registration is followed once the stream ends.)
            self.changes.advance(self.changes.get() + 1);
        }
        true
    }

    pub fn named_master(&self) -> Option<String> {
        self.named_master.borrow().clone()
    }
}
