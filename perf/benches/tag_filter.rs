//! Tag filtering on the pull path: parsing a subscription expression, and matching stored tag
//! codes against it, by the number of tags in the expression.

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use petrel_shards::consume_queue::TagFilter;
use petrel_shards::record::tags_code;

const CODES: usize = 1024;

fn bench(c: &mut Criterion) {
    let stored: Vec<i64> = (0..CODES)
        .map(|i| tags_code(&format!("Tag{}", i % 64)))
        .collect();
    let mut group = c.benchmark_group("tag_filter");
    for tags in [1usize, 4, 16, 64] {
        let expression = (0..tags)
            .map(|i| format!("Tag{}", i * 2))
            .collect::<Vec<_>>()
            .join(" || ");
        group.throughput(Throughput::Elements(1));
        group.bench_with_input(BenchmarkId::new("parse", tags), &expression, |b, e| {
            b.iter(|| TagFilter::parse(black_box(e)))
        });
        let filter = TagFilter::parse(&expression);
        group.throughput(Throughput::Elements(CODES as u64));
        group.bench_with_input(BenchmarkId::new("matches", tags), &filter, |b, f| {
            b.iter(|| {
                stored
                    .iter()
                    .filter(|&&code| f.matches(black_box(code)))
                    .count()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
