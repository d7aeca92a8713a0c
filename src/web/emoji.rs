//! Whether this browser can draw emoji. Desktops without a colour-emoji font (a stock Debian
//! desktop, headless Chromium) draw every emoji as the same empty box, and six identical boxes
//! are nothing two people can compare.

use wasm_bindgen::JsCast;
use web_sys::{CanvasRenderingContext2d, HtmlCanvasElement};

const SIZE: u32 = 24;

/// The pixels of `text` drawn on a small canvas, or `None` if there is no 2D canvas.
fn pixels(text: &str) -> Option<Vec<u8>> {
    let canvas: HtmlCanvasElement = super::window()
        .document()?
        .create_element("canvas")
        .ok()?
        .dyn_into()
        .ok()?;
    canvas.set_width(SIZE);
    canvas.set_height(SIZE);
    let ctx: CanvasRenderingContext2d = canvas.get_context("2d").ok()??.dyn_into().ok()?;
    ctx.set_font(&format!("{}px sans-serif", SIZE - 4));
    ctx.set_text_baseline("top");
    ctx.fill_text(text, 0.0, 0.0).ok()?;
    Some(
        ctx.get_image_data(0, 0, SIZE as i32, SIZE as i32)
            .ok()?
            .data()
            .0,
    )
}

/// Draws two different emoji: a browser without a font for them draws the same missing-glyph
/// box for both (or nothing at all), one that has one draws two different pictures.
pub fn render() -> bool {
    match (pixels("🐶"), pixels("🔑")) {
        (Some(dog), Some(key)) => dog != key && dog.iter().any(|&b| b != 0),
        // No canvas to measure with: show the emoji, with their words beneath as always.
        _ => true,
    }
}
