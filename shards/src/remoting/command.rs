//! `RemotingCommand`: one request or response of the remoting protocol (spec §1.2).

use bytes::Bytes;

use super::codes::{LanguageCode, FLAG_ONEWAY, FLAG_RESPONSE, PETREL_VERSION};

/// How a command's header is serialized on the wire (the high byte of the second word).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SerializeType {
    Json = 0,
    RocketMq = 1,
}

/// The `extFields` map. Kept as pairs in arrival order: headers hold a dozen entries at most, so
/// a linear scan beats hashing. A repeated key keeps its last value (spec §1.4).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExtFields(Vec<(String, String)>);

impl ExtFields {
    pub fn new() -> ExtFields {
        ExtFields(Vec::new())
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Sets `key`, replacing an earlier value.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<String>) {
        let key = key.into();
        let value = value.into();
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.0.push((key, value)),
        }
    }

    /// Appends without looking for an earlier value; decoders use it so that the last of two
    /// equal keys wins on `get`.
    pub(crate) fn push_raw(&mut self, key: String, value: String) {
        self.0.push((key, value));
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for ExtFields {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut fields = ExtFields::new();
        for (k, v) in iter {
            fields.insert(k, v);
        }
        fields
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemotingCommand {
    pub code: i32,
    pub language: LanguageCode,
    pub version: i32,
    pub opaque: i32,
    pub flag: i32,
    pub remark: Option<String>,
    pub ext_fields: ExtFields,
    pub body: Bytes,
}

impl RemotingCommand {
    /// A request from Petrel (language `RUST`, Petrel's fixed version).
    pub fn request(code: i32, ext_fields: ExtFields, body: Bytes) -> RemotingCommand {
        RemotingCommand {
            code,
            language: LanguageCode::RUST,
            version: PETREL_VERSION,
            opaque: 0,
            flag: 0,
            remark: None,
            ext_fields,
            body,
        }
    }

    /// A response to the request with `opaque`. Brokers answer as `JAVA` so that every client's
    /// language enum can read it (spec §1.8).
    pub fn response(code: i32, opaque: i32) -> RemotingCommand {
        RemotingCommand {
            code,
            language: LanguageCode::JAVA,
            version: PETREL_VERSION,
            opaque,
            flag: FLAG_RESPONSE,
            remark: None,
            ext_fields: ExtFields::new(),
            body: Bytes::new(),
        }
    }

    pub fn with_remark(mut self, remark: impl Into<String>) -> RemotingCommand {
        self.remark = Some(remark.into());
        self
    }

    pub fn with_body(mut self, body: Bytes) -> RemotingCommand {
        self.body = body;
        self
    }

    pub fn with_field(mut self, key: &str, value: impl ToString) -> RemotingCommand {
        self.ext_fields.insert(key, value.to_string());
        self
    }

    pub fn is_response(&self) -> bool {
        self.flag & FLAG_RESPONSE != 0
    }

    pub fn is_oneway(&self) -> bool {
        self.flag & FLAG_ONEWAY != 0
    }

    pub fn field(&self, key: &str) -> Option<&str> {
        self.ext_fields.get(key)
    }
}
