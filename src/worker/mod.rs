//! The frame worker: a dedicated worker whose `rtctransform` handler encrypts every outgoing
//! encoded frame and decrypts every incoming one. It holds media keys, never the room secret.

pub mod frames;
#[cfg(feature = "test-hooks")]
mod hooks;
mod keys;
mod pipe;

use std::cell::RefCell;

use js_sys::global;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::{
    DedicatedWorkerGlobalScope, MessageEvent, RtcRtpScriptTransformer, RtcTransformEvent,
};

use crate::bridge::{FromWorker, STATS_INTERVAL_MS, ToWorker, TransformOptions};
use keys::Keys;

thread_local! {
    static KEYS: RefCell<Keys> = RefCell::new(Keys::default());
    /// Our video senders, to ask for a key frame when we switch keys: receivers that just got
    /// the new key can then start decoding at once.
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
    if let Ok(value) = serde_wasm_bindgen::to_value(msg) {
        let _ = scope().post_message(&value);
    }
}

/// Entry point of the worker binary.
pub fn start() {
    // A worker's own console is easy to miss; a panic also goes to the page's.
    std::panic::set_hook(Box::new(|info| {
        problem(format!("panicked: {info}"));
        console_error_panic_hook::hook(info);
    }));
    let scope = scope();

    let on_message = Closure::<dyn FnMut(MessageEvent)>::new(|event: MessageEvent| {
        match serde_wasm_bindgen::from_value::<ToWorker>(event.data()) {
            Ok(ToWorker::KeyFrame) => {
                // Copied out first: no JavaScript runs while a RefCell is borrowed, so an
                // exception thrown in it can never leave the borrow stuck.
                for sender in VIDEO_SENDERS.with_borrow(Vec::clone) {
                    // Throws for a sender that is not sending (yet, or any more): skip it.
                    let _ = call_method(&sender, "generateKeyFrame");
                }
            }
            Ok(msg) => KEYS.with_borrow_mut(|keys| keys.apply(msg)),
            Err(err) => problem(format!("unreadable message dropped: {err}")),
        }
    });
    scope.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    on_message.forget();

    let on_transform = Closure::<dyn FnMut(RtcTransformEvent)>::new(|event: RtcTransformEvent| {
        let transformer = event.transformer();
        match serde_wasm_bindgen::from_value::<TransformOptions>(transformer.options()) {
            Ok(options) => pipe::spawn(transformer, options),
            Err(err) => {
                // Without options we cannot tell send from receive; leaving the streams
                // unconnected means no frame passes at all, which is the safe failure.
                problem(format!("transform without usable options: {err}"));
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
