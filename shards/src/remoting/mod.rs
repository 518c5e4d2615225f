//! The remoting codec: frames, JSON and ROCKETMQ-binary headers, request and response codes.
//! Pure: `&[u8]`/`Bytes` in, values out; no I/O and no executor, so it is fuzzed and benched
//! on its own.

pub mod codes;
pub mod command;
pub mod error;
pub mod fastjson;
pub mod frame;
mod header_binary;
mod header_json;
pub mod headers;

pub use codes::{request, response, LanguageCode, PETREL_VERSION};
pub use command::{ExtFields, RemotingCommand, SerializeType};
pub use error::FrameError;
pub use frame::{decode, encode, encode_to_bytes, Decoded};

#[cfg(test)]
mod tests;

#[cfg(test)]
mod fixtures;
