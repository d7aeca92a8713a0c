//! The frame worker: a dedicated worker whose `rtctransform` handler encrypts every outgoing
//! encoded frame and decrypts every incoming one. It holds media keys, never the room secret.
//! Its own crate, apart from the page's: a wasm binary links every `#[wasm_bindgen]` export of
//! its dependencies, and through Leptos those included stream adapters the worker never uses.

pub mod frames;
#[cfg(feature = "test-hooks")]
mod hooks;
mod keys;
mod pipe;

use std::cell::RefCell;

use js_sys::{Uint8Array, global};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::{
    DedicatedWorkerGlobalScope, MessageEvent, RtcRtpScriptTransformer, RtcTransformEvent,
};

use conclave_bridge::{FromWorker, STATS_INTERVAL_MS, ToWorker, TransformOptions, Unreadable};
use keys::Keys;

// talc rather than std's dlmalloc: measured in this worker, 7 KB less code (2 KB as sent),
// and frames cost no more.
#[cfg(all(target_family = "wasm", not(target_feature = "atomics")))]
#[global_allocator]
static ALLOCATOR: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();

thread_local! {
    static KEYS: RefCell<Keys> = RefCell::new(Keys::default());
    /// Our video senders, to ask for a key frame when we switch keys: receivers that just got
    /// the new key can then start decoding at once. Firefox makes one; Chromium (156) has no
    /// `generateKeyFrame` on the transformer, so there a receiver's own requests
    /// (`sendKeyFrameRequest`, see `pipe`) and its decoder's restart the picture.
    static VIDEO_SENDERS: RefCell<Vec<RtcRtpScriptTransformer>> = const { RefCell::new(Vec::new()) };
}

fn scope() -> DedicatedWorkerGlobalScope {
    global().unchecked_into()
}

/// Calls `obj.name()`, turning a thrown exception into an error. web-sys's bindings of the
/// key-frame methods do not catch, and an exception unwinding through wasm skips Rust's cleanup.
pub(crate) fn call_method(obj: &JsValue, name: &str) -> Result<JsValue, JsValue> {
    js_sys::Reflect::get(obj, &name.into())?
        .dyn_into::<js_sys::Function>()?
        .call0(obj)
}

/// Tells the page about a problem, so it shows up in the page's console.
pub(crate) fn problem(what: impl Into<String>) {
    post(&FromWorker::Problem { what: what.into() });
}

fn post(msg: &FromWorker) {
    let _ = scope().post_message(&Uint8Array::from(msg.encode().as_slice()));
}

/// The bytes of a `Uint8Array` the page sent (see `bridge`); anything else reads as nothing.
fn bytes_of(value: JsValue) -> Vec<u8> {
    value
        .dyn_into::<Uint8Array>()
        .map(|array| array.to_vec())
        .unwrap_or_default()
}

/// `n` in decimal, without `core::fmt`.
fn decimal(mut n: u32) -> String {
    let mut digits = Vec::new();
    loop {
        digits.push(b'0' + (n % 10) as u8);
        n /= 10;
        if n == 0 {
            break;
        }
    }
    digits.iter().rev().map(|&d| char::from(d)).collect()
}

/// Entry point of the worker binary.
pub fn start() {
    // A worker's own console is easy to miss; a panic also goes to the page's. Said without
    // `format!`: the formatting machinery is a good part of a small wasm, and the worker's
    // download should be frame crypto. A literal panic message and the place are enough to
    // find the bug; a JavaScript `Error` adds the stack.
    std::panic::set_hook(Box::new(|info| {
        let mut what = String::from("panicked: ");
        what.push_str(info.payload_as_str().unwrap_or("(a formatted message)"));
        if let Some(place) = info.location() {
            what.push_str(" at ");
            what.push_str(place.file());
            what.push(':');
            what.push_str(&decimal(place.line()));
        }
        web_sys::console::error_2(&what.as_str().into(), &js_sys::Error::new("panic").into());
        problem(what);
    }));
    let scope = scope();

    let on_message = Closure::<dyn FnMut(MessageEvent)>::new(|event: MessageEvent| {
        match ToWorker::decode(&bytes_of(event.data())) {
            Ok(ToWorker::KeyFrame) => {
                // Copied out first: no JavaScript runs while a RefCell is borrowed, so an
                // exception thrown in it can never leave the borrow stuck.
                for sender in VIDEO_SENDERS.with_borrow(Vec::clone) {
                    // Throws for a sender that is not sending (yet, or any more): skip it.
                    let _ = call_method(&sender, "generateKeyFrame");
                }
            }
            Ok(msg) => KEYS.with_borrow_mut(|keys| keys.apply(msg)),
            Err(Unreadable) => problem("unreadable message dropped"),
        }
    });
    scope.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    on_message.forget();

    let on_transform = Closure::<dyn FnMut(RtcTransformEvent)>::new(|event: RtcTransformEvent| {
        let transformer = event.transformer();
        match TransformOptions::decode(&bytes_of(transformer.options())) {
            Ok(options) => pipe::spawn(transformer, options),
            Err(Unreadable) => {
                // Without options we cannot tell send from receive; leaving the streams
                // unconnected means no frame passes at all, which is the safe failure.
                problem("transform without usable options");
            }
        }
    });
    scope.set_onrtctransform(Some(on_transform.as_ref().unchecked_ref()));
    on_transform.forget();

    gloo_timers::callback::Interval::new(STATS_INTERVAL_MS, || {
        let peers = KEYS.with_borrow_mut(Keys::take_stats);
        if !peers.is_empty() {
            post(&FromWorker::Stats { peers });
        }
        #[cfg(feature = "test-hooks")]
        hooks::report_sent();
    })
    .forget();

    post(&FromWorker::Ready {
        backend: conclave_e2ee::frame::CIPHER_BACKEND.to_owned(),
    });
}
