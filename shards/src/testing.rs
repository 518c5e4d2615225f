//! Helpers shared by this crate's unit tests.

use crate::record::MessageToStore;

/// Runs `f` on a fresh, unpinned executor with little I/O memory, and fails the test if the
/// executor panicked.
pub fn run<F: std::future::Future<Output = ()> + 'static>(f: impl FnOnce() -> F + Send + 'static) {
    glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .io_memory(256 << 10)
        .spawn(move || async move { f().await })
        .expect("executor starts")
        .join()
        .expect("test executor panicked");
}

/// A message for queue 0 of `topic` with fixed hosts and times.
pub fn message<'a>(topic: &'a str, body: &'a [u8], properties: &'a str) -> MessageToStore<'a> {
    MessageToStore {
        topic,
        queue_id: 0,
        flag: 0,
        sys_flag: 0,
        born_timestamp: 1,
        born_host: "127.0.0.1:1".parse().expect("literal address"),
        store_timestamp: 2,
        store_host: "127.0.0.1:2".parse().expect("literal address"),
        reconsume_times: 0,
        prepared_transaction_offset: 0,
        body,
        properties,
    }
}
