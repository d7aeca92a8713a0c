//! The worker's side of the test hooks (`web::debug`), compiled only into the test build (the
//! `test-hooks` feature): the worker users download has no way to skip decryption, to encrypt
//! under a key nobody has, or to report what it sends.

use conclave_e2ee::MediaKey;

use super::{KEYS, post};
use conclave_bridge::{DebugFlags, FromWorker, MediaKind, SentFrame};

/// What the page asked for, and what `record-frames` has noted since the last report.
#[derive(Default)]
pub struct Hooks {
    flags: DebugFlags,
    sent: Vec<SentFrame>,
}

impl Hooks {
    pub fn set(&mut self, flags: DebugFlags) {
        self.flags = flags;
    }

    /// The key our frames go out under: under `foreign-send-key`, one nobody else has.
    pub fn send_key(&self, key: MediaKey) -> MediaKey {
        if self.flags.foreign_send_key {
            MediaKey::generate()
        } else {
            key
        }
    }

    /// `skip-decrypt`: received frames go to the decoder as they came.
    pub fn skip_decrypt(&self) -> bool {
        self.flags.skip_decrypt
    }
}

/// Whether `record-frames` is on.
pub fn records_sent_frames() -> bool {
    KEYS.with_borrow(|keys| keys.hooks.flags.record_sent_frames)
}

/// Notes one frame we sent: `bytes` as the encoder made it, `sealed` as it went out.
/// The worker's clock in µs (`performance.now()`), for how long one frame took.
pub fn now_us() -> f64 {
    use wasm_bindgen::JsCast as _;
    js_sys::global()
        .unchecked_into::<web_sys::WorkerGlobalScope>()
        .performance()
        .map_or(0.0, |p| p.now() * 1000.0)
}

/// `key`: the browser's own word (`RTCEncodedVideoFrame.type`), whatever the codec.
pub fn record_sent(kind: MediaKind, key: bool, bytes: u32, us: f64) {
    let frame = SentFrame {
        ms: js_sys::Date::now(),
        kind,
        key,
        bytes,
        us,
    };
    KEYS.with_borrow_mut(|keys| keys.hooks.sent.push(frame));
}

/// Hands the page what `record-frames` noted since the last report.
pub fn report_sent() {
    let frames = KEYS.with_borrow_mut(|keys| std::mem::take(&mut keys.hooks.sent));
    if !frames.is_empty() {
        post(&FromWorker::SentFrames { frames });
    }
}
