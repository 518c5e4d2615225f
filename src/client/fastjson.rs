//! Apache RocketMQ serializes bodies with fastjson, which writes maps with integer keys
//! unquoted: `"brokerAddrs":{0:"127.0.0.1:10911"}`. That is not JSON, and serde_json refuses
//! it; `quote_integer_keys` turns such keys into strings and leaves everything else as is.
//! Maps keyed by MessageQueue are written with raw objects as keys
//! (`{"offsetTable":{{"brokerName":"b","queueId":0,"topic":"T"}:{…},…}}`);
//! `object_keyed_pairs` reads such a member as (key, value) pairs.

use std::borrow::Cow;

/// `body` with every bare integer object key quoted.
pub fn quote_integer_keys(body: &[u8]) -> Cow<'_, [u8]> {
    let mut out: Option<Vec<u8>> = None;
    let mut in_string = false;
    let mut escaped = false;
    let mut copied = 0;
    let mut i = 0;
    while i < body.len() {
        let b = body[i];
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            i += 1;
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b',' => {
                let mut j = i + 1;
                while j < body.len() && body[j].is_ascii_whitespace() {
                    j += 1;
                }
                let key_start = j;
                if j < body.len() && body[j] == b'-' {
                    j += 1;
                }
                let digits_start = j;
                while j < body.len() && body[j].is_ascii_digit() {
                    j += 1;
                }
                let key_end = j;
                while j < body.len() && body[j].is_ascii_whitespace() {
                    j += 1;
                }
                if key_end > digits_start && j < body.len() && body[j] == b':' {
                    let o = out.get_or_insert_with(|| Vec::with_capacity(body.len() + 16));
                    o.extend_from_slice(&body[copied..key_start]);
                    o.push(b'"');
                    o.extend_from_slice(&body[key_start..key_end]);
                    o.push(b'"');
                    copied = key_end;
                    i = key_end;
                    continue;
                }
            }
            _ => {}
        }
        i += 1;
    }
    match out {
        None => Cow::Borrowed(body),
        Some(mut o) => {
            o.extend_from_slice(&body[copied..]);
            Cow::Owned(o)
        }
    }
}

/// The entries of `member`, an object-keyed map whose keys are flat objects (as MessageQueue
/// keys are) and whose values are flat objects or numbers, as (key, value) pairs. The map must be the
/// body's last member, as fastjson's alphabetical order makes `offsetTable`.
pub fn object_keyed_pairs(
    body: &[u8],
    member: &str,
) -> Result<Vec<(serde_json::Value, serde_json::Value)>, String> {
    let text = std::str::from_utf8(body).map_err(|e| e.to_string())?;
    let opener = format!("\"{member}\":{{");
    let start = text
        .find(&opener)
        .ok_or_else(|| format!("no `{member}` in the body"))?
        + opener.len();
    let inner = text[start..]
        .trim_end()
        .strip_suffix("}}")
        .ok_or_else(|| format!("`{member}` is not the body's last member"))?;
    // `{k}:v,{k}:v` → `[{k},v,{k},v]`: flat objects of names and numbers hold no `}:`.
    let array = format!("[{}]", inner.replace("}:", "},"));
    let items: Vec<serde_json::Value> =
        serde_json::from_str(&array).map_err(|e| format!("`{member}`: {e}"))?;
    if !items.len().is_multiple_of(2) {
        return Err(format!("`{member}`: a key without a value"));
    }
    let mut pairs = Vec::with_capacity(items.len() / 2);
    let mut it = items.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        pairs.push((k, v));
    }
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use super::{object_keyed_pairs, quote_integer_keys};

    #[test]
    fn message_queue_keyed_maps_read_as_pairs() {
        let body = br#"{"consumeTps":1.5,"offsetTable":{{"brokerName":"b","queueId":0,"topic":"T"}:{"brokerOffset":9,"consumerOffset":7},{"brokerName":"b","queueId":1,"topic":"T"}:{"brokerOffset":3,"consumerOffset":3}}}"#;
        let pairs = object_keyed_pairs(body, "offsetTable").unwrap();
        assert_eq!(pairs.len(), 2);
        assert_eq!(pairs[1].0["queueId"], 1);
        assert_eq!(pairs[0].1["consumerOffset"], 7);
        assert!(object_keyed_pairs(br#"{"offsetTable":{}}"#, "offsetTable")
            .unwrap()
            .is_empty());
        assert!(object_keyed_pairs(br#"{"x":1}"#, "offsetTable").is_err());
        let reset = br#"{"offsetTable":{{"brokerName":"b","queueId":0,"topic":"T"}:5,{"brokerName":"b","queueId":1,"topic":"T"}:0}}"#;
        let pairs = object_keyed_pairs(reset, "offsetTable").unwrap();
        assert_eq!(
            (pairs[0].1.as_i64(), pairs[1].1.as_i64()),
            (Some(5), Some(0))
        );
    }

    fn q(s: &str) -> String {
        String::from_utf8(quote_integer_keys(s.as_bytes()).into_owned()).unwrap()
    }

    #[test]
    fn bare_integer_keys_are_quoted_and_nothing_else_changes() {
        assert_eq!(
            q(r#"{"brokerAddrs":{0:"a:1", 1 :"b:2"},"n":[1,2],"s":"{3:4}"}"#),
            r#"{"brokerAddrs":{"0":"a:1", "1" :"b:2"},"n":[1,2],"s":"{3:4}"}"#
        );
        assert_eq!(q(r#"{"a":"x\",5:"}"#), r#"{"a":"x\",5:"}"#);
        assert_eq!(q(r#"{-1:true}"#), r#"{"-1":true}"#);
        let plain = r#"{"0":"x"}"#;
        assert!(matches!(
            quote_integer_keys(plain.as_bytes()),
            std::borrow::Cow::Borrowed(_)
        ));
    }
}
