//! The open-files limit and the connections it allows. A connection holds two descriptors
//! (its reader and its writer each own one, see `serve_connection`), and a process out of
//! descriptors cannot even accept a connection to close it: the client would wait in the
//! kernel's backlog until something else closed. So the broker raises its soft limit to the
//! hard one, as servers do, and serves no more connections than the rest leaves room for.

/// Descriptors one served connection holds.
pub const DESCRIPTORS_PER_CONNECTION: u64 = 2;

/// Descriptors kept for everything that is not a client connection: store files, listeners,
/// the cross-shard mesh, io_uring rings, name-server and replication links.
fn reserved(limit: u64) -> u64 {
    (limit / 4).min(1024)
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit and returns the soft limit in force.
pub fn raise_limit() -> std::io::Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid rlimit for the call to fill.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: `raised` is a valid rlimit; the call only reads it.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            limit.rlim_cur = limit.rlim_max;
        }
    }
    Ok(limit.rlim_cur)
}

/// Client connections a process with `limit` open files can serve and still accept (and
/// close) one more.
pub fn connections_allowed(limit: u64) -> usize {
    let room = limit.saturating_sub(reserved(limit)) / DESCRIPTORS_PER_CONNECTION;
    usize::try_from(room).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reserve_leaves_room_for_the_store_and_the_links() {
        assert_eq!(connections_allowed(20_000), (20_000 - 1024) / 2);
        assert_eq!(connections_allowed(1024), (1024 - 256) / 2);
        assert_eq!(connections_allowed(0), 0);
        assert_eq!(
            connections_allowed(u64::MAX),
            ((u64::MAX - 1024) / 2) as usize
        );
    }
}
