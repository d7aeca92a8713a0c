//! The compiler flags of every wasm build xtask makes (trunk's, the benchmark's, the SIMD
//! AES-GCM's tests).

use std::path::PathBuf;

use crate::root;

/// `.cargo/config.toml`'s `build.rustflags`, which any flags given through the environment
/// replace rather than extend.
const CONFIG_FLAGS: &[&str] = &[
    "--cfg=web_sys_unstable_apis",
    "--cfg=sha2_backend_soft=\"compact\"",
];

/// For `CARGO_ENCODED_RUSTFLAGS`: the config's flags, and every source directory outside
/// the repository made relative, so the wasm people download names no directory of the
/// machine that built it (a panic's place reads `sframe-2.1.0/src/header.rs`, not the
/// builder's home and registry).
pub fn encoded() -> String {
    let mut flags: Vec<String> = CONFIG_FLAGS.iter().map(|f| f.to_string()).collect();
    let mut prefixes = vec![root()];
    let home = cargo_home();
    for parent in [
        home.join("registry").join("src"),
        home.join("git").join("checkouts"),
    ] {
        if let Ok(dirs) = std::fs::read_dir(&parent) {
            prefixes.extend(dirs.flatten().map(|d| d.path()));
        }
    }
    for prefix in prefixes {
        flags.push(format!("--remap-path-prefix={}/=", prefix.display()));
    }
    flags.join("\u{1f}")
}

fn cargo_home() -> PathBuf {
    std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .unwrap_or_default()
}
