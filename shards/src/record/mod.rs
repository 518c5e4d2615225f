//! The stored message record in RocketMQ's V1 layout (spec §7.1), message properties (§4.1.1),
//! tag hashes (§6.6), message ids (§6.4) and the batch body clients send (§4.1.2).
//!
//! Pure: slices in, values out. The commit log stores these records byte for byte and a pull
//! response is those bytes, so what `encode` writes is what every client decodes.

mod batch;
mod properties;

pub use batch::{encode_batch_item, BatchItem, BatchIter};
pub use properties::{decode_properties, encode_properties, find_property, property, Properties};

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// V1 magic: the topic length is one byte. Every client reads it (spec §7.1).
pub const MAGIC_V1: i32 = 0xDAA320A7_u32 as i32;
/// V2 magic: two-byte topic length. Decoded, never written.
pub const MAGIC_V2: i32 = 0xDAA320AB_u32 as i32;

/// sysFlag bits (spec §6.2).
pub mod sys_flag {
    pub const COMPRESSED: i32 = 0x1;
    pub const MULTI_TAGS: i32 = 0x2;
    pub const TRANSACTION_PREPARED: i32 = 0x4;
    pub const TRANSACTION_COMMIT: i32 = 0x8;
    pub const TRANSACTION_ROLLBACK: i32 = 0xC;
    pub const BORNHOST_V6: i32 = 0x10;
    pub const STOREHOST_V6: i32 = 0x20;
}

/// Bytes of a V1 record with IPv4 hosts, before body, topic and properties.
pub const RECORD_FIXED_BYTES_V4: usize = 91;
/// Properties carry an i16 length.
pub const PROPERTIES_BYTES_MAX: usize = i16::MAX as usize;
/// The topic carries a one-byte length in V1 records.
pub const TOPIC_BYTES_MAX: usize = 127;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("record truncated: {need} bytes needed, {have} present")]
    Truncated { need: usize, have: usize },
    #[error("record size {0} is impossible")]
    BadSize(i64),
    #[error("unknown record magic {0:#x}")]
    BadMagic(i32),
    #[error("record fields add up to {fields} bytes but the record says {total}")]
    SizeMismatch { fields: usize, total: usize },
    #[error("topic is not UTF-8")]
    TopicNotUtf8,
    #[error("properties are {0} bytes, over the 32767-byte limit")]
    PropertiesTooLong(usize),
    #[error("topic is {0} bytes, over the {TOPIC_BYTES_MAX}-byte limit")]
    TopicTooLong(usize),
}

/// What the broker knows about a message when it stores it.
#[derive(Debug, Clone)]
pub struct MessageToStore<'a> {
    pub topic: &'a str,
    pub queue_id: i32,
    pub flag: i32,
    pub sys_flag: i32,
    pub born_timestamp: i64,
    pub born_host: SocketAddr,
    pub store_timestamp: i64,
    pub store_host: SocketAddr,
    pub reconsume_times: i32,
    pub prepared_transaction_offset: i64,
    pub body: &'a [u8],
    pub properties: &'a str,
}

impl<'a> MessageToStore<'a> {
    /// A stored record written again (delivered after its delay, given back for a retry): its
    /// body, flags, born time and host and reconsume count, in a new place, with new
    /// properties, store time and store host.
    pub fn again(
        view: &RecordView<'a>,
        topic: &'a str,
        queue_id: i32,
        properties: &'a str,
        store_timestamp: i64,
        store_host: SocketAddr,
    ) -> MessageToStore<'a> {
        MessageToStore {
            topic,
            queue_id,
            flag: view.flag,
            sys_flag: view.sys_flag,
            born_timestamp: view.born_timestamp,
            born_host: view.born_host,
            store_timestamp,
            store_host,
            reconsume_times: view.reconsume_times,
            prepared_transaction_offset: 0,
            body: view.body,
            properties,
        }
    }
}

/// Normalises `::ffff:a.b.c.d` to IPv4, because C++ clients read only 4-byte hosts (spec §7.1).
pub fn normalize_host(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), v6.port()),
            None => addr,
        },
        SocketAddr::V4(_) => addr,
    }
}

fn host_bytes(addr: &SocketAddr) -> usize {
    match addr {
        SocketAddr::V4(_) => 8,
        SocketAddr::V6(_) => 20,
    }
}

fn put_host(out: &mut Vec<u8>, addr: &SocketAddr) {
    match addr.ip() {
        IpAddr::V4(ip) => out.extend_from_slice(&ip.octets()),
        IpAddr::V6(ip) => out.extend_from_slice(&ip.octets()),
    }
    out.extend_from_slice(&(addr.port() as i32).to_be_bytes());
}

