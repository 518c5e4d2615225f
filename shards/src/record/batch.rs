//! The body of SEND_BATCH_MESSAGE: messages concatenated as `totalSize i32 · magic i32 ·
//! bodyCRC i32 · flag i32 · bodyLen i32 · body · propsLen i16 · properties` (spec §4.1.2).

use super::RecordError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchItem<'a> {
    pub flag: i32,
    pub body: &'a [u8],
    pub properties: &'a str,
}

/// Iterates the items of a batch body; stops with an error at the first malformed item.
pub struct BatchIter<'a> {
    buf: &'a [u8],
}

impl<'a> BatchIter<'a> {
    pub fn new(buf: &'a [u8]) -> BatchIter<'a> {
        BatchIter { buf }
    }

    fn next_item(&mut self) -> Result<BatchItem<'a>, RecordError> {
        let b = self.buf;
        let need = |n: usize| {
            if b.len() < n {
                Err(RecordError::Truncated {
                    need: n,
                    have: b.len(),
                })
            } else {
                Ok(())
            }
        };
        need(20)?;
        let total = i32::from_be_bytes(b[0..4].try_into().expect("4 bytes"));
        let total = usize::try_from(total).map_err(|_| RecordError::BadSize(total as i64))?;
        need(total)?;
        let flag = i32::from_be_bytes(b[12..16].try_into().expect("4 bytes"));
        let body_len = i32::from_be_bytes(b[16..20].try_into().expect("4 bytes"));
        let body_len =
            usize::try_from(body_len).map_err(|_| RecordError::BadSize(body_len as i64))?;
        let body_end = 20usize
            .checked_add(body_len)
            .ok_or(RecordError::BadSize(body_len as i64))?;
        need(body_end + 2)?;
        let props_len = i16::from_be_bytes(b[body_end..body_end + 2].try_into().expect("2 bytes"));
        let props_len =
            usize::try_from(props_len).map_err(|_| RecordError::BadSize(props_len as i64))?;
        let end = body_end + 2 + props_len;
        if end != total {
            return Err(RecordError::SizeMismatch { fields: end, total });
        }
        let properties = std::str::from_utf8(&b[body_end + 2..end]).unwrap_or("");
        let item = BatchItem {
            flag,
            body: &b[20..body_end],
            properties,
        };
        self.buf = &b[total..];
        Ok(item)
    }
}

impl<'a> Iterator for BatchIter<'a> {
    type Item = Result<BatchItem<'a>, RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.buf.is_empty() {
            return None;
        }
        let item = self.next_item();
        if item.is_err() {
            self.buf = &[];
        }
        Some(item)
    }
}

/// Encodes one batch item, as clients do.
pub fn encode_batch_item(flag: i32, body: &[u8], properties: &str, out: &mut Vec<u8>) {
    let total = 20 + body.len() + 2 + properties.len();
    out.extend_from_slice(&(total as i32).to_be_bytes());
    out.extend_from_slice(&0i32.to_be_bytes());
    out.extend_from_slice(&0i32.to_be_bytes());
    out.extend_from_slice(&flag.to_be_bytes());
    out.extend_from_slice(&(body.len() as i32).to_be_bytes());
    out.extend_from_slice(body);
    out.extend_from_slice(&(properties.len() as i16).to_be_bytes());
    out.extend_from_slice(properties.as_bytes());
}
