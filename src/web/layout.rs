//! How big each member's picture is on screen, read from the tiles (`data-peer` on each
//! member's tile, its `<video>` inside), and whether the page is seen at all: the SFU then
//! sends no more of a feed than its tile shows. Sizes are read once a second, with the
//! downlink's loss, rather than followed with a `ResizeObserver` (a layer change takes Janus
//! a key frame anyway); the page's visibility is followed, so a person coming back to the tab
//! gets full pictures at once.

use wasm_bindgen::JsCast;
use web_sys::Element;

use super::events::{Listener, on};
use super::window;

/// Each member's picture: (peer id, width, height) in CSS pixels; 0 × 0 when not laid out.
pub fn shown_pictures() -> Vec<(String, f64, f64)> {
    let Some(tiles) = window()
        .document()
        .and_then(|d| d.query_selector_all(".tile[data-peer]").ok())
    else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for i in 0..tiles.length() {
        let Some(tile) = tiles.item(i).and_then(|n| n.dyn_into::<Element>().ok()) else {
            continue;
        };
        let (Some(peer), Ok(Some(video))) = (
            tile.get_attribute("data-peer"),
            tile.query_selector("video"),
        ) else {
            continue;
        };
        out.push((
            peer,
            f64::from(video.client_width()),
            f64::from(video.client_height()),
        ));
    }
    out
}

/// Device pixels per CSS pixel.
pub fn pixel_ratio() -> f64 {
    window().device_pixel_ratio()
}

/// Whether the page is out of sight (another tab in front, a minimised window).
pub fn page_hidden() -> bool {
    window().document().is_some_and(|d| d.hidden())
}

/// Calls `changed` when the page comes into or goes out of sight.
pub fn on_visibility(changed: impl Fn() + 'static) -> Option<Listener> {
    let document: web_sys::EventTarget = window().document()?.into();
    Some(on(document, "visibilitychange", changed))
}

/// Whether `list` shows its end (within a line of it): the person is reading the newest.
pub fn shows_end(list: &Element) -> bool {
    list.scroll_top() + f64::from(list.client_height()) >= f64::from(list.scroll_height()) - 24.0
}

/// Scrolls `list` to its end once what was just added to it is laid out.
pub fn scroll_to_end(list: &Element) {
    let list = Clone::clone(list);
    gloo_timers::callback::Timeout::new(0, move || {
        list.set_scroll_top(list.scroll_height().into())
    })
    .forget();
}
