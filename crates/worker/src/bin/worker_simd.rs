//! The frame worker built with the `simd` feature: the same worker, sealing frames with our
//! WebAssembly SIMD AES-GCM. A binary of its own so trunk's output for it (`worker-simd*.js`,
//! `.wasm`) sits next to the portable worker's without clashing.

fn main() {
    conclave_worker::start();
}
