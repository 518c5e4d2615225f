//! Pipelined sends and reads for load generation. A producer keeps many requests in flight on
//! one socket, so writing and reading are separate halves (one thread each), and neither
//! allocates per message: send requests are rendered from a per-queue template into a reused
//! buffer, and responses are read in place, decoding only `code`, `opaque`, the response flag
//! and `nextBeginOffset`.

use std::borrow::Cow;
use std::io::{self, Read, Write};
use std::net::TcpStream;

use bytes::Bytes;
use petrel_shards::record::encode_batch_item;
use petrel_shards::remoting::{self, request, Decoded, ExtFields, PETREL_VERSION};
use serde::Deserialize;

/// Renders SEND_MESSAGE_V2 and SEND_BATCH_MESSAGE requests for one queue. Every message gets
/// a distinct `UNIQ_KEY` (32 hex digits, as Java's message IDs) and `WAIT=true`, as stock
/// producers send them, so brokers do the same property work they do for real clients.
pub struct SendTemplate {
    /// The JSON header up to the value of `g` (bornTimestamp).
    head: Vec<u8>,
    batch: bool,
    key_prefix: [u8; 16],
    header: Vec<u8>,
    props: String,
    batch_body: Vec<u8>,
}

/// Property separators as they appear inside a JSON string.
const NAME_END_JSON: &str = "\\u0001";
const PAIR_END_JSON: &str = "\\u0002";

impl SendTemplate {
    /// `id` distinguishes producers: it becomes the first half of every `UNIQ_KEY`.
    pub fn new(group: &str, topic: &str, queue_id: i32, batch: bool, id: u64) -> SendTemplate {
        let code = if batch {
            request::SEND_BATCH_MESSAGE
        } else {
            request::SEND_MESSAGE_V2
        };
        let mut fixed = ExtFields::new();
        fixed.insert("a", group);
        fixed.insert("b", topic);
        fixed.insert("c", "TBW102");
        fixed.insert("d", "4");
        fixed.insert("e", queue_id.to_string());
        fixed.insert("f", "0");
        fixed.insert("h", "0");
        fixed.insert("j", "0");
        fixed.insert("k", "false");
        fixed.insert("m", batch.to_string());
        let mut head = format!("{{\"code\":{code},\"extFields\":{{").into_bytes();
        for (k, v) in fixed.iter() {
            serde_json::to_writer(&mut head, k).expect("writing to a Vec");
            head.push(b':');
            serde_json::to_writer(&mut head, v).expect("writing to a Vec");
            head.push(b',');
        }
        head.extend_from_slice(b"\"g\":\"");
        let mut key_prefix = [0u8; 16];
        hex_u64(id, &mut key_prefix);
        SendTemplate {
            head,
            batch,
            key_prefix,
            header: Vec::with_capacity(512),
            props: String::new(),
            batch_body: Vec::new(),
        }
    }

    /// Appends one request frame to `out`: `count` messages with `body` (a batch when the
    /// template is one; otherwise `count` must be 1), with keys `seq`, `seq + 1`, ….
    pub fn encode(
        &mut self,
        out: &mut Vec<u8>,
        opaque: i32,
        born_ms: i64,
        seq: u64,
        count: usize,
        body: &[u8],
    ) {
        let mut key = [0u8; 32];
        key[..16].copy_from_slice(&self.key_prefix);
        let header = &mut self.header;
        header.clear();
        header.extend_from_slice(&self.head);
        write!(header, "{born_ms}").expect("writing to a Vec");
        header.extend_from_slice(b"\",\"i\":\"");
        if self.batch {
            header.extend_from_slice(b"WAIT");
            header.extend_from_slice(NAME_END_JSON.as_bytes());
            header.extend_from_slice(b"true");
            header.extend_from_slice(PAIR_END_JSON.as_bytes());
            self.batch_body.clear();
            for i in 0..count as u64 {
                hex_u64(seq + i, &mut key[16..]);
                let key = std::str::from_utf8(&key).expect("hex digits");
                self.props.clear();
                self.props.push_str("UNIQ_KEY\u{1}");
                self.props.push_str(key);
                self.props.push_str("\u{2}WAIT\u{1}true\u{2}");
                encode_batch_item(0, body, &self.props, &mut self.batch_body);
            }
        } else {
            debug_assert_eq!(count, 1);
            hex_u64(seq, &mut key[16..]);
            header.extend_from_slice(b"UNIQ_KEY");
            header.extend_from_slice(NAME_END_JSON.as_bytes());
            header.extend_from_slice(&key);
            header.extend_from_slice(PAIR_END_JSON.as_bytes());
            header.extend_from_slice(b"WAIT");
            header.extend_from_slice(NAME_END_JSON.as_bytes());
            header.extend_from_slice(b"true");
            header.extend_from_slice(PAIR_END_JSON.as_bytes());
        }
        header.extend_from_slice(b"\"},\"flag\":0,\"language\":\"RUST\",\"opaque\":");
        write!(
            header,
            "{opaque},\"serializeTypeCurrentRPC\":\"JSON\",\"version\":{PETREL_VERSION}}}"
        )
        .expect("writing to a Vec");
        let body = if self.batch {
            &self.batch_body[..]
        } else {
            body
        };
        let total = 4 + header.len() + body.len();
        out.extend_from_slice(&(total as u32).to_be_bytes());
        out.extend_from_slice(&(header.len() as u32).to_be_bytes());
        out.extend_from_slice(header);
        out.extend_from_slice(body);
    }
}