/// The size `encode` will write for `msg`.
pub fn encoded_len(msg: &MessageToStore<'_>) -> usize {
    RECORD_FIXED_BYTES_V4 - 16
        + host_bytes(&msg.born_host)
        + host_bytes(&msg.store_host)
        + msg.body.len()
        + msg.topic.len()
        + msg.properties.len()
}

/// Checks the limits `encode` asserts, so callers can answer bad input with an error.
pub fn check(msg: &MessageToStore<'_>) -> Result<(), RecordError> {
    if msg.topic.len() > TOPIC_BYTES_MAX {
        return Err(RecordError::TopicTooLong(msg.topic.len()));
    }
    if msg.properties.len() > PROPERTIES_BYTES_MAX {
        return Err(RecordError::PropertiesTooLong(msg.properties.len()));
    }
    Ok(())
}

/// Appends the record of `msg` to `out` and returns its size.
pub fn encode(
    msg: &MessageToStore<'_>,
    queue_offset: i64,
    physical_offset: i64,
    out: &mut Vec<u8>,
) -> usize {
    check(msg).expect("caller checked the record limits");
    let size = encoded_len(msg);
    let start = out.len();
    out.reserve(size);
    let mut sys_flag = msg.sys_flag & !(sys_flag::BORNHOST_V6 | sys_flag::STOREHOST_V6);
    if msg.born_host.is_ipv6() {
        sys_flag |= sys_flag::BORNHOST_V6;
    }
    if msg.store_host.is_ipv6() {
        sys_flag |= sys_flag::STOREHOST_V6;
    }
    out.extend_from_slice(&(size as i32).to_be_bytes());
    out.extend_from_slice(&MAGIC_V1.to_be_bytes());
    out.extend_from_slice(&body_crc(msg.body).to_be_bytes());
    out.extend_from_slice(&msg.queue_id.to_be_bytes());
    out.extend_from_slice(&msg.flag.to_be_bytes());
    out.extend_from_slice(&queue_offset.to_be_bytes());
    out.extend_from_slice(&physical_offset.to_be_bytes());
    out.extend_from_slice(&sys_flag.to_be_bytes());
    out.extend_from_slice(&msg.born_timestamp.to_be_bytes());
    put_host(out, &msg.born_host);
    out.extend_from_slice(&msg.store_timestamp.to_be_bytes());
    put_host(out, &msg.store_host);
    out.extend_from_slice(&msg.reconsume_times.to_be_bytes());
    out.extend_from_slice(&msg.prepared_transaction_offset.to_be_bytes());
    out.extend_from_slice(&(msg.body.len() as i32).to_be_bytes());
    out.extend_from_slice(msg.body);
    out.push(msg.topic.len() as u8);
    out.extend_from_slice(msg.topic.as_bytes());
    out.extend_from_slice(&(msg.properties.len() as i16).to_be_bytes());
    out.extend_from_slice(msg.properties.as_bytes());
    assert_eq!(out.len() - start, size, "encoded_len disagrees with encode");
    size
}

/// RocketMQ's body CRC: zlib CRC-32 masked to a positive int.
pub fn body_crc(body: &[u8]) -> i32 {
    (crc32fast::hash(body) & 0x7FFF_FFFF) as i32
}

