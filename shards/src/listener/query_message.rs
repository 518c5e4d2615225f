//! Looking messages up: VIEW_MESSAGE_BY_ID (33) by commit-log offset, the lookup behind
//! `queryMsgById` and every client's `viewMessage` (spec §4.11). Clients decode the
//! offsetMsgId to (store host, offset) and ask that address, which is this shard's own port.

use bytes::Bytes;

use crate::broker::Shard;
use crate::record::{self, RECORD_FIXED_BYTES_V4};
use crate::remarks;
use crate::remoting::headers::Fields;
use crate::remoting::{response, RemotingCommand};

pub fn view_by_id(shard: &Shard, cmd: &RemotingCommand) -> RemotingCommand {
    let offset = match Fields(&cmd.ext_fields).i64("offset") {
        Ok(o) => o,
        Err(e) => {
            return RemotingCommand::response(response::SYSTEM_ERROR, cmd.opaque)
                .with_remark(e.to_string())
        }
    };
    match record_at(shard, offset) {
        Some(bytes) => RemotingCommand::response(response::SUCCESS, cmd.opaque).with_body(bytes),
        None => RemotingCommand::response(response::SYSTEM_ERROR, cmd.opaque)
            .with_remark(remarks::no_message_at_offset(offset)),
    }
}

/// The stored record that starts at `offset`, if one does: its size must be sane, it must
/// decode, and it must say it was written at `offset` (so an offset inside another record, or
/// in a segment's blank tail, finds nothing).
pub(crate) fn record_at(shard: &Shard, offset: i64) -> Option<Bytes> {
    let offset = u64::try_from(offset).ok()?;
    let log = shard.store.log();
    let size = log.with_bytes(offset, 4, |b| {
        i32::from_be_bytes(b.try_into().expect("4 bytes"))
    })?;
    let size = usize::try_from(size).ok()?;
    if size < RECORD_FIXED_BYTES_V4 || size > shard.store.record_bytes_max() {
        return None;
    }
    log.with_bytes(offset, size, |bytes| {
        let view = record::decode(bytes).ok()?;
        (view.physical_offset == offset as i64).then(|| Bytes::copy_from_slice(bytes))
    })?
}
