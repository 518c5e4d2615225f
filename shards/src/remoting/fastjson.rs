//! Bodies as Java clients write them with fastjson, which keys maps by objects
//! (`{"messageQueueTable":{{"brokerName":"b","queueId":0,"topic":"T"}:5}}`): not JSON, so
//! no JSON parser reads them. What a broker relays between a client and an admin is taken as
//! text instead: `object_member` finds a top-level member's object value, whole.

/// Index just past the string that opens at `start` (a `"`), or None if it never closes.
fn string_end(b: &[u8], start: usize) -> Option<usize> {
    let mut i = start + 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

/// Index of the `}` that closes the object opening at `start` (a `{`).
fn object_end(b: &[u8], start: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = start;
    while i < b.len() {
        match b[i] {
            b'"' => {
                i = string_end(b, i)?;
                continue;
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

fn skip_spaces(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && b[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

/// The text of the object value of the top-level member `name` of `body`, braces included;
/// None if there is no such member, its value is not an object, or the body is cut short.
pub fn object_member<'a>(body: &'a str, name: &str) -> Option<&'a str> {
    let b = body.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => {
                let end = string_end(b, i)?;
                let colon = skip_spaces(b, end);
                if depth == 1 && &body[i + 1..end - 1] == name && b.get(colon) == Some(&b':') {
                    let value = skip_spaces(b, colon + 1);
                    if b.get(value) != Some(&b'{') {
                        return None;
                    }
                    return Some(&body[value..=object_end(b, value)?]);
                }
                i = end;
                continue;
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => depth = depth.checked_sub(1)?,
            _ => {}
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::object_member;

    #[test]
    fn a_member_keyed_by_objects_is_taken_whole() {
        let body = r#"{"consumerTable":{},"messageQueueTable":{{"brokerName":"b","queueId":0,"topic":"T"}:5,{"brokerName":"b}\"","queueId":1,"topic":"T"}:0}}"#;
        assert_eq!(
            object_member(body, "messageQueueTable"),
            Some(
                r#"{{"brokerName":"b","queueId":0,"topic":"T"}:5,{"brokerName":"b}\"","queueId":1,"topic":"T"}:0}"#
            )
        );
        assert_eq!(object_member(body, "consumerTable"), Some("{}"));
        // Only top-level members count; a string value that names the member is no member.
        assert_eq!(object_member(r#"{"a":{"m":{}},"b":"m"}"#, "m"), None);
        assert_eq!(
            object_member(r#"{"m" : { "x" : 1 } }"#, "m"),
            Some(r#"{ "x" : 1 }"#)
        );
        assert_eq!(object_member(r#"{"m":5}"#, "m"), None);
        assert_eq!(object_member(r#"{"m":{"x":1"#, "m"), None);
        assert_eq!(object_member(r#"{"m":{"x":"1}"#, "m"), None);
    }
}
