//! Errors of the pure remoting codec. Each variant carries the numbers a reader needs.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("frame length {declared} exceeds limit {limit}")]
    TooLarge { declared: u32, limit: u32 },
    #[error("frame length {declared} is shorter than the 4-byte header-length word")]
    TooShort { declared: u32 },
    #[error("header length {header} overruns frame length {frame}")]
    HeaderOverrun { header: u32, frame: u32 },
    #[error("unknown serialize type {0} (0 = JSON, 1 = ROCKETMQ)")]
    SerializeType(u8),
    #[error("bad JSON header: {0}")]
    Json(String),
    #[error("bad ROCKETMQ header: {0}")]
    Binary(&'static str),
}
