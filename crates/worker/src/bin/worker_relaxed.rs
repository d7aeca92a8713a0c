//! The frame worker built with the `relaxed` feature: the SIMD worker whose AES-GCM also uses
//! WebAssembly relaxed SIMD, for browsers that validate it. A binary of its own for the same
//! reason as `worker-simd`.

fn main() {
    conclave_worker::start();
}
