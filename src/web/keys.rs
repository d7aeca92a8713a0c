//! Keyboard shortcuts: single keys pressed on the page itself, never while the person types
//! into a field, and never with a modifier (those belong to the browser and the system).

use wasm_bindgen::JsCast;
use web_sys::{Element, KeyboardEvent};

use super::events::{Listener, on_event};
use super::window;

/// The element a key was pressed on, if it is one.
fn target_of(event: &web_sys::Event) -> Option<Element> {
    event.target().and_then(|t| t.dyn_into::<Element>().ok())
}

/// Whether the person types into `el`: its keys are the text's.
fn is_field(el: &Element) -> bool {
    matches!(el.tag_name().as_str(), "INPUT" | "TEXTAREA" | "SELECT")
        || el.has_attribute("contenteditable")
}

/// Whether Space on `el` is its own: a field's, or a focused button's or link's press.
fn takes_space(el: &Element) -> bool {
    is_field(el) || matches!(el.tag_name().as_str(), "BUTTON" | "A" | "SUMMARY")
}

/// Calls `f(true)` when Space goes down on the page itself and `f(false)` when it comes up, or
/// when the page loses focus with it down (its key-up then never comes here).
pub fn hold_space(f: impl Fn(bool) + 'static) -> Vec<Listener> {
    let Some(document) = window().document() else {
        return Vec::new();
    };
    let f = std::rc::Rc::new(f);
    let space = |event: &web_sys::Event| {
        event
            .dyn_ref::<KeyboardEvent>()
            .filter(|k| k.key() == " " && !(k.ctrl_key() || k.meta_key() || k.alt_key()))
            .is_some()
    };
    let (down, up, blur) = (f.clone(), f.clone(), f);
    vec![
        on_event(Clone::clone(&document).into(), "keydown", move |event| {
            if space(&event) && !target_of(&event).is_some_and(|el| takes_space(&el)) {
                // The page does not scroll; held, the key repeats, and each repeat is taken.
                event.prevent_default();
                down(true);
            }
        }),
        on_event(document.into(), "keyup", move |event| {
            if space(&event) {
                up(false);
            }
        }),
        on_event(window().into(), "blur", move |_| blur(false)),
    ]
}

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
        let typing = target_of(&event).is_some_and(|el| is_field(&el));
        if typing && key.key() != "Escape" {
            return;
        }
        // Taken: the page does not also scroll or type it.
        if f(&key.key()) {
            key.prevent_default();
        }
    }))
}
