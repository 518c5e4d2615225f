//! Framing (spec §1.1): `total_len u32 · (ser_type u8 | hdr_len u24) · header · body`.
//!
//! `decode` delimits one frame and decodes it. A frame that can be delimited but whose header
//! is malformed comes back as [`Decoded::Malformed`] with its length, so the connection can
//! answer it and go on; a frame that cannot be delimited (too large, too short) is an `Err`,
//! and the connection must be closed.

use bytes::{BufMut, Bytes, BytesMut};

use super::command::{RemotingCommand, SerializeType};
use super::error::FrameError;
use super::{header_binary, header_json};

/// The 4-byte length prefix.
pub const LENGTH_PREFIX_BYTES: usize = 4;

#[derive(Debug)]
pub enum Decoded {
    /// More bytes are needed. `need` is the total frame size if known.
    Incomplete { need: Option<usize> },
    /// One command and the number of bytes it took.
    Command {
        command: RemotingCommand,
        frame_bytes: usize,
    },
    /// A delimited frame whose header could not be decoded.
    Malformed {
        error: FrameError,
        frame_bytes: usize,
    },
}

/// Decodes the first frame of `buf`. `frame_bytes_max` bounds `total_len` before anything is
/// buffered or allocated for it.
pub fn decode(buf: &Bytes, frame_bytes_max: u32) -> Result<Decoded, FrameError> {
    if buf.len() < LENGTH_PREFIX_BYTES {
        return Ok(Decoded::Incomplete { need: None });
    }
    let declared = u32::from_be_bytes(buf[..4].try_into().expect("4 bytes"));
    if declared > frame_bytes_max {
        return Err(FrameError::TooLarge {
            declared,
            limit: frame_bytes_max,
        });
    }
    if declared < 4 {
        return Err(FrameError::TooShort { declared });
    }
    let frame_bytes = LENGTH_PREFIX_BYTES + declared as usize;
    if buf.len() < frame_bytes {
        return Ok(Decoded::Incomplete {
            need: Some(frame_bytes),
        });
    }
    let frame = buf.slice(LENGTH_PREFIX_BYTES..frame_bytes);
    Ok(match decode_frame_body(&frame) {
        Ok(command) => Decoded::Command {
            command,
            frame_bytes,
        },
        Err(error) => Decoded::Malformed { error, frame_bytes },
    })
}

/// Decodes a frame without its length prefix.
fn decode_frame_body(frame: &Bytes) -> Result<RemotingCommand, FrameError> {
    let word = u32::from_be_bytes(frame[..4].try_into().expect("caller checked 4 bytes"));
    let serialize = (word >> 24) as u8;
    let header_bytes = word & 0x00FF_FFFF;
    let available = frame.len() as u32 - 4;
    if header_bytes > available {
        return Err(FrameError::HeaderOverrun {
            header: header_bytes,
            frame: frame.len() as u32,
        });
    }
    let header_end = 4 + header_bytes as usize;
    let header = &frame[4..header_end];
    let body = frame.slice(header_end..);
    match serialize {
        0 => header_json::decode(header, body),
        1 => header_binary::decode(header, body),
        other => Err(FrameError::SerializeType(other)),
    }
}

/// Appends `cmd` as a complete frame to `out`.
pub fn encode(cmd: &RemotingCommand, serialize: SerializeType, out: &mut BytesMut) {
    let mut header = Vec::with_capacity(256);
    match serialize {
        SerializeType::Json => header_json::encode(cmd, &mut header),
        SerializeType::RocketMq => header_binary::encode(cmd, &mut header),
    }
    assert!(
        header.len() < 1 << 24,
        "header {} does not fit 24 bits",
        header.len()
    );
    let total = 4 + header.len() + cmd.body.len();
    out.reserve(LENGTH_PREFIX_BYTES + total);
    out.put_u32(total as u32);
    out.put_u32(((serialize as u32) << 24) | header.len() as u32);
    out.put_slice(&header);
    out.put_slice(&cmd.body);
}

/// `cmd` as a JSON frame of its own.
pub fn encode_to_bytes(cmd: &RemotingCommand) -> Bytes {
    let mut out = BytesMut::new();
    encode(cmd, SerializeType::Json, &mut out);
    out.freeze()
}

/// Fuzz entry: decoding arbitrary bytes never panics, and a decoded command re-encodes.
pub fn fuzz_remoting_frame(data: &[u8]) {
    let buf = Bytes::copy_from_slice(data);
    if let Ok(Decoded::Command { command, .. }) = decode(&buf, 1 << 20) {
        let mut out = BytesMut::new();
        encode(&command, SerializeType::Json, &mut out);
        encode(&command, SerializeType::RocketMq, &mut out);
    }
}
