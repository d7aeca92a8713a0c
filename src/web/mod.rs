//! Browser glue for the page: each module adapts one browser API to the pure crates.

pub mod chime;
pub mod clipboard;
#[cfg(feature = "test-hooks")]
pub mod debug;
pub mod devices;
pub mod emoji;
pub mod events;
pub mod frame_worker;
pub mod keys;
pub mod layout;
pub mod level;
pub mod link;
pub mod media;
pub mod network;
pub mod peer;
pub mod session;
pub mod sfu;
pub mod signaling;
pub mod stats;
pub mod storage;

/// Drops `value` once the current browser callback has returned. Sockets, peer connections
/// and timers hold the Rust closures the browser calls; dropping one from inside its own
/// callback would free the closure while it runs.
pub fn drop_later<T: 'static>(value: T) {
    gloo_timers::callback::Timeout::new(0, move || drop(value)).forget();
}

/// Puts `title` on the page's tab.
pub fn show_title(title: &str) {
    if let Some(document) = window().document() {
        document.set_title(title);
    }
}

/// Takes away what `index.html` shows until the app runs ("Starting…", or its words for a load
/// that failed): from here on the app speaks for itself.
pub fn app_started() {
    if let Some(boot) = window()
        .document()
        .and_then(|d| d.get_element_by_id("boot"))
    {
        boot.remove();
    }
}

/// The page's `window`; every page has one.
pub fn window() -> web_sys::Window {
    web_sys::window().expect("running in a browser page")
}

/// Milliseconds since the page loaded, for timers and health checks.
pub fn now_ms() -> u64 {
    js_sys::Date::now() as u64
}
