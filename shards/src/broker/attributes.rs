//! Topic and group attributes, as RocketMQ 5 changes them: `+key=value` adds or alters,
//! `-key` removes (not while creating); mqadmin sends them as `updateTopic -a +k=v,-k2` (a
//! header string) and `updateSubGroup --attributes …` (keys of the body's map). Only known
//! keys are taken, each with its value checked; anything else is refused with a remark
//! naming it, and nothing changes.

use std::collections::BTreeMap;

use super::throttle::{self, CONSUME_ATTRIBUTE, PRODUCE_ATTRIBUTE};

/// What an attribute is for, and so which keys it may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    Topic,
    Group,
}

/// Checks one attribute's value.
fn check(owner: Owner, key: &str, value: &str) -> Result<(), String> {
    let one_of = |allowed: &[&str]| {
        if allowed.contains(&value) {
            Ok(())
        } else {
            Err(format!(
                "attribute {key}={value}: expected one of {}",
                allowed.join(", ")
            ))
        }
    };
    match (owner, key) {
        (Owner::Topic, "message.type") => {
            one_of(&["NORMAL", "FIFO", "DELAY", "TRANSACTION", "MIXED"])
        }
        (Owner::Topic, "queue.type") => one_of(&["SimpleCQ"]),
        (Owner::Topic, "cleanup.policy") => one_of(&["DELETE"]),
        (Owner::Topic, PRODUCE_ATTRIBUTE) | (_, CONSUME_ATTRIBUTE) => throttle::parse_limit(value)
            .map(|_| ())
            .map_err(|e| format!("attribute {key}={value}: {e}")),
        _ => Err(format!("unsupported attribute key: {key}")),
    }
}

/// Parses mqadmin's modification string, `+k1=v1,+k2=v2,-k3`, into its pairs.
pub fn parse_modification(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    for kv in text.split(',').map(str::trim).filter(|kv| !kv.is_empty()) {
        let (key, value) = kv.split_once('=').unwrap_or((kv, ""));
        if pairs.iter().any(|(k, _)| k == key) {
            return Err(format!("attribute key duplication: {key}"));
        }
        pairs.push((key.to_string(), value.to_string()));
    }
    Ok(pairs)
}

/// `current` with `modification` applied, or why it cannot be.
pub fn alter(
    owner: Owner,
    current: &BTreeMap<String, String>,
    modification: &[(String, String)],
    creating: bool,
) -> Result<BTreeMap<String, String>, String> {
    let mut next = current.clone();
    for (key, value) in modification {
        if let Some(name) = key.strip_prefix('+') {
            check(owner, name, value)?;
            next.insert(name.to_string(), value.clone());
        } else if let Some(name) = key.strip_prefix('-') {
            if creating {
                return Err(format!(
                    "only adding attributes is supported while creating: -{name}"
                ));
            }
            if next.remove(name).is_none() {
                return Err(format!("attribute {name} is not set, so cannot be removed"));
            }
        } else {
            return Err(format!(
                "attribute {key:?}: expected +key=value to set or -key to remove"
            ));
        }
    }
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modifications_add_alter_remove_and_refuse_by_name() {
        let pairs = parse_modification("+consume.tps.limit=100,+message.type=FIFO").unwrap();
        let set = alter(Owner::Topic, &BTreeMap::new(), &pairs, true).unwrap();
        assert_eq!(set["consume.tps.limit"], "100");
        assert_eq!(set["message.type"], "FIFO");
        let removed = alter(
            Owner::Topic,
            &set,
            &parse_modification("-message.type").unwrap(),
            false,
        )
        .unwrap();
        assert_eq!(removed.len(), 1);
        let err = |owner, text: &str, creating| {
            alter(owner, &set, &parse_modification(text).unwrap(), creating).unwrap_err()
        };
        assert!(err(Owner::Topic, "-message.type", true).contains("while creating"));
        assert!(
            err(Owner::Topic, "+colour=red", false).contains("unsupported attribute key: colour")
        );
        assert!(err(Owner::Group, "+produce.tps.limit=1", false).contains("produce.tps.limit"));
        assert!(err(Owner::Topic, "+consume.tps.limit=x", false).contains("no limit"));
        assert!(err(Owner::Topic, "+cleanup.policy=COMPACTION", false).contains("DELETE"));
        assert!(err(Owner::Topic, "message.type=FIFO", false).contains("+key=value"));
        assert!(parse_modification("+a=1,+a=2")
            .unwrap_err()
            .contains("duplication"));
    }
}
