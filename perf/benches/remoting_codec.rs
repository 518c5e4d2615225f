//! Frame encode and decode of a SEND_MESSAGE_V2 request by body size.

use bytes::{Bytes, BytesMut};
use criterion::{
    black_box, criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput,
};
use petrel_shards::remoting::headers::SendMessageHeader;
use petrel_shards::remoting::{self, request, RemotingCommand, SerializeType};

const SIZES: [usize; 4] = [128, 1024, 4096, 65536];

fn send_request(body: usize) -> RemotingCommand {
    let header = SendMessageHeader {
        producer_group: "PG".into(),
        topic: "TopicTest".into(),
        default_topic: "TBW102".into(),
        default_topic_queue_nums: 4,
        queue_id: 3,
        sys_flag: 0,
        born_timestamp: 1_718_000_000_000,
        flag: 0,
        properties: "TAGS\u{1}TagA\u{2}KEYS\u{1}order-1\u{2}UNIQ_KEY\u{1}7F0000012B6418B4AAC2000000000000\u{2}".into(),
        reconsume_times: 0,
        max_reconsume_times: None,
        batch: false,
    };
    RemotingCommand::request(
        request::SEND_MESSAGE_V2,
        header.to_short_fields(),
        Bytes::from(vec![7u8; body]),
    )
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("remoting_codec");
    for size in SIZES {
        let cmd = send_request(size);
        group.throughput(Throughput::Bytes(size as u64));
        for (name, serialize) in [
            ("encode_json", SerializeType::Json),
            ("encode_binary", SerializeType::RocketMq),
        ] {
            group.bench_with_input(BenchmarkId::new(name, size), &cmd, |b, cmd| {
                b.iter_batched_ref(
                    || BytesMut::with_capacity(size + 512),
                    |out| remoting::encode(black_box(cmd), serialize, out),
                    BatchSize::SmallInput,
                )
            });
        }
        for (name, serialize) in [
            ("decode_json", SerializeType::Json),
            ("decode_binary", SerializeType::RocketMq),
        ] {
            let mut out = BytesMut::new();
            remoting::encode(&cmd, serialize, &mut out);
            let frame = out.freeze();
            group.bench_with_input(BenchmarkId::new(name, size), &frame, |b, frame| {
                b.iter(|| remoting::decode(black_box(frame), 1 << 26).expect("valid frame"))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
