//! Event listeners that end with their owner: the browser keeps a listener (and the Rust
//! closure behind it) until it is removed, so each is removed when its handle drops.

use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;

/// An event listener, removed when dropped.
pub struct Listener {
    target: web_sys::EventTarget,
    event: &'static str,
    closure: Closure<dyn FnMut(web_sys::Event)>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self
            .target
            .remove_event_listener_with_callback(self.event, self.closure.as_ref().unchecked_ref());
    }
}

/// Calls `f` with every `event` at `target` until the listener is dropped.
pub fn on_event(
    target: web_sys::EventTarget,
    event: &'static str,
    f: impl FnMut(web_sys::Event) + 'static,
) -> Listener {
    let closure = Closure::<dyn FnMut(web_sys::Event)>::new(f);
    let _ = target.add_event_listener_with_callback(event, closure.as_ref().unchecked_ref());
    Listener {
        target,
        event,
        closure,
    }
}

/// Calls `f` on every `event` at `target` until the listener is dropped.
pub fn on(
    target: web_sys::EventTarget,
    event: &'static str,
    mut f: impl FnMut() + 'static,
) -> Listener {
    on_event(target, event, move |_| f())
}
