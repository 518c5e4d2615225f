//! Listening sockets. Bound with socket2 *without* SO_REUSEPORT (glommio's own `bind` sets it,
//! which would let a second broker silently share a port), so a taken port fails at start-up
//! with an error naming the port and its config key (F32).

use std::net::{SocketAddr, TcpListener as StdListener};
use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};

use socket2::{Domain, Protocol, Socket, Type};

#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("{key} {port}: address already in use ({addr})")]
    InUse {
        key: String,
        port: u16,
        addr: SocketAddr,
    },
    #[error("{key} {addr}: cannot listen: {source}")]
    Other {
        key: String,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Binds `addr` for the config key `key` and returns the listening socket and its real address.
pub fn bind(key: &str, addr: SocketAddr) -> Result<(OwnedFd, SocketAddr), BindError> {
    let other = |source| BindError::Other {
        key: key.to_string(),
        addr,
        source,
    };
    let socket =
        Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP)).map_err(other)?;
    socket.set_reuse_address(true).map_err(other)?;
    socket.set_nonblocking(true).map_err(other)?;
    if let Err(e) = socket.bind(&addr.into()) {
        if e.kind() == std::io::ErrorKind::AddrInUse {
            return Err(BindError::InUse {
                key: key.to_string(),
                port: addr.port(),
                addr,
            });
        }
        return Err(other(e));
    }
    socket.listen(1024).map_err(other)?;
    let std_listener: StdListener = socket.into();
    let local = std_listener.local_addr().map_err(other)?;
    Ok((std_listener.into(), local))
}

/// Wraps a bound socket for the current executor.
pub fn into_glommio(fd: OwnedFd) -> glommio::net::TcpListener {
    // SAFETY: `fd` is an owned, listening TCP socket; ownership passes to the listener.
    unsafe { glommio::net::TcpListener::from_raw_fd(fd.into_raw_fd()) }
}

/// Failed accepts on one listener. Each pauses the loop briefly, so that a process out of
/// descriptors does not spin; they are logged at the 1st, 2nd, 4th, 8th… so that it does not
/// write a line every pause either.
pub struct AcceptFailures {
    listener: String,
    count: u64,
}

/// How long an accept loop waits after a failed accept.
const ACCEPT_RETRY: std::time::Duration = std::time::Duration::from_millis(10);

impl AcceptFailures {
    pub fn new(listener: impl Into<String>) -> Self {
        AcceptFailures {
            listener: listener.into(),
            count: 0,
        }
    }

    pub async fn pause(&mut self, error: &glommio::GlommioError<()>) {
        self.count += 1;
        if self.count.is_power_of_two() {
            let out_of_files = matches!(
                error,
                glommio::GlommioError::IoError(e)
                    if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
            );
            let hint = if out_of_files {
                ": new connections wait in the backlog until descriptors free up (raise `ulimit -n` or lower clientConnectionsMax)"
            } else {
                ""
            };
            log::warn!(
                "{}: accept failed: {error}{hint} ({} failures so far)",
                self.listener,
                self.count
            );
        }
        glommio::timer::sleep(ACCEPT_RETRY).await;
    }
}
