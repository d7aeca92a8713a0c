//! Test hooks, switched on by the page's query string (`?debug=skip-decrypt`). They exist so
//! real-browser tests can prove the frames on the wire are ciphertext and that a member whose
//! frames do not decrypt is flagged, and so the benchmark can record a call's frame sizes
//! (`record-frames`). Each one can only spoil the call of whoever opened the page with it; none
//! sends anything in clear or reveals a key, and `record-frames` keeps sizes, never contents.
//!
//! Only the test build has them (the `test-hooks` feature, which `cargo xtask test` turns on):
//! a link is what an attacker hands out, and `?debug=foreign-send-key` in one would make
//! whoever opens it unintelligible to everyone else. The app `cargo xtask serve` builds has no
//! code that reads `?debug=` at all.

use js_sys::{Array, Reflect};
use wasm_bindgen::{JsCast, JsValue};

use conclave_bridge::{DebugFlags, SentFrame};

/// Where `record-frames` leaves the frames for the harness: `window.__conclaveSentFrames`,
/// an array of `{ms, kind, key, bytes}` that only grows.
const SENT_FRAMES: &str = "__conclaveSentFrames";

/// Every `?debug=` switch as written (`skip-decrypt`, `codec=vp8`).
fn switches() -> Vec<String> {
    let search = super::window().location().search().unwrap_or_default();
    search
        .trim_start_matches('?')
        .split('&')
        .filter_map(|pair| pair.strip_prefix("debug="))
        .flat_map(|values| values.split(','))
        .map(str::to_owned)
        .collect()
}

pub fn flags() -> DebugFlags {
    let mut flags = DebugFlags::default();
    for switch in switches() {
        match switch.as_str() {
            "skip-decrypt" => flags.skip_decrypt = true,
            "foreign-send-key" => flags.foreign_send_key = true,
            "portable-crypto" => flags.portable_crypto = true,
            "simd-crypto" => flags.simd_crypto = true,
            "record-frames" => flags.record_sent_frames = true,
            _ => {}
        }
    }
    flags
}

/// The value of `?debug=NAME=VALUE`, for the hooks that take one.
fn value_of(name: &str) -> Option<String> {
    switches()
        .into_iter()
        .find_map(|switch| Some(switch.strip_prefix(name)?.strip_prefix('=')?.to_owned()))
}

/// `?debug=codec=NAME` (`vp8`, `vp9`, `h264`, `av1`): offer only that video codec.
pub fn forced_codec() -> Option<String> {
    value_of("codec")
}

/// `?debug=broken-worker`: start the frame worker from a file that does not exist, as when
/// the network drops it.
pub fn broken_worker() -> bool {
    switches().iter().any(|switch| switch == "broken-worker")
}

/// `?debug=slow-worker=MS`: start the frame worker this many ms late.
pub fn slow_worker_ms() -> Option<u32> {
    value_of("slow-worker")?.parse().ok()
}

/// `?debug=late-keys=MS`: hand the frame worker each member's keys this many ms late, as when
/// a connection is up before the round that agrees keys is done: frames arrive that cannot
/// be decrypted yet.
pub fn late_keys_ms() -> Option<u32> {
    value_of("late-keys")?.parse().ok()
}

/// Appends frames the worker reports under `record-frames` to `window.__conclaveSentFrames`.
pub fn expose_sent_frames(frames: &[SentFrame]) {
    let window: JsValue = super::window().into();
    let list = match Reflect::get(&window, &SENT_FRAMES.into()).map(JsCast::dyn_into::<Array>) {
        Ok(Ok(list)) => list,
        _ => {
            let list = Array::new();
            let _ = Reflect::set(&window, &SENT_FRAMES.into(), &list);
            list
        }
    };
    for frame in frames {
        if let Ok(value) = serde_wasm_bindgen::to_value(frame) {
            list.push(&value);
        }
    }
}
