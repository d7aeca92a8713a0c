//! Native frame-encryption benchmark: the public type (RustCrypto underneath on native
//! targets), the bitsliced algorithm on the portable vector emulation, and RustCrypto
//! `aes-gcm` directly. The wasm numbers that matter come from `tests/wasm_speed.rs`.

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use aes_gcm::KeyInit;
    use aes_gcm::aead::AeadInOut;
    use criterion::{BenchmarkId, Criterion, Throughput};
    use std::hint::black_box;

    pub fn frames(c: &mut Criterion) {
        let key = [0x42; 16];
        let nonce = [7; 12];
        let aad = [1u8; 10];
        let public = conclave_gcm::Aes128Gcm::new(&key);
        let bitsliced = conclave_gcm::bitsliced::Aes128Gcm::new(&key);
        let rustcrypto = aes_gcm::Aes128Gcm::new((&key).into());
        let mut group = c.benchmark_group("encrypt");
        for len in [150usize, 1200, 10_000, 50_000, 200_000] {
            let mut buf = vec![0x5a; len];
            group.throughput(Throughput::Bytes(len as u64));
            group.bench_with_input(
                BenchmarkId::new(conclave_gcm::BACKEND, len),
                &len,
                |b, _| {
                    b.iter(|| black_box(public.encrypt_in_place_detached(&nonce, &aad, &mut buf)))
                },
            );
            group.bench_with_input(BenchmarkId::new("bitsliced-portable", len), &len, |b, _| {
                b.iter(|| black_box(bitsliced.encrypt_in_place_detached(&nonce, &aad, &mut buf)))
            });
            group.bench_with_input(BenchmarkId::new("aes-gcm", len), &len, |b, _| {
                b.iter(|| {
                    black_box(
                        rustcrypto
                            .encrypt_inout_detached(
                                (&nonce).into(),
                                &aad,
                                buf.as_mut_slice().into(),
                            )
                            .unwrap(),
                    )
                })
            });
        }
        group.finish();
    }
}

#[cfg(not(target_arch = "wasm32"))]
criterion::criterion_group!(benches, native::frames);
#[cfg(not(target_arch = "wasm32"))]
criterion::criterion_main!(benches);

#[cfg(target_arch = "wasm32")]
fn main() {}
