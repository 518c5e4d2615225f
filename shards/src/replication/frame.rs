//! Frames of the replication stream between a master shard and its slave shard. Pure.
//!
//! `length u32 · kind u8 · body · crc32c u32`, big-endian; `length` counts kind, body and crc,
//! and the crc covers kind and body. A frame whose crc does not match is never applied: the
//! slave drops the connection and fetches again from its own log end.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::epochs::Epoch;

/// "PTHA": the first bytes of a hello.
pub const MAGIC: u32 = 0x5054_4841;
pub const VERSION: u16 = 2;
/// The largest frame either side accepts: a data frame carries at most `CHUNK_BYTES_MAX` of log.
pub const FRAME_BYTES_MAX: usize = CHUNK_BYTES_MAX + 64;
/// Log bytes in one data frame, at most (whole entries only, so one entry may exceed the
/// target size a chunk is cut at, never this).
pub const CHUNK_BYTES_MAX: usize = 65 << 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// Slave → master, first: which shard it follows and where its log ends.
    Hello {
        broker_name: String,
        shard: u16,
        shard_count: u16,
        segment_bytes: u64,
        log_end: u64,
        /// The slave's `brokerId`: the controller's name for this replica.
        replica_id: u64,
        /// The epochs whose records the slave's log holds (`epochs::Epoch`), oldest first.
        epochs: Vec<Epoch>,
    },
    /// Master → slave: the stream starts at the slave's log end; the master's durable end and
    /// its epochs.
    Welcome { master_end: u64, epochs: Vec<Epoch> },
    /// Master → slave: why it will not stream (the connection closes after it).
    Refuse { reason: String },
    /// Master → slave: the slave's log holds records the master's does not; the two agree
    /// below `agreed`, where the slave must cut its log before it can follow.
    Diverged { agreed: u64 },
    /// Master → slave: the slave's log ends below `first`, where the master's log now starts
    /// (retention deleted what the slave lacks): the slave starts its log again at `first`,
    /// taking the master's `epochs`, and says hello again.
    StartAt { first: u64, epochs: Vec<Epoch> },
    /// Master → slave: log bytes at `start` (whole entries); empty as a heartbeat.
    Data {
        start: u64,
        master_end: u64,
        bytes: Bytes,
    },
    /// Master → slave: the segment holding `start` is closed by a blank marker there.
    Seal { start: u64 },
    /// Slave → master: its log is durable up to `durable`.
    Ack { durable: u64 },
    /// Master → slave: the shard's tables (topics, groups, consumer offsets, delay and
    /// transaction progress) as JSON, whenever they changed.
    State { json: Bytes },
}

const HELLO: u8 = 1;
const WELCOME: u8 = 2;
const REFUSE: u8 = 3;
const DATA: u8 = 4;
const SEAL: u8 = 5;
const ACK: u8 = 6;
const STATE: u8 = 7;
const DIVERGED: u8 = 8;
const START_AT: u8 = 9;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("replication frame of {0} bytes is over the limit")]
    TooLong(usize),
    #[error("replication frame crc32c mismatch: stored {stored:#x}, computed {computed:#x}")]
    Crc { stored: u32, computed: u32 },
    #[error("malformed replication frame: {0}")]
    Malformed(String),
}

