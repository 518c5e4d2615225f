//! JSON header (serialize type 0, spec §1.3). Input is read leniently, the way fastjson writers
//! and the C++ client produce it: scalars may be numbers or strings, `extFields` values may be
//! numbers or booleans (converted to their text), unknown members are ignored. Output is compact
//! JSON with string-only `extFields` values, which every client parses.

use serde::ser::{SerializeMap, Serializer};
use serde_json::Value;

use super::codes::LanguageCode;
use super::command::{ExtFields, RemotingCommand};
use super::error::FrameError;
use bytes::Bytes;

pub fn decode(header: &[u8], body: Bytes) -> Result<RemotingCommand, FrameError> {
    let value: Value =
        serde_json::from_slice(header).map_err(|e| FrameError::Json(e.to_string()))?;
    let Value::Object(members) = value else {
        return Err(FrameError::Json("header is not a JSON object".into()));
    };
    let int = |name: &str| -> Result<i32, FrameError> {
        match members.get(name) {
            None | Some(Value::Null) => Ok(0),
            Some(v) => scalar_i32(v).ok_or_else(|| FrameError::Json(format!("bad `{name}`"))),
        }
    };
    let language = match members.get("language") {
        Some(Value::String(name)) => LanguageCode::from_name(name),
        Some(Value::Number(n)) => n
            .as_u64()
            .and_then(|n| u8::try_from(n).ok())
            .map_or(LanguageCode::OTHER, LanguageCode::from_ordinal),
        _ => LanguageCode::OTHER,
    };
    let remark = match members.get("remark") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => Some(other.to_string()),
    };
    let mut ext_fields = ExtFields::new();
    match members.get("extFields") {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (key, value) in map {
                match value {
                    Value::Null => {}
                    Value::String(s) => ext_fields.push_raw(key.clone(), s.clone()),
                    Value::Number(n) => ext_fields.push_raw(key.clone(), n.to_string()),
                    Value::Bool(b) => ext_fields.push_raw(key.clone(), b.to_string()),
                    Value::Array(_) | Value::Object(_) => {
                        ext_fields.push_raw(key.clone(), value.to_string())
                    }
                }
            }
        }
        Some(_) => return Err(FrameError::Json("`extFields` is not an object".into())),
    }
    Ok(RemotingCommand {
        code: int("code")?,
        language,
        version: int("version")?,
        opaque: int("opaque")?,
        flag: int("flag")?,
        remark,
        ext_fields,
        body,
    })
}

fn scalar_i32(value: &Value) -> Option<i32> {
    match value {
        Value::Number(n) => n.as_i64().and_then(|n| i32::try_from(n).ok()),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Appends the JSON header of `cmd` to `out`.
pub fn encode(cmd: &RemotingCommand, out: &mut Vec<u8>) {
    const INFALLIBLE: &str = "writing JSON to a Vec cannot fail";
    let mut ser = serde_json::Serializer::new(out);
    let mut map = ser.serialize_map(None).expect(INFALLIBLE);
    map.serialize_entry("code", &cmd.code).expect(INFALLIBLE);
    map.serialize_entry("extFields", &ExtMap(&cmd.ext_fields))
        .expect(INFALLIBLE);
    map.serialize_entry("flag", &cmd.flag).expect(INFALLIBLE);
    map.serialize_entry("language", cmd.language.name())
        .expect(INFALLIBLE);
    map.serialize_entry("opaque", &cmd.opaque)
        .expect(INFALLIBLE);
    if let Some(remark) = &cmd.remark {
        map.serialize_entry("remark", remark).expect(INFALLIBLE);
    }
    map.serialize_entry("serializeTypeCurrentRPC", "JSON")
        .expect(INFALLIBLE);
    map.serialize_entry("version", &cmd.version)
        .expect(INFALLIBLE);
    map.end().expect(INFALLIBLE);
}

struct ExtMap<'a>(&'a ExtFields);

impl serde::Serialize for ExtMap<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0.iter() {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}
