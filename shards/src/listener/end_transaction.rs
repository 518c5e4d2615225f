//! END_TRANSACTION (37), spec §4.9: a producer's outcome for a half message, after its local
//! transaction or when answering a check-back. Usually oneway; when it is not, the answer
//! waits until what it wrote is durable (and, on a SYNC_MASTER, on the slave), as a send's
//! does.

use std::rc::Rc;

use crate::broker::transaction::{self, Outcome};
use crate::broker::{metadata, Shard};
use crate::listener::send_message::answer_stored;
use crate::net::Connection;
use crate::remoting::headers::{Fields, HeaderError};
use crate::remoting::{response, RemotingCommand};

/// `commitOrRollback` values (MessageSysFlag).
const NOT_TYPE: i32 = 0;
const COMMIT: i32 = 8;
const ROLLBACK: i32 = 12;

pub fn handle(shard: &Shard, conn: &Rc<Connection>, cmd: &RemotingCommand) {
    let since = std::time::Instant::now();
    let reply = |code: i32| RemotingCommand::response(code, cmd.opaque);
    let f = Fields(&cmd.ext_fields);
    let parsed = (|| {
        Ok::<_, HeaderError>((
            f.str("producerGroup")?,
            f.i64("tranStateTableOffset")?,
            f.i64("commitLogOffset")?,
            f.i32("commitOrRollback")?,
        ))
    })();
    let result = match parsed {
        Err(e) => Err(e.to_string()),
        Ok((_, _, _, NOT_TYPE)) => {
            // The producer does not know yet ("UNKNOW"): a later check-back asks again.
            log::debug!("END_TRANSACTION with no outcome: {:?}", f.opt_str("msgId"));
            Ok(None)
        }
        Ok((group, half_offset, commit_log_offset, kind @ (COMMIT | ROLLBACK))) => {
            let outcome = if kind == COMMIT {
                Outcome::Commit
            } else {
                Outcome::Rollback
            };
            match u64::try_from(half_offset) {
                Ok(half_offset) => transaction::end(
                    shard,
                    group,
                    half_offset,
                    commit_log_offset,
                    outcome,
                    metadata::now_ms(),
                ),
                Err(_) => Err(format!("bad tranStateTableOffset {half_offset}")),
            }
        }
        Ok((_, _, _, other)) => Err(format!("commitOrRollback {other} is not 0, 8 or 12")),
    };
    if let Err(remark) = &result {
        log::warn!(
            "shard {}: END_TRANSACTION from {}: {remark}",
            shard.config.shard_id,
            conn.peer
        );
    }
    if cmd.is_oneway() {
        return;
    }
    match result {
        Ok(Some(end)) => answer_stored(shard, conn, reply(response::SUCCESS), end, since),
        Ok(None) => conn.send(&reply(response::SUCCESS)),
        Err(remark) => conn.send(&reply(response::SYSTEM_ERROR).with_remark(remark)),
    }
}