impl Frame {
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(match self {
            Frame::Data { bytes, .. } => bytes.len() + 32,
            _ => 64,
        });
        out.put_u32(0);
        match self {
            Frame::Hello {
                broker_name,
                shard,
                shard_count,
                segment_bytes,
                log_end,
                replica_id,
                epochs,
            } => {
                out.put_u8(HELLO);
                out.put_u32(MAGIC);
                out.put_u16(VERSION);
                out.put_u16(*shard);
                out.put_u16(*shard_count);
                out.put_u64(*segment_bytes);
                out.put_u64(*log_end);
                out.put_u64(*replica_id);
                put_epochs(&mut out, epochs);
                out.put_slice(broker_name.as_bytes());
            }
            Frame::Welcome { master_end, epochs } => {
                out.put_u8(WELCOME);
                out.put_u64(*master_end);
                put_epochs(&mut out, epochs);
            }
            Frame::Refuse { reason } => {
                out.put_u8(REFUSE);
                out.put_slice(reason.as_bytes());
            }
            Frame::Diverged { agreed } => {
                out.put_u8(DIVERGED);
                out.put_u64(*agreed);
            }
            Frame::StartAt { first, epochs } => {
                out.put_u8(START_AT);
                out.put_u64(*first);
                put_epochs(&mut out, epochs);
            }
            Frame::Data {
                start,
                master_end,
                bytes,
            } => {
                out.put_u8(DATA);
                out.put_u64(*start);
                out.put_u64(*master_end);
                out.put_slice(bytes);
            }
            Frame::Seal { start } => {
                out.put_u8(SEAL);
                out.put_u64(*start);
            }
            Frame::Ack { durable } => {
                out.put_u8(ACK);
                out.put_u64(*durable);
            }
            Frame::State { json } => {
                out.put_u8(STATE);
                out.put_slice(json);
            }
        }
        let crc = crc32c::crc32c(&out[4..]);
        out.put_u32(crc);
        let len = (out.len() - 4) as u32;
        out[..4].copy_from_slice(&len.to_be_bytes());
        out.freeze()
    }

    /// Decodes the frame at the start of `buf`: `Ok(None)` while it is incomplete, else the
    /// frame and the bytes it took.
    pub fn decode(buf: &[u8]) -> Result<Option<(Frame, usize)>, FrameError> {
        if buf.len() < 4 {
            return Ok(None);
        }
        let len = u32::from_be_bytes(buf[..4].try_into().expect("4 bytes")) as usize;
        if len > FRAME_BYTES_MAX {
            return Err(FrameError::TooLong(len));
        }
        if len < 5 {
            return Err(FrameError::Malformed(format!("length {len}")));
        }
        if buf.len() < 4 + len {
            return Ok(None);
        }
        let inner = &buf[4..4 + len - 4];
        let stored = u32::from_be_bytes(buf[len..4 + len].try_into().expect("4 bytes"));
        let computed = crc32c::crc32c(inner);
        if stored != computed {
            return Err(FrameError::Crc { stored, computed });
        }
        let frame = Self::decode_body(inner[0], &inner[1..])?;
        Ok(Some((frame, 4 + len)))
    }

    fn decode_body(kind: u8, mut body: &[u8]) -> Result<Frame, FrameError> {
        let short = |what: &str| FrameError::Malformed(format!("{what} frame is too short"));
        let text = |b: &[u8]| {
            String::from_utf8(b.to_vec()).map_err(|_| FrameError::Malformed("not UTF-8".into()))
        };
        Ok(match kind {
            HELLO => {
                if body.len() < 36 {
                    return Err(short("hello"));
                }
                let magic = body.get_u32();
                let version = body.get_u16();
                if magic != MAGIC || version != VERSION {
                    return Err(FrameError::Malformed(format!(
                        "hello magic {magic:#x} version {version}, expected {MAGIC:#x} version {VERSION}"
                    )));
                }
                let (shard, shard_count) = (body.get_u16(), body.get_u16());
                let (segment_bytes, log_end, replica_id) =
                    (body.get_u64(), body.get_u64(), body.get_u64());
                let epochs = get_epochs(&mut body)?;
                Frame::Hello {
                    shard,
                    shard_count,
                    segment_bytes,
                    log_end,
                    replica_id,
                    epochs,
                    broker_name: text(body)?,
                }
            }
            WELCOME if body.len() >= 10 => {
                let master_end = body.get_u64();
                let epochs = get_epochs(&mut body)?;
                if !body.is_empty() {
                    return Err(FrameError::Malformed("welcome has trailing bytes".into()));
                }
                Frame::Welcome { master_end, epochs }
            }
            START_AT if body.len() >= 10 => {
                let first = body.get_u64();
                let epochs = get_epochs(&mut body)?;
                if !body.is_empty() {
                    return Err(FrameError::Malformed("start-at has trailing bytes".into()));
                }
                Frame::StartAt { first, epochs }
            }
            REFUSE => Frame::Refuse {
                reason: text(body)?,
            },
            DATA if body.len() >= 16 => Frame::Data {
                start: body.get_u64(),
                master_end: body.get_u64(),
                bytes: Bytes::copy_from_slice(body),
            },
            SEAL if body.len() == 8 => Frame::Seal {
                start: body.get_u64(),
            },
            DIVERGED if body.len() == 8 => Frame::Diverged {
                agreed: body.get_u64(),
            },
            ACK if body.len() == 8 => Frame::Ack {
                durable: body.get_u64(),
            },
            STATE => Frame::State {
                json: Bytes::copy_from_slice(body),
            },
            WELCOME | START_AT | DATA | SEAL | ACK | DIVERGED => return Err(short("fixed-size")),
            other => return Err(FrameError::Malformed(format!("unknown kind {other}"))),
        })
    }
}