/// A decoded view of one stored record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordView<'a> {
    pub total_size: usize,
    pub magic: i32,
    pub body_crc: i32,
    pub queue_id: i32,
    pub flag: i32,
    pub queue_offset: i64,
    pub physical_offset: i64,
    pub sys_flag: i32,
    pub born_timestamp: i64,
    pub born_host: SocketAddr,
    pub store_timestamp: i64,
    pub store_host: SocketAddr,
    pub reconsume_times: i32,
    pub prepared_transaction_offset: i64,
    pub body: &'a [u8],
    pub topic: &'a str,
    pub properties: &'a str,
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], RecordError> {
        let end = self.pos.checked_add(n).filter(|end| *end <= self.buf.len());
        let end = end.ok_or(RecordError::Truncated {
            need: self.pos.saturating_add(n),
            have: self.buf.len(),
        })?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }
    fn i32(&mut self) -> Result<i32, RecordError> {
        Ok(i32::from_be_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn i64(&mut self) -> Result<i64, RecordError> {
        Ok(i64::from_be_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
    fn host(&mut self, v6: bool) -> Result<SocketAddr, RecordError> {
        let ip = if v6 {
            let octets: [u8; 16] = self.take(16)?.try_into().expect("16 bytes");
            IpAddr::from(octets)
        } else {
            let octets: [u8; 4] = self.take(4)?.try_into().expect("4 bytes");
            IpAddr::V4(Ipv4Addr::from(octets))
        };
        let port = self.i32()?;
        Ok(SocketAddr::new(ip, port as u16))
    }
}

/// Decodes the record at the start of `buf`, checking that its fields add up to its size.
pub fn decode(buf: &[u8]) -> Result<RecordView<'_>, RecordError> {
    let mut c = Cursor { buf, pos: 0 };
    let total = c.i32()?;
    if total < (RECORD_FIXED_BYTES_V4 as i32) {
        return Err(RecordError::BadSize(total as i64));
    }
    let total_size = total as usize;
    if total_size > buf.len() {
        return Err(RecordError::Truncated {
            need: total_size,
            have: buf.len(),
        });
    }
    c.buf = &buf[..total_size];
    let magic = c.i32()?;
    if magic != MAGIC_V1 && magic != MAGIC_V2 {
        return Err(RecordError::BadMagic(magic));
    }
    let body_crc = c.i32()?;
    let queue_id = c.i32()?;
    let flag = c.i32()?;
    let queue_offset = c.i64()?;
    let physical_offset = c.i64()?;
    let sys_flag = c.i32()?;
    let born_timestamp = c.i64()?;
    let born_host = c.host(sys_flag & sys_flag::BORNHOST_V6 != 0)?;
    let store_timestamp = c.i64()?;
    let store_host = c.host(sys_flag & sys_flag::STOREHOST_V6 != 0)?;
    let reconsume_times = c.i32()?;
    let prepared_transaction_offset = c.i64()?;
    let body_len = c.i32()?;
    let body_len = usize::try_from(body_len).map_err(|_| RecordError::BadSize(body_len as i64))?;
    let body = c.take(body_len)?;
    let topic_len = if magic == MAGIC_V1 {
        c.take(1)?[0] as usize
    } else {
        u16::from_be_bytes(c.take(2)?.try_into().expect("2 bytes")) as usize
    };
    let topic = std::str::from_utf8(c.take(topic_len)?).map_err(|_| RecordError::TopicNotUtf8)?;
    let props_len = i16::from_be_bytes(c.take(2)?.try_into().expect("2 bytes"));
    let props_len =
        usize::try_from(props_len).map_err(|_| RecordError::BadSize(props_len as i64))?;
    let props = c.take(props_len)?;
    if c.pos != total_size {
        return Err(RecordError::SizeMismatch {
            fields: c.pos,
            total: total_size,
        });
    }
    // Property strings are produced by clients; a non-UTF-8 one is kept as empty rather than
    // failing a stored record.
    let properties = std::str::from_utf8(props).unwrap_or("");
    Ok(RecordView {
        total_size,
        magic,
        body_crc,
        queue_id,
        flag,
        queue_offset,
        physical_offset,
        sys_flag,
        born_timestamp,
        born_host,
        store_timestamp,
        store_host,
        reconsume_times,
        prepared_transaction_offset,
        body,
        topic,
        properties,
    })
}

/// Java's `String.hashCode` over UTF-16 code units: the consume-queue tag code (spec §6.6).
pub fn tags_code(tags: &str) -> i64 {
    let mut h: i32 = 0;
    for unit in tags.encode_utf16() {
        h = h.wrapping_mul(31).wrapping_add(unit as i32);
    }
    h as i64
}

/// offsetMsgId: uppercase hex of store IP, store port (i32) and physical offset (spec §6.4).
pub fn offset_msg_id(store_host: SocketAddr, physical_offset: i64) -> String {
    let mut raw = Vec::with_capacity(28);
    put_host(&mut raw, &store_host);
    raw.extend_from_slice(&physical_offset.to_be_bytes());
    hex_upper(&raw)
}

/// Decodes an offsetMsgId into (store host, physical offset).
pub fn decode_offset_msg_id(id: &str) -> Option<(SocketAddr, i64)> {
    let raw = hex_decode(id)?;
    let (ip, rest) = match raw.len() {
        16 => (
            IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(&raw[..4]).ok()?)),
            &raw[4..],
        ),
        28 => (
            IpAddr::from(<[u8; 16]>::try_from(&raw[..16]).ok()?),
            &raw[16..],
        ),
        _ => return None,
    };
    let port = i32::from_be_bytes(rest[..4].try_into().ok()?);
    let offset = i64::from_be_bytes(rest[4..12].try_into().ok()?);
    Some((SocketAddr::new(ip, u16::try_from(port).ok()?), offset))
}

pub fn hex_upper(raw: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    let mut s = String::with_capacity(raw.len() * 2);
    for b in raw {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 0xF) as usize] as char);
    }
    s
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests;
