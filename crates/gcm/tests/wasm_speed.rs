//! Frame encryption speed in the wasm runtime, ours against RustCrypto in the same module.
//! Ignored by default (it measures, it does not check); run with
//! `cargo test -p conclave-gcm --target wasm32-unknown-unknown --release --features simd
//! --test wasm_speed -- --include-ignored --nocapture` (Node), or with
//! `WASM_BINDGEN_USE_BROWSER=1 CHROMEDRIVER=chromedriver` in headless Chromium.

#![cfg(target_arch = "wasm32")]

use aes_gcm::KeyInit;
use aes_gcm::aead::AeadInOut;
use wasm_bindgen::JsCast;
use wasm_bindgen_test::{console_log, wasm_bindgen_test};

/// CPU time of this process in milliseconds (Node's `process.cpuUsage()`): on a shared
/// machine, wall-clock time would also count the time other processes held the core. In a
/// browser (`WASM_BINDGEN_USE_BROWSER=1`), which has no such clock, `performance.now()`.
fn now_ms() -> f64 {
    use js_sys::{Function, Reflect};
    let global = js_sys::global();
    let get = |o: &wasm_bindgen::JsValue, k: &str| Reflect::get(o, &k.into()).unwrap();
    let process = get(&global, "process");
    if process.is_object() {
        let usage = get(&process, "cpuUsage")
            .unchecked_into::<Function>()
            .call0(&process)
            .unwrap();
        let field = |k: &str| get(&usage, k).as_f64().unwrap();
        (field("user") + field("system")) / 1000.0
    } else {
        let performance = get(&global, "performance");
        get(&performance, "now")
            .unchecked_into::<Function>()
            .call0(&performance)
            .unwrap()
            .as_f64()
            .unwrap()
    }
}

/// Fastest of many short runs of the mean time of `f`, in microseconds: the machine may be
/// shared, interference only ever adds time, and it comes in bursts that a few long runs
/// would all catch.
fn time_us(len: usize, mut f: impl FnMut()) -> f64 {
    // Runs of 5–15 ms: long enough for performance.now()'s coarse ticks in a page.
    let iters = (6_000_000 / (len + 2000)).clamp(4, 3_000);
    for _ in 0..iters * 4 {
        f();
    }
    (0..41)
        .map(|_| {
            let t = now_ms();
            for _ in 0..iters {
                f();
            }
            (now_ms() - t) * 1000.0 / iters as f64
        })
        .fold(f64::MAX, f64::min)
}

#[wasm_bindgen_test]
#[ignore]
fn encrypt_speed() {
    let key = [0x42; 16];
    let nonce = [7; 12];
    let aad = [1u8; 10];
    let ours = conclave_gcm::Aes128Gcm::new(&key);
    let theirs = aes_gcm::Aes128Gcm::new((&key).into());
    console_log!("backend {}", conclave_gcm::BACKEND);
    let setup = time_us(10_000, || {
        core::hint::black_box(conclave_gcm::Aes128Gcm::new(core::hint::black_box(&key)));
    });
    let setup_theirs = time_us(10_000, || {
        core::hint::black_box(aes_gcm::Aes128Gcm::new(core::hint::black_box(&key).into()));
    });
    console_log!("key setup: ours {setup:.2} us, aes-gcm {setup_theirs:.2} us");
    for len in [150, 1200, 10_000, 50_000, 200_000] {
        let mut buf = vec![0x5a; len];
        let a = time_us(len, || {
            core::hint::black_box(ours.encrypt_in_place_detached(&nonce, &aad, &mut buf));
        });
        let tag = ours.encrypt_in_place_detached(&nonce, &aad, &mut buf);
        let d = time_us(len, || {
            // Fails (wrong tag for the changing buffer) but does the full verification work.
            let r = ours.decrypt_in_place_detached(&nonce, &aad, &mut buf, &tag);
            core::hint::black_box(r).ok();
        });
        let b = time_us(len, || {
            let t = theirs
                .encrypt_inout_detached((&nonce).into(), &aad, buf.as_mut_slice().into())
                .unwrap();
            core::hint::black_box(t);
        });
        console_log!(
            "{len:>7} B  ours encrypt {a:>9.2} us  ours decrypt(verify) {d:>9.2} us  aes-gcm encrypt {b:>9.2} us  ({:.2}x)",
            b / a
        );
    }
}