/// `count u16 · (epoch u64 · start u64)*`.
fn put_epochs(out: &mut BytesMut, epochs: &[Epoch]) {
    out.put_u16(epochs.len() as u16);
    for e in epochs {
        out.put_u64(e.epoch);
        out.put_u64(e.start);
    }
}

fn get_epochs(body: &mut &[u8]) -> Result<Vec<Epoch>, FrameError> {
    let count = body.get_u16() as usize;
    if body.len() < count * 16 {
        return Err(FrameError::Malformed(format!(
            "{count} epochs do not fit in {} bytes",
            body.len()
        )));
    }
    Ok((0..count)
        .map(|_| Epoch {
            epoch: body.get_u64(),
            start: body.get_u64(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn samples() -> Vec<Frame> {
        vec![
            Frame::Hello {
                broker_name: "broker-a".into(),
                shard: 1,
                shard_count: 2,
                segment_bytes: 1 << 30,
                log_end: 12345,
                replica_id: 1,
                epochs: vec![],
            },
            Frame::Hello {
                broker_name: "broker-a".into(),
                shard: 0,
                shard_count: 1,
                segment_bytes: 1 << 20,
                log_end: 99,
                replica_id: 2,
                epochs: vec![
                    Epoch { epoch: 1, start: 0 },
                    Epoch {
                        epoch: 3,
                        start: 40,
                    },
                ],
            },
            Frame::Welcome {
                master_end: 99,
                epochs: vec![],
            },
            Frame::Welcome {
                master_end: 99,
                epochs: vec![Epoch { epoch: 2, start: 7 }],
            },
            Frame::Refuse {
                reason: "shard count 2 is not 3".into(),
            },
            Frame::Data {
                start: 4096,
                master_end: 8192,
                bytes: Bytes::from_static(b"records"),
            },
            Frame::Data {
                start: 0,
                master_end: 0,
                bytes: Bytes::new(),
            },
            Frame::Seal { start: 1 << 30 },
            Frame::Diverged { agreed: 4096 },
            Frame::StartAt {
                first: 1 << 20,
                epochs: vec![Epoch { epoch: 2, start: 7 }],
            },
            Frame::Ack { durable: 7 },
            Frame::State {
                json: Bytes::from_static(b"{}"),
            },
        ]
    }

    #[test]
    fn every_frame_round_trips_and_a_prefix_is_incomplete() {
        for frame in samples() {
            let bytes = frame.encode();
            assert_eq!(
                Frame::decode(&bytes),
                Ok(Some((frame.clone(), bytes.len())))
            );
            for cut in 0..bytes.len() {
                assert_eq!(
                    Frame::decode(&bytes[..cut]),
                    Ok(None),
                    "{frame:?} cut at {cut}"
                );
            }
        }
    }

    #[test]
    fn a_flipped_bit_anywhere_after_the_length_is_caught() {
        for frame in samples() {
            let bytes = frame.encode();
            for i in 4..bytes.len() {
                for bit in [0x01u8, 0x80] {
                    let mut bad = bytes.to_vec();
                    bad[i] ^= bit;
                    assert!(
                        matches!(Frame::decode(&bad), Err(FrameError::Crc { .. })),
                        "{frame:?} byte {i} bit {bit:#x}"
                    );
                }
            }
        }
    }

    proptest! {
        #[test]
        fn decoding_random_bytes_never_panics(data in proptest::collection::vec(any::<u8>(), 0..256)) {
            if let Ok(Some((_, used))) = Frame::decode(&data) {
                prop_assert!(used <= data.len());
            }
        }
    }
}
