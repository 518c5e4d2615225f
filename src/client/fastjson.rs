//! Apache RocketMQ serializes bodies with fastjson, which writes maps with integer keys
//! unquoted: `"brokerAddrs":{0:"127.0.0.1:10911"}`. That is not JSON, and serde_json refuses
//! it; `quote_integer_keys` turns such keys into strings and leaves everything else as is.

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

#[cfg(test)]
mod tests {
    use super::quote_integer_keys;

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
