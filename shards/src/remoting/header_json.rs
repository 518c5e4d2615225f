//! JSON header (serialize type 0, spec §1.3). Input is read leniently, the way fastjson writers
//! and the C++ client produce it: scalars may be numbers or strings, `extFields` values may be
//! numbers or booleans (converted to their text), unknown members are ignored. Output is compact
//! JSON with string-only `extFields` values, which every client parses.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde_json::Value;

use super::codes::LanguageCode;
use super::command::{ExtFields, RemotingCommand};
use super::error::FrameError;
use bytes::Bytes;

/// Decodes the header straight into a command: one pass over the JSON with no intermediate
/// tree, since this runs for every request.
pub fn decode(header: &[u8], body: Bytes) -> Result<RemotingCommand, FrameError> {
    let mut de = serde_json::Deserializer::from_slice(header);
    let mut cmd = de
        .deserialize_map(HeaderVisitor)
        .map_err(|e| FrameError::Json(e.to_string()))?;
    de.end().map_err(|e| FrameError::Json(e.to_string()))?;
    cmd.body = body;
    Ok(cmd)
}

struct HeaderVisitor;

impl<'de> Visitor<'de> for HeaderVisitor {
    type Value = RemotingCommand;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object header")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RemotingCommand, A::Error> {
        let mut cmd = RemotingCommand {
            code: 0,
            language: LanguageCode::OTHER,
            version: 0,
            opaque: 0,
            flag: 0,
            remark: None,
            ext_fields: ExtFields::new(),
            body: Bytes::new(),
        };
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            match &*key {
                "code" => cmd.code = map.next_value_seed(LenientI32("code"))?,
                "version" => cmd.version = map.next_value_seed(LenientI32("version"))?,
                "opaque" => cmd.opaque = map.next_value_seed(LenientI32("opaque"))?,
                "flag" => cmd.flag = map.next_value_seed(LenientI32("flag"))?,
                "language" => cmd.language = language(map.next_value::<Value>()?),
                "remark" => {
                    cmd.remark = match map.next_value::<Value>()? {
                        Value::Null => None,
                        Value::String(s) => Some(s),
                        other => Some(other.to_string()),
                    }
                }
                "extFields" => map.next_value_seed(ExtSeed(&mut cmd.ext_fields))?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(cmd)
    }
}

fn language(value: Value) -> LanguageCode {
    match value {
        Value::String(name) => LanguageCode::from_name(&name),
        Value::Number(n) => n
            .as_u64()
            .and_then(|n| u8::try_from(n).ok())
            .map_or(LanguageCode::OTHER, LanguageCode::from_ordinal),
        _ => LanguageCode::OTHER,
    }
}

/// An `i32` written as a number or as a string holding one; `null` reads as 0.
struct LenientI32(&'static str);

impl<'de> DeserializeSeed<'de> for LenientI32 {
    type Value = i32;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<i32, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for LenientI32 {
    type Value = i32;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "an integer for `{}`", self.0)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<i32, E> {
        i32::try_from(v).map_err(|_| E::custom(format!("bad `{}`", self.0)))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<i32, E> {
        i32::try_from(v).map_err(|_| E::custom(format!("bad `{}`", self.0)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<i32, E> {
        v.trim()
            .parse()
            .map_err(|_| E::custom(format!("bad `{}`", self.0)))
    }

    fn visit_unit<E: de::Error>(self) -> Result<i32, E> {
        Ok(0)
    }
}

/// Fills `extFields` from a JSON object (or nothing from `null`). Values that are not strings
/// are kept as their JSON text; `null` values are dropped.
struct ExtSeed<'a>(&'a mut ExtFields);

impl<'de> DeserializeSeed<'de> for ExtSeed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ExtSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("`extFields` as an object")
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            if let Some(value) = map.next_value::<ExtValue>()?.0 {
                self.0.push_raw(key, value);
            }
        }
        Ok(())
    }
}

/// One `extFields` value: strings (the common case) as they are, numbers and booleans as
/// their text, nested JSON as its text, `null` as nothing.
struct ExtValue(Option<String>);

impl<'de> de::Deserialize<'de> for ExtValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<ExtValue, D::Error> {
        d.deserialize_any(ExtValueVisitor).map(ExtValue)
    }
}

struct ExtValueVisitor;

impl<'de> Visitor<'de> for ExtValueVisitor {
    type Value = Option<String>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Option<String>, E> {
        Ok(Some(v.to_string()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Option<String>, E> {
        Ok(Some(v))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Option<String>, E> {
        Ok(Some(v.to_string()))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Option<String>, E> {
        Ok(Some(v.to_string()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Option<String>, E> {
        Ok(Some(v.to_string()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Option<String>, E> {
        Ok(Some(Value::from(v).to_string()))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Option<String>, E> {
        Ok(None)
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<Option<String>, A::Error> {
        let v: Value = de::Deserialize::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
        Ok(Some(v.to_string()))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Option<String>, A::Error> {
        let v: Value = de::Deserialize::deserialize(de::value::MapAccessDeserializer::new(map))?;
        Ok(Some(v.to_string()))
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
