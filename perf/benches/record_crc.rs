//! Record encode (with RocketMQ's body CRC), the commit log's crc32c trailer, and record
//! decode, by body size.

use criterion::{
    black_box, criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput,
};
use petrel_shards::record::{self, MessageToStore};

const SIZES: [usize; 4] = [128, 1024, 4096, 65536];

fn message(body: &[u8]) -> MessageToStore<'_> {
    MessageToStore {
        topic: "TopicTest",
        queue_id: 3,
        flag: 0,
        sys_flag: 0,
        born_timestamp: 1_718_000_000_000,
        born_host: "10.0.0.5:54321".parse().unwrap(),
        store_timestamp: 1_718_000_000_001,
        store_host: "10.0.0.1:10911".parse().unwrap(),
        reconsume_times: 0,
        prepared_transaction_offset: 0,
        body,
        properties: "TAGS\u{1}TagA\u{2}UNIQ_KEY\u{1}7F0000012B6418B4AAC2000000000000\u{2}CLUSTER\u{1}DefaultCluster\u{2}",
    }
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("record_crc");
    for size in SIZES {
        let body = vec![42u8; size];
        let msg = message(&body);
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_function(BenchmarkId::new("encode", size), |b| {
            b.iter_batched_ref(
                || Vec::with_capacity(size + 256),
                |out| record::encode(black_box(&msg), 1, 4096, out),
                BatchSize::SmallInput,
            )
        });
        let mut encoded = Vec::new();
        record::encode(&msg, 1, 4096, &mut encoded);
        group.bench_function(BenchmarkId::new("crc32c_trailer", size), |b| {
            b.iter(|| crc32c::crc32c(black_box(&encoded)))
        });
        group.bench_function(BenchmarkId::new("body_crc32", size), |b| {
            b.iter(|| record::body_crc(black_box(&body)))
        });
        group.bench_function(BenchmarkId::new("decode", size), |b| {
            b.iter(|| record::decode(black_box(&encoded)).expect("valid"))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
