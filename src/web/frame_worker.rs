//! The page's side of the frame worker: starting it, handing it keys, and creating the
//! `RTCRtpScriptTransform`s that route frames through it.

use std::cell::RefCell;
use std::rc::Rc;

use futures::FutureExt as _;
use futures::channel::oneshot;
use js_sys::Uint8Array;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{MessageEvent, RtcRtpScriptTransform, Worker, WorkerOptions, WorkerType};

use conclave_bridge::{
    FromWorker, MediaKind, PeerStats, Role, ToWorker, TransformOptions, Unreadable,
};

/// The three builds of the worker (`index.html`): they seal frames with our AES-GCM on relaxed
/// SIMD, on SIMD, and with the portable one, and a module using an instruction the engine lacks
/// does not even load, so the page picks by probing.
const RELAXED_WORKER: &str = "worker-relaxed";
const SIMD_WORKER: &str = "worker-simd";
const PORTABLE_WORKER: &str = "worker";

/// A worker build's files: the loader a `Worker` starts, which imports the glue, which fetches
/// the wasm.
struct WorkerFiles {
    loader: String,
    glue: String,
    wasm: String,
}

impl WorkerFiles {
    /// The names `cargo xtask build` gave them, with their content's hash, from `index.html`
    /// (`xtask/src/worker_names.rs`); trunk's own names in a build it did not touch.
    fn of(build: &str) -> Self {
        let named = web_sys::window()
            .and_then(|w| w.document())
            .and_then(|d| {
                d.query_selector(&format!("meta[name=conclave-{build}]"))
                    .ok()
                    .flatten()
            })
            .and_then(|meta| meta.get_attribute("content"));
        if let Some(named) = named {
            let mut urls = named.split(' ').map(str::to_owned);
            if let (Some(loader), Some(glue), Some(wasm)) = (urls.next(), urls.next(), urls.next())
            {
                return Self { loader, glue, wasm };
            }
        }
        Self {
            loader: format!("/{build}_loader.js"),
            glue: format!("/{build}.js"),
            wasm: format!("/{build}_bg.wasm"),
        }
    }

    /// Fetches the glue and the wasm now, alongside the worker's fetch of its loader, instead
    /// of one after the other from inside it: the worker's own requests then find them in the
    /// browser's cache, or wait for these to arrive (their names change with their content,
    /// so the server lets browsers keep them).
    fn prefetch(&self) {
        let Some(window) = web_sys::window() else {
            return;
        };
        for url in [&self.glue, &self.wasm] {
            let response = window.fetch_with_str(url);
            wasm_bindgen_futures::spawn_local(async move {
                // Read to the end, so the whole file reaches the cache; a failure here is the
                // worker's to report when it fetches the same file.
                if let Ok(response) = JsFuture::from(response).await
                    && let Ok(response) = response.dyn_into::<web_sys::Response>()
                    && let Ok(body) = response.array_buffer()
                {
                    let _ = JsFuture::from(body).await;
                }
            });
        }
    }
}

/// The smallest module that uses a SIMD instruction: one function returning
/// `i8x16.popcnt(i8x16.splat(0))`. Engines without SIMD refuse to validate it.
const SIMD_PROBE: [u8; 31] = [
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // "\0asm", version 1
    0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7b, // types: () -> v128
    0x03, 0x02, 0x01, 0x00, // functions: one, of type 0
    0x0a, 0x0a, 0x01, 0x08, 0x00, // code: one body of 8 bytes, no locals
    0x41, 0x00, 0xfd, 0x0f, 0xfd, 0x62, 0x0b, // i32.const 0, i8x16.splat, i8x16.popcnt, end
];

/// The same with `i8x16.relaxed_swizzle(i8x16.splat(0), i8x16.splat(0))`, for relaxed SIMD.
const RELAXED_SIMD_PROBE: [u8; 36] = [
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // "\0asm", version 1
    0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7b, // types: () -> v128
    0x03, 0x02, 0x01, 0x00, // functions: one, of type 0
    0x0a, 0x0f, 0x01, 0x0d, 0x00, // code: one body of 13 bytes, no locals
    0x41, 0x00, 0xfd, 0x0f, // i32.const 0, i8x16.splat
    0x41, 0x00, 0xfd, 0x0f, // i32.const 0, i8x16.splat
    0xfd, 0x80, 0x02, 0x0b, // i8x16.relaxed_swizzle, end
];

fn validates(module: &[u8]) -> bool {
    js_sys::WebAssembly::validate(&js_sys::Uint8Array::from(module)).unwrap_or(false)
}

/// The fastest worker build this browser can run.
fn worker_build() -> &'static str {
    let simd = validates(&SIMD_PROBE);
    let relaxed = simd && validates(&RELAXED_SIMD_PROBE);
    // In a test build, `portable-crypto` and `simd-crypto` pretend the browser lacks what it
    // has, so the members of one call can run different builds of the cipher.
    #[cfg(feature = "test-hooks")]
    let (simd, relaxed) = {
        let debug = super::debug::flags();
        (
            simd && !debug.portable_crypto,
            relaxed && !debug.simd_crypto,
        )
    };
    if !simd {
        PORTABLE_WORKER
    } else if !relaxed {
        SIMD_WORKER
    } else {
        RELAXED_WORKER
    }
}
/// A worker that has not said it is ready by then will not; we do not send media without it.
const READY_TIMEOUT_MS: u32 = 15_000;

