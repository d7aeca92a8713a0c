//! Copying text for the person to paste elsewhere.

use wasm_bindgen_futures::JsFuture;

use super::window;

/// Puts `text` on the clipboard; `false` if the browser would not (no permission, no focus).
pub async fn copy(text: &str) -> bool {
    JsFuture::from(window().navigator().clipboard().write_text(text))
        .await
        .is_ok()
}