fn hex_u64(v: u64, out: &mut [u8]) {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    for (i, slot) in out[..16].iter_mut().enumerate() {
        *slot = DIGITS[((v >> (60 - 4 * i)) & 0xF) as usize];
    }
}

/// One frame read in place: the fields a load generator needs and the body.
#[derive(Debug)]
pub struct FrameHead<'a> {
    pub code: i32,
    pub opaque: i32,
    pub is_response: bool,
    pub next_begin_offset: Option<i64>,
    pub body: &'a [u8],
}

#[derive(Deserialize)]
struct JsonHead<'a> {
    code: i32,
    #[serde(default)]
    opaque: i32,
    #[serde(default)]
    flag: i32,
    #[serde(default, borrow, rename = "extFields")]
    ext: Option<JsonExt<'a>>,
}

#[derive(Deserialize)]
struct JsonExt<'a> {
    #[serde(default, borrow, rename = "nextBeginOffset")]
    next_begin_offset: Option<Cow<'a, str>>,
}

/// The reading half of a pipelined connection.
pub struct FrameReader {
    stream: TcpStream,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    frame_bytes_max: usize,
}

impl FrameReader {
    pub fn new(stream: TcpStream) -> FrameReader {
        FrameReader {
            stream,
            buf: vec![0; 256 << 10],
            start: 0,
            end: 0,
            frame_bytes_max: 256 << 20,
        }
    }

    /// Blocks for the next frame (responses and broker-initiated requests alike). A read
    /// timeout set on the socket comes back as `WouldBlock` or `TimedOut`; nothing is lost.
    pub fn next_frame(&mut self) -> io::Result<FrameHead<'_>> {
        loop {
            if let Some(len) = self.complete_frame()? {
                let frame = self.start..self.start + len;
                self.start += len;
                return parse(&self.buf[frame]);
            }
            self.fill()?;
        }
    }

    /// The length of the complete frame at `start`, if there is one.
    fn complete_frame(&self) -> io::Result<Option<usize>> {
        let have = self.end - self.start;
        if have < 4 {
            return Ok(None);
        }
        let declared = u32::from_be_bytes(self.buf[self.start..self.start + 4].try_into().unwrap());
        let len = 4 + declared as usize;
        if !(8..=self.frame_bytes_max).contains(&len) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("frame length {declared} out of range"),
            ));
        }
        Ok((have >= len).then_some(len))
    }

    fn fill(&mut self) -> io::Result<()> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        let declared = if self.end - self.start >= 4 {
            4 + u32::from_be_bytes(self.buf[self.start..self.start + 4].try_into().unwrap())
                as usize
        } else {
            0
        };
        if self.buf.len() - self.start < declared.max(64 << 10) {
            // Move the partial frame to the front, and grow when one frame needs more room.
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            if self.buf.len() < declared {
                self.buf.resize(declared.next_power_of_two(), 0);
            }
        }
        let n = self.stream.read(&mut self.buf[self.end..])?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.end += n;
        Ok(())
    }
}

