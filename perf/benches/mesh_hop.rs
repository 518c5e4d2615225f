//! One hop over the cross-shard mesh and back: one shard sends a remoting frame to another,
//! which answers with it, as the front door does when a request belongs to another shard. By
//! body size; the two executors are unpinned so the bench runs on any core count.

use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use glommio::{LocalExecutorBuilder, Placement};
use petrel_shards::mesh::{Mesh, MeshBuilder, MeshMessage, MESH_CHANNEL_CAPACITY};
use petrel_shards::remoting::{request, ExtFields, RemotingCommand};

/// Runs `iters` calls from shard 0 to an echoing shard 1; returns the time they took.
fn round_trips(iters: u64, body: usize) -> Duration {
    let builder = MeshBuilder::full(2, MESH_CHANNEL_CAPACITY);
    let echo_builder = builder.clone();
    let echo = LocalExecutorBuilder::new(Placement::Unbound)
        .spawn(move || async move {
            let (mesh, mut receivers) = Mesh::join(echo_builder).await.expect("mesh");
            let (peer, receiver) = receivers.streams().pop().expect("one peer");
            while let Some(message) = receiver.recv().await {
                match message {
                    MeshMessage::Request { id, frame } => mesh.reply(peer, id, frame).await,
                    MeshMessage::Reply { .. } | MeshMessage::HandOver { .. } => {
                        unreachable!("shard 1 sends no requests")
                    }
                }
            }
        })
        .expect("echo executor");
    let caller = LocalExecutorBuilder::new(Placement::Unbound)
        .spawn(move || async move {
            let (mesh, mut receivers) = Mesh::join(builder).await.expect("mesh");
            let (_, receiver) = receivers.streams().pop().expect("one peer");
            let replies = mesh.clone();
            let pump = glommio::spawn_local(async move {
                while let Some(MeshMessage::Reply { id, frame }) = receiver.recv().await {
                    replies.complete(id, frame);
                }
            });
            let cmd = RemotingCommand::request(
                request::SEND_MESSAGE_V2,
                ExtFields::new(),
                Bytes::from(vec![7u8; body]),
            );
            // Mesh ids follow join order, so the echo is whichever id this end is not.
            let echo_id = 1 - mesh.shard_id();
            let start = Instant::now();
            for _ in 0..iters {
                mesh.call(echo_id, &cmd).await.expect("a reply");
            }
            let elapsed = start.elapsed();
            // Dropping the pump cancels it; dropping the mesh ends the echo's receive loop.
            drop(pump);
            drop(mesh);
            elapsed
        })
        .expect("caller executor");
    let elapsed = caller.join().expect("caller ran");
    // The echo ends when the caller's senders are gone.
    let _ = echo.join();
    elapsed
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("mesh_hop");
    group.throughput(Throughput::Elements(1));
    group.sample_size(20);
    for body in [0usize, 1024, 65536] {
        group.bench_with_input(BenchmarkId::new("round_trip", body), &body, |b, &body| {
            b.iter_custom(|iters| round_trips(iters, body))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
