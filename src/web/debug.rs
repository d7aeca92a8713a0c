//! Test hooks, switched on by the page's query string (`?debug=skip-decrypt`). They exist so
//! real-browser tests can prove the frames on the wire are ciphertext and that a member whose
//! frames do not decrypt is flagged. Each one can only spoil the call of whoever opened the
//! page with it; none sends anything in clear or reveals a key.

use crate::bridge::DebugFlags;

pub fn flags() -> DebugFlags {
    let search = super::window().location().search().unwrap_or_default();
    let mut flags = DebugFlags::default();
    for pair in search.trim_start_matches('?').split('&') {
        if let Some(values) = pair.strip_prefix("debug=") {
            for value in values.split(',') {
                match value {
                    "skip-decrypt" => flags.skip_decrypt = true,
                    "foreign-send-key" => flags.foreign_send_key = true,
                    "portable-crypto" => flags.portable_crypto = true,
                    _ => {}
                }
            }
        }
    }
    flags
}
