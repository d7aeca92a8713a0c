//! Browser glue for the page: each module adapts one browser API to the pure crates.

#[cfg(feature = "test-hooks")]
pub mod debug;
pub mod emoji;
pub mod frame_worker;
pub mod link;
pub mod media;
pub mod peer;
pub mod session;
pub mod signaling;

/// The page's `window`; every page has one.
pub fn window() -> web_sys::Window {
    web_sys::window().expect("running in a browser page")
}

/// Milliseconds since the page loaded, for timers and health checks.
pub fn now_ms() -> u64 {
    js_sys::Date::now() as u64
}
