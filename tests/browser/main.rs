//! Real-browser tests: headless Chromium (and Firefox) with fake camera and microphone, the
//! real server binary, the release build of the app with its test hooks (`CONCLAVE_DIST`), and in
//! `release` the one users get (`CONCLAVE_RELEASE_DIST`). Run by `cargo xtask test`, which
//! builds all three first.
#![cfg(not(target_arch = "wasm32"))]

mod boot;
mod budget;
mod call;
mod codecs;
mod conversation;
mod coturn;
mod devices;
mod firefox;
mod harness;
mod internet;
mod invite;
mod keys;
mod measure;
mod netns;
mod release;
mod resilience;
mod screenshots;
mod sfu;
mod share;
mod stage;
mod tls;
mod trace;
mod trouble;
