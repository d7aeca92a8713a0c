//! Decides whether the SIMD backend is compiled in: on wasm32, when the whole build has
//! `simd128` (`-C target-feature=+simd128`) or when the `simd` feature asks for it. The feature
//! is how the app's SIMD worker gets it: its functions then enable `simd128` one by one, so the
//! rest of that build (and the app's other binaries) stays loadable where SIMD is missing.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(simd_backend)");
    println!("cargo::rustc-check-cfg=cfg(relaxed_backend)");
    println!("cargo::rerun-if-changed=build.rs");
    let wasm32 = std::env::var("CARGO_CFG_TARGET_ARCH").is_ok_and(|a| a == "wasm32");
    let simd128 = std::env::var("CARGO_CFG_TARGET_FEATURE")
        .is_ok_and(|f| f.split(',').any(|f| f == "simd128"));
    let relaxed = std::env::var("CARGO_CFG_TARGET_FEATURE")
        .is_ok_and(|f| f.split(',').any(|f| f == "relaxed-simd"));
    let asked = std::env::var_os("CARGO_FEATURE_SIMD").is_some();
    let asked_relaxed = std::env::var_os("CARGO_FEATURE_RELAXED").is_some();
    if wasm32 && (simd128 || relaxed || asked || asked_relaxed) {
        println!("cargo::rustc-cfg=simd_backend");
    }
    if wasm32 && (relaxed || asked_relaxed) {
        println!("cargo::rustc-cfg=relaxed_backend");
    }
}
