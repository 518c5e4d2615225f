//! The property string: `name 0x01 value 0x02 …` (spec §4.1.1).

/// Property names Petrel reads or writes (spec §6.1).
pub mod property {
    pub const TAGS: &str = "TAGS";
    pub const KEYS: &str = "KEYS";
    pub const UNIQ_KEY: &str = "UNIQ_KEY";
    pub const CLUSTER: &str = "CLUSTER";
    pub const DELAY: &str = "DELAY";
    pub const TRAN_MSG: &str = "TRAN_MSG";
    pub const WAIT: &str = "WAIT";
    pub const REAL_TOPIC: &str = "REAL_TOPIC";
    pub const REAL_QID: &str = "REAL_QID";
    pub const RETRY_TOPIC: &str = "RETRY_TOPIC";
    pub const ORIGIN_MESSAGE_ID: &str = "ORIGIN_MESSAGE_ID";
    pub const PRODUCER_GROUP: &str = "PGROUP";
    pub const TRANSACTION_CHECK_TIMES: &str = "TRANSACTION_CHECK_TIMES";
    pub const CHECK_IMMUNITY_TIME_IN_SECONDS: &str = "CHECK_IMMUNITY_TIME_IN_SECONDS";
}

const NAME_END: char = '\u{1}';
const PAIR_END: char = '\u{2}';

/// Decoded properties, in order. A few entries per message: a `Vec` beats a map.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Properties(pub Vec<(String, String)>);

impl Properties {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn insert(&mut self, name: &str, value: &str) {
        match self.0.iter_mut().find(|(k, _)| k == name) {
            Some(slot) => slot.1 = value.to_string(),
            None => self.0.push((name.to_string(), value.to_string())),
        }
    }

    pub fn remove(&mut self, name: &str) {
        self.0.retain(|(k, _)| k != name);
    }
}

/// Parses a property string. Segments without a name or value are dropped, as Java does; the
/// final separator is optional.
pub fn decode_properties(text: &str) -> Properties {
    let mut props = Properties::default();
    for pair in text.split(PAIR_END) {
        if let Some((name, value)) = pair.split_once(NAME_END) {
            if !name.is_empty() && !value.is_empty() {
                props.0.push((name.to_string(), value.to_string()));
            }
        }
    }
    props
}

/// Writes properties in Java's form, each pair terminated by 0x02.
pub fn encode_properties(props: &Properties) -> String {
    let mut out = String::new();
    for (name, value) in &props.0 {
        out.push_str(name);
        out.push(NAME_END);
        out.push_str(value);
        out.push(PAIR_END);
    }
    out
}

/// Finds one property without decoding the rest: the send path needs only `TAGS`, `KEYS` and
/// `UNIQ_KEY`, and this avoids an allocation per message.
pub fn find_property<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.split(PAIR_END).find_map(|pair| {
        let (k, v) = pair.split_once(NAME_END)?;
        (k == name && !v.is_empty()).then_some(v)
    })
}
