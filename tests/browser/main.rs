//! Real-browser tests: headless Chromium with fake camera and microphone, the real server
//! binary, the release build of the app. Run by `cargo xtask test`, which builds both first.
#![cfg(not(target_arch = "wasm32"))]

mod call;
mod coturn;
mod harness;
mod internet;
mod keys;
mod measure;
mod netns;
mod tls;
mod trace;
mod trouble;
