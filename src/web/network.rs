//! The page's own comings and goings: the network dropping and coming back, and the tab
//! closing. Each reports through a callback that only posts to the session.

use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;

use super::window;

/// An event listener on the window, removed when dropped.
pub struct Listener {
    event: &'static str,
    closure: Closure<dyn FnMut()>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = window()
            .remove_event_listener_with_callback(self.event, self.closure.as_ref().unchecked_ref());
    }
}

fn on(event: &'static str, f: impl FnMut() + 'static) -> Listener {
    let closure = Closure::<dyn FnMut()>::new(f);
    let _ = window().add_event_listener_with_callback(event, closure.as_ref().unchecked_ref());
    Listener { event, closure }
}

/// Calls `network` when the browser goes online or offline, and `leaving` when the page is
/// being closed or navigated away from.
pub fn listen(network: impl Fn() + Clone + 'static, leaving: impl Fn() + 'static) -> Vec<Listener> {
    vec![
        on("online", network.clone()),
        on("offline", network),
        on("pagehide", leaving),
    ]
}
