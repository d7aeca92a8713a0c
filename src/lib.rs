//! Conclave in the browser. Two wasm binaries share this library:
//!
//! * the page (`main.rs`): [`ui`] (Leptos components) on top of [`web`] (WebSocket, WebRTC,
//!   media devices), which adapts browser APIs to the `conclave-call` state machine;
//! * the frame worker (`bin/worker.rs`): [`worker`], which runs the `RTCRtpScriptTransform` of
//!   every sender and receiver through `conclave-e2ee`.
//!
//! [`bridge`] is what the two say to each other.

pub mod bridge;
pub mod ui;
pub mod web;
pub mod worker;
