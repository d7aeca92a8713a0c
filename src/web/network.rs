//! The page's own comings and goings: the network dropping and coming back, and the tab
//! closing. Each reports through a callback that only posts to the session.

use wasm_bindgen::JsCast;

use super::events::{Listener, on};
use super::window;

/// `navigator.connection` (the Network Information API), where the browser has it: Chromium
/// fires `change` on it when the device moves to another network. web-sys does not bind it.
fn connection() -> Option<web_sys::EventTarget> {
    js_sys::Reflect::get(&window().navigator(), &"connection".into())
        .ok()
        .and_then(|c| c.dyn_into().ok())
}

/// Calls `network` when the browser goes online or offline or changes networks, and
/// `leaving` when the page is being closed or navigated away from.
pub fn listen(network: impl Fn() + Clone + 'static, leaving: impl Fn() + 'static) -> Vec<Listener> {
    let page: web_sys::EventTarget = window().into();
    let mut listeners = vec![
        on(page.clone(), "online", network.clone()),
        on(page.clone(), "offline", network.clone()),
        on(page, "pagehide", leaving),
    ];
    if let Some(connection) = connection() {
        listeners.push(on(connection, "change", network));
    }
    listeners
}
