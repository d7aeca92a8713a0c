//! Conclave in the browser, the page (`main.rs`): [`ui`] (Leptos components) on top of [`web`]
//! (WebSocket, WebRTC, media devices), which adapts browser APIs to the `conclave-call` state
//! machine. The frame worker is a crate of its own (`conclave-worker`), so it links none of
//! this; `conclave-bridge` is what the two say to each other.

pub mod ui;
pub mod web;