pub struct FrameWorker {
    worker: Worker,
    /// The worker's frame cipher, as it named it.
    backend: String,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_error: Closure<dyn FnMut(web_sys::Event)>,
}

impl FrameWorker {
    /// Starts the worker and waits until its transform handler is installed.
    pub async fn start(
        mut on_stats: impl FnMut(Vec<PeerStats>) + 'static,
    ) -> Result<Rc<Self>, String> {
        // `?debug=slow-worker=MS`: a worker that takes this long to arrive, as on a slow
        // network, so a test can click Join before it is ready.
        #[cfg(feature = "test-hooks")]
        if let Some(ms) = super::debug::slow_worker_ms() {
            gloo_timers::future::TimeoutFuture::new(ms).await;
        }
        let files = WorkerFiles::of(worker_build());
        #[cfg(feature = "test-hooks")]
        let files = match super::debug::broken_worker() {
            true => WorkerFiles {
                loader: "/no-such-worker.js".to_owned(),
                ..files
            },
            false => files,
        };
        let options = WorkerOptions::new();
        options.set_type(WorkerType::Module);
        let worker = Worker::new_with_options(&files.loader, &options)
            .map_err(|_| "the browser refused to start the encryption worker".to_owned())?;
        files.prefetch();
        let (ready_tx, ready_rx) = oneshot::channel::<Result<String, String>>();
        let ready_tx = Rc::new(RefCell::new(Some(ready_tx)));
        // A worker whose files do not load (or whose module throws) fires `error` and never
        // says it is ready: say so at once rather than at the timeout.
        let on_error = Closure::<dyn FnMut(web_sys::Event)>::new({
            let ready_tx = Rc::clone(&ready_tx);
            move |_: web_sys::Event| match ready_tx.borrow_mut().take() {
                Some(tx) => {
                    let _ = tx.send(Err("its files did not load".to_owned()));
                }
                None => web_sys::console::warn_1(&"frame worker: an error".into()),
            }
        });
        worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
            let bytes = event
                .data()
                .dyn_into::<Uint8Array>()
                .map(|array| array.to_vec())
                .unwrap_or_default();
            match FromWorker::decode(&bytes) {
                Ok(FromWorker::Ready { backend }) => {
                    if let Some(tx) = ready_tx.borrow_mut().take() {
                        let _ = tx.send(Ok(backend));
                    }
                }
                Ok(FromWorker::Stats { peers }) => on_stats(peers),
                // Only sent when this page asked for it (`?debug=record-frames`).
                #[cfg(feature = "test-hooks")]
                Ok(FromWorker::SentFrames { frames }) => super::debug::expose_sent_frames(&frames),
                Ok(FromWorker::Problem { what }) => {
                    web_sys::console::warn_1(&format!("frame worker: {what}").into())
                }
                Err(Unreadable) => {
                    web_sys::console::warn_1(&"frame worker: unreadable message".into())
                }
            }
        });
        worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        // Dropped, and so terminated, if it never gets ready.
        let mut started = Self {
            worker,
            backend: String::new(),
            _on_message: on_message,
            _on_error: on_error,
        };
        let timeout = gloo_timers::future::TimeoutFuture::new(READY_TIMEOUT_MS);
        let backend = futures::select! {
            ready = ready_rx.fuse() => ready.map_err(|_| "the encryption worker stopped".to_owned())?.map_err(|why| format!("the encryption worker did not start: {why}"))?,
            _ = timeout.fuse() => return Err("the encryption worker did not start".to_owned()),
        };
        started.backend = backend;
        // Now, before the call hands it any key, so `foreign-send-key` covers every frame.
        #[cfg(feature = "test-hooks")]
        started.post(&ToWorker::Debug(super::debug::flags()));
        Ok(Rc::new(started))
    }

    pub fn backend(&self) -> &str {
        &self.backend
    }

    pub fn post(&self, msg: &ToWorker) {
        let _ = self
            .worker
            .post_message(&Uint8Array::from(msg.encode().as_slice()));
    }

    /// A transform for one sender (`peer` = None) or one receiver of `peer`'s media.
    pub fn transform(
        &self,
        kind: MediaKind,
        peer: Option<&str>,
    ) -> Result<RtcRtpScriptTransform, JsValue> {
        let options = TransformOptions {
            role: if peer.is_some() {
                Role::Receive
            } else {
                Role::Send
            },
            kind,
            peer: peer.map(str::to_owned),
        };
        let options = Uint8Array::from(options.encode().as_slice());
        RtcRtpScriptTransform::new_with_options(&self.worker, &options)
    }
}

impl Drop for FrameWorker {
    fn drop(&mut self) {
        self.worker.terminate();
    }
}

/// Whether this browser can run our frame transform at all.
pub fn supported() -> bool {
    js_sys::Reflect::has(&js_sys::global(), &"RTCRtpScriptTransform".into()).unwrap_or(false)
}
