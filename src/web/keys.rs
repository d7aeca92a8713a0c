//! Keyboard shortcuts: single keys pressed on the page itself, never while the person types
//! into a field, and never with a modifier (those belong to the browser and the system).

use wasm_bindgen::JsCast;
use web_sys::{Element, KeyboardEvent};

use super::events::{Listener, on_event};
use super::window;

/// Calls `f` with the key (`"m"`, `"?"`, `"Escape"`) of every shortcut-like key press.
pub fn listen(f: impl Fn(&str) -> bool + 'static) -> Option<Listener> {
    let document = window().document()?;
    Some(on_event(document.into(), "keydown", move |event| {
        let Some(key) = event.dyn_ref::<KeyboardEvent>() else {
            return;
        };
        if key.ctrl_key() || key.meta_key() || key.alt_key() || key.repeat() {
            return;
        }
        let typing = key
            .target()
            .and_then(|t| t.dyn_into::<Element>().ok())
            .is_some_and(|el| {
                matches!(el.tag_name().as_str(), "INPUT" | "TEXTAREA" | "SELECT")
                    || el.has_attribute("contenteditable")
            });
        if typing && key.key() != "Escape" {
            return;
        }
        // Taken: the page does not also scroll or type it.
        if f(&key.key()) {
            key.prevent_default();
        }
    }))
}
