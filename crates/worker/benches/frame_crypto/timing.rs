//! The clock and how long to run it.

use wasm_bindgen::JsCast;
use web_sys::{Performance, WorkerGlobalScope};

/// Run each case this long first: the JIT, the allocator and WebCrypto's thread pool settle,
/// and the time per frame it shows sizes the batches.
pub const WARM_UP_MS: f64 = 100.0;
/// Each batch runs at least this long, so the clock's coarseness (5 µs to 100 µs, depending
/// on isolation) stays far below 1 %.
pub const BATCH_MS: f64 = 200.0;
/// Batches per case in [`sync_us`](crate::sync_us), which times one thing at a time.
pub const BATCHES: usize = 7;
/// Passes over the whole table of frame sizes, and batches per case in each.
pub const PASSES: usize = 3;
pub const BATCHES_PER_PASS: usize = 3;

/// How many calls make a batch of at least [`BATCH_MS`], given that `calls` took `ms` during
/// the warm-up.
pub fn batch_len(ms: f64, calls: usize) -> usize {
    ((BATCH_MS / (ms / calls as f64)).ceil() as usize).max(1)
}

/// Steps of [`probe`]: a few milliseconds of work, far above the clock's coarseness.
const PROBE_STEPS: u32 = 1_000_000;

/// Times a fixed run of work, the same in every run of the benchmark, that keeps the
/// processor's arithmetic units busy as the crypto does (eight independent chains, not one
/// that waits on itself): how long it takes at a given moment shows how much of the
/// processor the host gives us then.
pub fn probe(clock: &Stopwatch) -> f64 {
    let started = clock.now();
    let mut x: [u64; 8] = core::hint::black_box(core::array::from_fn(|i| 0x9e37_79b9 + i as u64));
    for _ in 0..PROBE_STEPS {
        for v in &mut x {
            *v ^= *v << 13;
            *v ^= *v >> 7;
            *v ^= *v << 17;
        }
    }
    core::hint::black_box(x);
    clock.now() - started
}

/// `performance.now()` of the worker.
pub struct Stopwatch(Performance);

impl Stopwatch {
    pub fn new() -> Self {
        let scope: WorkerGlobalScope = js_sys::global().unchecked_into();
        Self(scope.performance().expect("workers have performance"))
    }

    pub fn now(&self) -> f64 {
        self.0.now()
    }
}

pub fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// The smallest sample: interference from the host only ever adds time.
pub fn fastest(samples: &[f64]) -> f64 {
    samples.iter().copied().fold(f64::INFINITY, f64::min)
}
