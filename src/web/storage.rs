//! What this browser remembers between calls: the display name, and nothing about any call.

use super::window;

const NAME_KEY: &str = "conclave.name";

pub fn saved_name() -> String {
    window()
        .local_storage()
        .ok()
        .flatten()
        .and_then(|s| s.get_item(NAME_KEY).ok().flatten())
        .unwrap_or_default()
}

pub fn save_name(name: &str) {
    if let Some(storage) = window().local_storage().ok().flatten() {
        let _ = storage.set_item(NAME_KEY, name);
    }
}
