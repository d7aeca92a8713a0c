//! What this browser remembers between calls: the display name and the chosen devices, and
//! nothing about any call.

use conclave_call::devices::DeviceKind;

use super::window;

const NAME_KEY: &str = "conclave.name";

fn get(key: &str) -> Option<String> {
    window()
        .local_storage()
        .ok()
        .flatten()
        .and_then(|s| s.get_item(key).ok().flatten())
}

fn set(key: &str, value: &str) {
    if let Some(storage) = window().local_storage().ok().flatten() {
        let _ = storage.set_item(key, value);
    }
}

pub fn saved_name() -> String {
    get(NAME_KEY).unwrap_or_default()
}

pub fn save_name(name: &str) {
    set(NAME_KEY, name);
}

fn device_key(kind: DeviceKind) -> String {
    format!("conclave.device.{}", kind.word())
}

/// The device of `kind` chosen in this browser before (the browser's id for it on this site).
pub fn saved_device(kind: DeviceKind) -> Option<String> {
    get(&device_key(kind))
}

pub fn save_device(kind: DeviceKind, id: &str) {
    set(&device_key(kind), id);
}
