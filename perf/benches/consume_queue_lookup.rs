//! The pull's consume-queue selection: from an offset, take up to 32 entries through a tag
//! filter, by filter selectivity.

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use petrel_shards::consume_queue::{select, CqEntry, PullLimits, TagFilter};
use petrel_shards::record::tags_code;

fn bench(c: &mut Criterion) {
    let tags = ["TagA", "TagB", "TagC", "TagD"];
    let entries: Vec<CqEntry> = (0..100_000u64)
        .map(|i| CqEntry {
            commit_log_offset: i * 1100,
            size: 1100,
            tags_code: tags_code(tags[(i % 4) as usize]),
            store_timestamp: i as i64,
        })
        .collect();
    let limits = PullLimits {
        messages_max: 32,
        bytes_max: 256 << 10,
        scan_max: 4096,
    };
    let mut group = c.benchmark_group("consume_queue_lookup");
    group.throughput(Throughput::Elements(32));
    for (name, filter) in [
        ("all", TagFilter::All),
        ("one_in_four", TagFilter::parse("TagA")),
        ("two_in_four", TagFilter::parse("TagA || TagC")),
    ] {
        group.bench_with_input(BenchmarkId::new("select", name), &filter, |b, filter| {
            b.iter(|| select(black_box(&entries), black_box(50_000), filter, limits))
        });
    }
    group.bench_function("tag_filter_parse", |b| {
        b.iter(|| TagFilter::parse(black_box("TagA || TagB || TagC")))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
