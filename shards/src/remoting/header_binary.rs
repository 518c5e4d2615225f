//! ROCKETMQ binary header (serialize type 1, spec §1.4). Every length is checked against the
//! bytes actually present before anything is allocated.

use bytes::Bytes;

use super::codes::LanguageCode;
use super::command::{ExtFields, RemotingCommand};
use super::error::FrameError;

/// Fixed part: code i16, language u8, version i16, opaque i32, flag i32, remark length i32.
const FIXED_BYTES: usize = 17;

pub fn decode(header: &[u8], body: Bytes) -> Result<RemotingCommand, FrameError> {
    let mut r = Reader {
        buf: header,
        pos: 0,
    };
    let code = r.i16()? as i32;
    let language = LanguageCode::from_ordinal(r.u8()?);
    let version = r.i16()? as i32;
    let opaque = r.i32()?;
    let flag = r.i32()?;
    let remark_len = r.len_i32("remark length")?;
    let remark = if remark_len == 0 {
        None
    } else {
        Some(r.string(remark_len, "remark")?)
    };
    let ext_len = r.len_i32("extFields length")?;
    let ext_bytes = r.take(ext_len, "extFields")?;
    let mut ext = Reader {
        buf: ext_bytes,
        pos: 0,
    };
    let mut ext_fields = ExtFields::new();
    while ext.pos < ext.buf.len() {
        let key_len = ext.i16()?;
        let key_len =
            usize::try_from(key_len).map_err(|_| FrameError::Binary("negative key length"))?;
        let key = ext.string(key_len, "key")?;
        let value_len = ext.len_i32("value length")?;
        let value = ext.string(value_len, "value")?;
        if !key.is_empty() && !value.is_empty() {
            ext_fields.push_raw(key, value);
        }
    }
    if r.pos != header.len() {
        return Err(FrameError::Binary("trailing bytes after extFields"));
    }
    Ok(RemotingCommand {
        code,
        language,
        version,
        opaque,
        flag,
        remark,
        ext_fields,
        body,
    })
}

/// Appends the binary header of `cmd` to `out`. Codes above `i16::MAX` are truncated, as Java
/// does (spec §1.4).
pub fn encode(cmd: &RemotingCommand, out: &mut Vec<u8>) {
    out.reserve(FIXED_BYTES + 4);
    out.extend_from_slice(&(cmd.code as i16).to_be_bytes());
    out.push(cmd.language.0);
    out.extend_from_slice(&(cmd.version as i16).to_be_bytes());
    out.extend_from_slice(&cmd.opaque.to_be_bytes());
    out.extend_from_slice(&cmd.flag.to_be_bytes());
    let remark = cmd.remark.as_deref().unwrap_or("");
    out.extend_from_slice(&(remark.len() as i32).to_be_bytes());
    out.extend_from_slice(remark.as_bytes());
    let ext_len_at = out.len();
    out.extend_from_slice(&0i32.to_be_bytes());
    for (key, value) in cmd.ext_fields.iter() {
        if key.is_empty() || value.is_empty() {
            continue;
        }
        out.extend_from_slice(&(key.len() as i16).to_be_bytes());
        out.extend_from_slice(key.as_bytes());
        out.extend_from_slice(&(value.len() as i32).to_be_bytes());
        out.extend_from_slice(value.as_bytes());
    }
    let ext_len = (out.len() - ext_len_at - 4) as i32;
    out[ext_len_at..ext_len_at + 4].copy_from_slice(&ext_len.to_be_bytes());
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], FrameError> {
        let end = self.pos.checked_add(n).filter(|end| *end <= self.buf.len());
        let Some(end) = end else {
            return Err(FrameError::Binary(what));
        };
        let slice = &self.buf[self.pos..end];
        self.pos = end;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], FrameError> {
        let bytes = self.take(N, "fixed header fields")?;
        Ok(bytes.try_into().expect("take returned N bytes"))
    }

    fn u8(&mut self) -> Result<u8, FrameError> {
        Ok(self.array::<1>()?[0])
    }

    fn i16(&mut self) -> Result<i16, FrameError> {
        Ok(i16::from_be_bytes(self.array()?))
    }

    fn i32(&mut self) -> Result<i32, FrameError> {
        Ok(i32::from_be_bytes(self.array()?))
    }

    fn len_i32(&mut self, what: &'static str) -> Result<usize, FrameError> {
        usize::try_from(self.i32()?).map_err(|_| FrameError::Binary(what))
    }

    fn string(&mut self, n: usize, what: &'static str) -> Result<String, FrameError> {
        let bytes = self.take(n, what)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| FrameError::Binary("string is not UTF-8"))
    }
}
