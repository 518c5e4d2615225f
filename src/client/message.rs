//! Messages as a client builds and receives them.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};

use bytes::Bytes;
use petrel_shards::record::{self, decode_properties, property, Properties};

#[derive(Debug, Clone, Default)]
pub struct Message {
    pub body: Bytes,
    pub flag: i32,
    pub properties: Properties,
}

static UNIQ_COUNTER: AtomicU32 = AtomicU32::new(0);

impl Message {
    pub fn new(body: impl Into<Bytes>, properties: Properties) -> Message {
        Message {
            body: body.into(),
            flag: 0,
            properties,
        }
    }

    /// The properties with a UNIQ_KEY (the client-side message id) added if missing.
    pub fn properties_with_uniq_key(&self) -> Properties {
        let mut props = self.properties.clone();
        if props.get(property::UNIQ_KEY).is_none() {
            let mut raw = Vec::with_capacity(16);
            raw.extend_from_slice(&[127, 0, 0, 1]);
            raw.extend_from_slice(&(std::process::id() as u16).to_be_bytes());
            raw.extend_from_slice(&(super::now_ms() as u64).to_be_bytes()[2..]);
            raw.extend_from_slice(&UNIQ_COUNTER.fetch_add(1, Ordering::Relaxed).to_be_bytes());
            props.insert(property::UNIQ_KEY, &record::hex_upper(&raw));
        }
        props
    }
}

/// A received message: the stored record, decoded.
#[derive(Debug, Clone)]
pub struct MessageExt {
    pub topic: String,
    pub broker_name: String,
    pub queue_id: i32,
    pub queue_offset: i64,
    pub commit_log_offset: i64,
    pub msg_id: String,
    pub offset_msg_id: String,
    pub body: Bytes,
    pub flag: i32,
    pub sys_flag: i32,
    pub born_timestamp: i64,
    pub store_timestamp: i64,
    pub born_host: SocketAddr,
    pub store_host: SocketAddr,
    pub reconsume_times: i32,
    pub properties: Properties,
}

impl MessageExt {
    pub fn tags(&self) -> Option<&str> {
        self.properties.get(property::TAGS)
    }

    pub fn keys(&self) -> Option<&str> {
        self.properties.get(property::KEYS)
    }
}

/// Decodes a pull body; stops at the first undecodable record, as stock clients do.
pub fn decode_messages(body: &[u8], broker_name: &str) -> Vec<MessageExt> {
    let mut out = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        let Ok(view) = record::decode(rest) else {
            break;
        };
        let properties = decode_properties(view.properties);
        let offset_msg_id = record::offset_msg_id(view.store_host, view.physical_offset);
        out.push(MessageExt {
            topic: view.topic.to_string(),
            broker_name: broker_name.to_string(),
            queue_id: view.queue_id,
            queue_offset: view.queue_offset,
            commit_log_offset: view.physical_offset,
            msg_id: properties
                .get(property::UNIQ_KEY)
                .map_or_else(|| offset_msg_id.clone(), str::to_string),
            offset_msg_id,
            body: Bytes::copy_from_slice(view.body),
            flag: view.flag,
            sys_flag: view.sys_flag,
            born_timestamp: view.born_timestamp,
            store_timestamp: view.store_timestamp,
            born_host: view.born_host,
            store_host: view.store_host,
            reconsume_times: view.reconsume_times,
            properties,
        });
        rest = &rest[view.total_size..];
    }
    out
}
