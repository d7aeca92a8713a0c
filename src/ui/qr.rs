//! The call's link as a QR code, so a phone's camera can open the call: drawn as one SVG path
//! in the page, never fetched from anywhere (the link carries the call's key).

use std::fmt::Write as _;

use leptos::prelude::*;
use qrcodegen::{QrCode, QrCodeEcc};

use super::model::CallModel;
use crate::web::session::{Intent, SessionHandle};

/// Light modules around the code, as the standard asks: readers find the code by its edge.
const QUIET: i32 = 4;

/// A QR code as one SVG path: a unit square per dark module, each row's runs merged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Qr {
    /// Modules per side.
    pub size: i32,
    pub path: String,
}

impl Qr {
    /// `text` as a QR code (error correction level M: a phone still reads it with 15 % of it
    /// hidden or blurred). `None` only for text longer than any QR code holds.
    pub fn of(text: &str) -> Option<Self> {
        let code = QrCode::encode_text(text, QrCodeEcc::Medium).ok()?;
        let size = code.size();
        let mut path = String::new();
        for y in 0..size {
            let mut x = 0;
            while x < size {
                if !code.get_module(x, y) {
                    x += 1;
                    continue;
                }
                let start = x;
                while x < size && code.get_module(x, y) {
                    x += 1;
                }
                let _ = write!(path, "M{start} {y}h{}v1H{start}z", x - start);
            }
        }
        Some(Self { size, path })
    }
}

/// The code, with how to use it and what it gives away.
#[component]
pub fn QrPanel() -> impl IntoView {
    let model = expect_context::<CallModel>();
    let session = expect_context::<SessionHandle>();
    view! {
        {move || model.qr.get().map(|qr| {
            let side = qr.size + 2 * QUIET;
            view! {
                <div class="qr" role="dialog" aria-modal="false" aria-labelledby="qr-title" data-testid="qr">
                    <h2 id="qr-title">"Join from a phone"</h2>
                    <svg
                        viewBox=format!("{} {} {side} {side}", -QUIET, -QUIET)
                        role="img"
                        aria-label="QR code of this call's link"
                        shape-rendering="crispEdges"
                    >
                        <rect x=-QUIET y=-QUIET width=side height=side fill="#fff"></rect>
                        <path d=qr.path fill="#000"></path>
                    </svg>
                    <p>"Point a phone's camera at this code to open the call there. Anyone who scans it can join, as with the link."</p>
                    <button type="button" on:click=move |_| session.send(Intent::ToggleQr)>"Close"</button>
                </div>
            }
        })}
    }
}

// Natively only: the reader (rqrr) is a native dev-dependency, beside the browser tests'.
#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    /// The dark modules the path draws, read back from it.
    fn modules(qr: &Qr) -> Vec<Vec<bool>> {
        let size = qr.size as usize;
        let mut grid = vec![vec![false; size]; size];
        for run in qr.path.split('M').filter(|r| !r.is_empty()) {
            let (xy, rest) = run.split_once('h').unwrap();
            let (x, y) = xy.split_once(' ').unwrap();
            let (x, y): (usize, usize) = (x.parse().unwrap(), y.parse().unwrap());
            let len: usize = rest.split_once('v').unwrap().0.parse().unwrap();
            for cell in &mut grid[y][x..x + len] {
                assert!(!*cell, "a module drawn twice");
                *cell = true;
            }
        }
        grid
    }

    #[test]
    fn the_path_reads_back_as_the_link() {
        let link = "https://call.example/r/Xk3_9fQa2Lw#q0Zr7mJ8YbU2nC4xT6vW1pS9dF3gH5jK7lM0nB2vC4x";
        let qr = Qr::of(link).unwrap();
        let grid = modules(&qr);
        // Drawn as a reader sees it: 4 pixels a module, inside the quiet zone.
        let scale = 4;
        let side = (qr.size + 2 * QUIET) as usize * scale;
        let quiet = QUIET as usize;
        let mut image = rqrr::PreparedImage::prepare_from_greyscale(side, side, |x, y| {
            let (mx, my) = (x / scale, y / scale);
            let dark = mx >= quiet
                && my >= quiet
                && grid
                    .get(my - quiet)
                    .and_then(|row| row.get(mx - quiet))
                    .copied()
                    .unwrap_or(false);
            if dark { 0 } else { 255 }
        });
        let grids = image.detect_grids();
        assert_eq!(grids.len(), 1);
        let (_, content) = grids[0].decode().unwrap();
        assert_eq!(content, link);
    }

    #[test]
    fn text_no_code_holds_is_refused() {
        assert!(Qr::of(&"x".repeat(3000)).is_none());
    }
}
