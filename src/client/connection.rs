//! One blocking connection speaking the remoting protocol. Requests the broker sends on its
//! own (NOTIFY_CONSUMER_IDS_CHANGED) are skipped while waiting for a response.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use petrel_shards::remoting::{self, Decoded, RemotingCommand, SerializeType};

use super::ClientError;

pub struct Connection {
    addr: String,
    stream: TcpStream,
    buf: BytesMut,
    next_opaque: i32,
}

impl Connection {
    pub fn connect(addr: &str, timeout: Duration) -> Result<Connection, ClientError> {
        let io = |e: std::io::Error| ClientError::Io {
            addr: addr.to_string(),
            source: e,
        };
        let socket = addr
            .to_socket_addrs()
            .map_err(io)?
            .next()
            .ok_or_else(|| io(std::io::Error::other("address resolves to nothing")))?;
        let stream = TcpStream::connect_timeout(&socket, timeout).map_err(io)?;
        stream.set_nodelay(true).map_err(io)?;
        stream.set_read_timeout(Some(timeout)).map_err(io)?;
        stream.set_write_timeout(Some(timeout)).map_err(io)?;
        Ok(Connection {
            addr: addr.to_string(),
            stream,
            buf: BytesMut::with_capacity(64 << 10),
            next_opaque: 0,
        })
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    pub fn set_timeout(&mut self, timeout: Duration) {
        let _ = self.stream.set_read_timeout(Some(timeout));
    }

    /// Writes a request and returns its opaque.
    pub fn send(&mut self, mut cmd: RemotingCommand) -> Result<i32, ClientError> {
        let opaque = self.next_opaque;
        self.next_opaque = self.next_opaque.wrapping_add(1);
        cmd.opaque = opaque;
        let mut out = BytesMut::new();
        remoting::encode(&cmd, SerializeType::Json, &mut out);
        self.stream.write_all(&out).map_err(|e| ClientError::Io {
            addr: self.addr.clone(),
            source: e,
        })?;
        Ok(opaque)
    }

    /// Writes raw bytes (tests use it for hostile frames).
    pub fn send_raw(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        self.stream.write_all(bytes).map_err(|e| ClientError::Io {
            addr: self.addr.clone(),
            source: e,
        })
    }

    /// Reads the next response.
    pub fn receive(&mut self) -> Result<RemotingCommand, ClientError> {
        loop {
            let command = self.receive_any()?;
            if command.is_response() {
                return Ok(command);
            }
        }
    }

    /// Reads the next command, request or response.
    pub fn receive_any(&mut self) -> Result<RemotingCommand, ClientError> {
        loop {
            let frozen = Bytes::copy_from_slice(&self.buf);
            match remoting::decode(&frozen, 1 << 30) {
                Ok(Decoded::Command {
                    command,
                    frame_bytes,
                }) => {
                    let _ = self.buf.split_to(frame_bytes);
                    return Ok(command);
                }
                Ok(Decoded::Malformed { error, .. }) | Err(error) => {
                    return Err(ClientError::Protocol {
                        addr: self.addr.clone(),
                        reason: error.to_string(),
                    })
                }
                Ok(Decoded::Incomplete { .. }) => {
                    let mut chunk = [0u8; 64 << 10];
                    let n = self.stream.read(&mut chunk).map_err(|e| ClientError::Io {
                        addr: self.addr.clone(),
                        source: e,
                    })?;
                    if n == 0 {
                        return Err(ClientError::Io {
                            addr: self.addr.clone(),
                            source: std::io::ErrorKind::UnexpectedEof.into(),
                        });
                    }
                    self.buf.extend_from_slice(&chunk[..n]);
                }
            }
        }
    }

    /// Sends `cmd` and waits for its response.
    pub fn call(&mut self, cmd: RemotingCommand) -> Result<RemotingCommand, ClientError> {
        let opaque = self.send(cmd)?;
        loop {
            let response = self.receive()?;
            if response.opaque == opaque {
                return Ok(response);
            }
        }
    }
}
