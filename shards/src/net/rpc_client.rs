//! A small request/response client on the shard's executor, for what a broker asks of name
//! servers (registration). One request at a time per address; the connection is kept open
//! because a name server treats a closed broker connection as the broker leaving.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;

use crate::remoting::{self, Decoded, RemotingCommand, SerializeType};

#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    #[error("{addr}: {source}")]
    Io {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{addr}: no response within {timeout:?}")]
    Timeout { addr: String, timeout: Duration },
    #[error("{addr}: bad frame: {reason}")]
    Frame { addr: String, reason: String },
}

#[derive(Default)]
pub struct RpcClient {
    streams: RefCell<HashMap<String, Rc<RefCell<Option<TcpStream>>>>>,
    next_opaque: std::cell::Cell<i32>,
    /// Every request is signed with these, when set (name servers with `aclEnable`).
    credentials: Option<crate::acl::Credentials>,
}

impl RpcClient {
    /// A client that signs every request with `credentials`, if any.
    pub fn signing(credentials: Option<crate::acl::Credentials>) -> RpcClient {
        RpcClient {
            credentials,
            ..RpcClient::default()
        }
    }

    /// Sends `cmd` to `addr` and waits up to `timeout` for its response.
    pub async fn call(
        &self,
        addr: &str,
        mut cmd: RemotingCommand,
        timeout: Duration,
    ) -> Result<RemotingCommand, RpcError> {
        let opaque = self.next_opaque.get();
        self.next_opaque.set(opaque.wrapping_add(1));
        cmd.opaque = opaque;
        if let Some(credentials) = &self.credentials {
            credentials.sign(&mut cmd);
        }
        let slot = self
            .streams
            .borrow_mut()
            .entry(addr.to_string())
            .or_default()
            .clone();
        let addr_owned = addr.to_string();
        let result = glommio::timer::timeout(timeout, async move {
            Ok(Self::exchange(&slot, &addr_owned, &cmd).await)
        })
        .await;
        match result {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(e)) => {
                self.streams.borrow_mut().remove(addr);
                Err(e)
            }
            Err(_) => {
                self.streams.borrow_mut().remove(addr);
                Err(RpcError::Timeout {
                    addr: addr.to_string(),
                    timeout,
                })
            }
        }
    }

    async fn exchange(
        slot: &Rc<RefCell<Option<TcpStream>>>,
        addr: &str,
        cmd: &RemotingCommand,
    ) -> Result<RemotingCommand, RpcError> {
        let io = |source| RpcError::Io {
            addr: addr.to_string(),
            source,
        };
        let taken = slot.borrow_mut().take();
        let mut stream = match taken {
            Some(s) => s,
            None => {
                let s = TcpStream::connect(addr).await.map_err(|e| io(e.into()))?;
                let _ = s.set_nodelay(true);
                s
            }
        };
        let mut out = BytesMut::new();
        remoting::encode(cmd, SerializeType::Json, &mut out);
        stream.write_all(&out).await.map_err(io)?;
        let mut buf = BytesMut::new();
        let response = loop {
            let frozen = Bytes::copy_from_slice(&buf);
            match remoting::decode(&frozen, 64 << 20) {
                Ok(Decoded::Command {
                    command,
                    frame_bytes,
                }) => {
                    let _ = buf.split_to(frame_bytes);
                    if command.is_response() && command.opaque == cmd.opaque {
                        break command;
                    }
                }
                Ok(Decoded::Malformed { error, .. }) | Err(error) => {
                    return Err(RpcError::Frame {
                        addr: addr.to_string(),
                        reason: error.to_string(),
                    })
                }
                Ok(Decoded::Incomplete { .. }) => {
                    let mut chunk = vec![0u8; 64 << 10];
                    let n = stream.read(&mut chunk).await.map_err(io)?;
                    if n == 0 {
                        return Err(io(std::io::ErrorKind::UnexpectedEof.into()));
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
            }
        };
        *slot.borrow_mut() = Some(stream);
        Ok(response)
    }
}