fn parse(frame: &[u8]) -> io::Result<FrameHead<'_>> {
    let bad = |what: String| io::Error::new(io::ErrorKind::InvalidData, what);
    let word = u32::from_be_bytes(frame[4..8].try_into().unwrap());
    let header_len = (word & 0x00FF_FFFF) as usize;
    let header_end = 8 + header_len;
    if header_end > frame.len() {
        return Err(bad(format!("header length {header_len} past the frame")));
    }
    let (header, body) = (&frame[8..header_end], &frame[header_end..]);
    match (word >> 24) as u8 {
        0 => {
            let head: JsonHead<'_> =
                serde_json::from_slice(header).map_err(|e| bad(format!("JSON header: {e}")))?;
            let next_begin_offset = head
                .ext
                .and_then(|e| e.next_begin_offset)
                .and_then(|v| v.parse().ok());
            Ok(FrameHead {
                code: head.code,
                opaque: head.opaque,
                is_response: head.flag & 1 == 1,
                next_begin_offset,
                body,
            })
        }
        1 => {
            // Brokers answer in the request's serialize type, so this is rare: decode fully.
            let cmd = match remoting::decode(&Bytes::copy_from_slice(frame), u32::MAX) {
                Ok(Decoded::Command { command, .. }) => command,
                _ => return Err(bad("binary header does not decode".into())),
            };
            Ok(FrameHead {
                code: cmd.code,
                opaque: cmd.opaque,
                is_response: cmd.is_response(),
                next_begin_offset: cmd.field("nextBeginOffset").and_then(|v| v.parse().ok()),
                body,
            })
        }
        other => Err(bad(format!("serialize type {other}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use petrel_shards::record::BatchIter;
    use petrel_shards::remoting::headers::{SendHeaderNames, SendMessageHeader};
    use petrel_shards::remoting::{RemotingCommand, SerializeType};

    fn decode(frame: &[u8]) -> RemotingCommand {
        match remoting::decode(&Bytes::copy_from_slice(frame), 1 << 30).unwrap() {
            Decoded::Command {
                command,
                frame_bytes,
            } => {
                assert_eq!(frame_bytes, frame.len());
                command
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_rendered_send_decodes_as_the_header_it_stands_for() {
        let mut t = SendTemplate::new("G", "T\"x", 3, false, 0xAB);
        let mut out = Vec::new();
        t.encode(&mut out, 77, 1_700_000_000_123, 5, 1, b"hello");
        let cmd = decode(&out);
        assert_eq!(cmd.code, request::SEND_MESSAGE_V2);
        assert_eq!(cmd.opaque, 77);
        assert_eq!(&cmd.body[..], b"hello");
        let h = SendMessageHeader::parse(&cmd.ext_fields, SendHeaderNames::Short).unwrap();
        assert_eq!((h.topic.as_str(), h.queue_id), ("T\"x", 3));
        assert_eq!(h.born_timestamp, 1_700_000_000_123);
        assert_eq!(
            h.properties,
            "UNIQ_KEY\u{1}00000000000000AB0000000000000005\u{2}WAIT\u{1}true\u{2}"
        );
        assert!(!h.batch);
    }

    #[test]
    fn a_rendered_batch_carries_one_key_per_message() {
        let mut t = SendTemplate::new("G", "T", 0, true, 1);
        let mut out = Vec::new();
        t.encode(&mut out, 1, 1, 10, 3, b"abc");
        let cmd = decode(&out);
        assert_eq!(cmd.code, request::SEND_BATCH_MESSAGE);
        let items: Vec<_> = BatchIter::new(&cmd.body).map(|i| i.unwrap()).collect();
        assert_eq!(items.len(), 3);
        assert!(items[2].properties.contains("000000000000000C"));
        assert!(items.iter().all(|i| i.body == b"abc"));
    }

    #[test]
    fn frames_are_read_in_place_across_partial_reads() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let writer = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut all = bytes::BytesMut::new();
            for i in 0..200 {
                let cmd = RemotingCommand::response(0, i)
                    .with_field("nextBeginOffset", i * 10)
                    .with_body(Bytes::from(vec![7u8; 1000 * i as usize]));
                remoting::encode(&cmd, SerializeType::Json, &mut all);
            }
            for chunk in all.chunks(777) {
                s.write_all(chunk).unwrap();
            }
        });
        let mut r = FrameReader::new(TcpStream::connect(addr).unwrap());
        for i in 0..200 {
            let f = r.next_frame().unwrap();
            assert!(f.is_response);
            assert_eq!((f.code, f.opaque), (0, i));
            assert_eq!(f.next_begin_offset, Some(i as i64 * 10));
            assert_eq!(f.body.len(), 1000 * i as usize);
        }
        writer.join().unwrap();
        assert_eq!(
            r.next_frame().unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
    }
}
