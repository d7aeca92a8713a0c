//! What one frame costs natively, through the same `FrameEncryptor`/`FrameDecryptor` the worker
//! uses, at the frame sizes a call produces: an Opus packet, a small and a typical VP8 delta
//! frame, and VP8 key frames. `cargo xtask bench` measures the same in the browser.

use std::hint::black_box;
use std::time::{Duration, Instant};

use conclave_e2ee::MediaKey;
use conclave_e2ee::frame::{Codec, FrameDecryptor, FrameEncryptor, key_id};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

const SIZES: [(usize, Codec); 5] = [
    (150, Codec::Opus),
    (1_200, Codec::Vp8),
    (10_000, Codec::Vp8),
    (50_000, Codec::Vp8),
    (200_000, Codec::Vp8),
];

/// Frames sealed ahead of one measured run; bounded so 200 KB frames stay within memory.
const BATCH: u64 = 256;

fn frame(len: usize, codec: Codec) -> Vec<u8> {
    let mut frame: Vec<u8> = (0..len).map(|i| i as u8).collect();
    if codec == Codec::Vp8 {
        // A delta frame: bit 0 of the frame tag set.
        frame[0] |= 1;
    }
    frame
}

fn frames(c: &mut Criterion) {
    let key = MediaKey::from_bytes([7; 32]);
    let kid = key_id(1, 0);
    let mut group = c.benchmark_group("frame");
    for (len, codec) in SIZES {
        let plain = frame(len, codec);
        group.throughput(Throughput::Bytes(len as u64));

        let mut tx = FrameEncryptor::new();
        tx.set_key(kid, &key);
        group.bench_with_input(BenchmarkId::new("encrypt", len), &plain, |b, plain| {
            b.iter(|| black_box(tx.encrypt(codec, black_box(plain)).unwrap().len()));
        });

        // Every decryption needs a frame this receiver has not seen, so frames are sealed in
        // batches outside the measured time, each batch for a fresh receiver.
        group.bench_with_input(BenchmarkId::new("decrypt", len), &plain, |b, plain| {
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                let mut left = iters;
                while left > 0 {
                    let batch = left.min(BATCH);
                    left -= batch;
                    let sealed: Vec<Vec<u8>> = (0..batch)
                        .map(|_| tx.encrypt(codec, plain).unwrap().to_vec())
                        .collect();
                    let mut rx = FrameDecryptor::new();
                    rx.set_keys([(kid, &key)]);
                    let start = Instant::now();
                    for frame in &sealed {
                        black_box(rx.decrypt(codec, frame).unwrap().len());
                    }
                    spent += start.elapsed();
                }
                spent
            });
        });
    }
    group.finish();
}

criterion_group!(benches, frames);
criterion_main!(benches);
