//! The page's side of the frame worker: starting it, handing it keys, and creating the
//! `RTCRtpScriptTransform`s that route frames through it.

use std::cell::RefCell;
use std::rc::Rc;

use futures::FutureExt as _;
use futures::channel::oneshot;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::{MessageEvent, RtcRtpScriptTransform, Worker, WorkerOptions, WorkerType};

use crate::bridge::{FromWorker, MediaKind, PeerStats, Role, ToWorker, TransformOptions};

/// Where trunk puts the worker's loader (see `index.html`).
const WORKER_URL: &str = "/worker_loader.js";
/// A worker that has not said it is ready by then will not; we do not send media without it.
const READY_TIMEOUT_MS: u32 = 15_000;

pub struct FrameWorker {
    worker: Worker,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
}

impl FrameWorker {
    /// Starts the worker and waits until its transform handler is installed.
    pub async fn start(
        mut on_stats: impl FnMut(Vec<PeerStats>) + 'static,
    ) -> Result<Rc<Self>, String> {
        let options = WorkerOptions::new();
        options.set_type(WorkerType::Module);
        let worker = Worker::new_with_options(WORKER_URL, &options)
            .map_err(|_| "the browser refused to start the encryption worker".to_owned())?;
        let (ready_tx, ready_rx) = oneshot::channel::<()>();
        let ready_tx = RefCell::new(Some(ready_tx));
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
            match serde_wasm_bindgen::from_value::<FromWorker>(event.data()) {
                Ok(FromWorker::Ready) => {
                    if let Some(tx) = ready_tx.borrow_mut().take() {
                        let _ = tx.send(());
                    }
                }
                Ok(FromWorker::Stats { peers }) => on_stats(peers),
                // Only sent when this page asked for it (`?debug=record-frames`).
                Ok(FromWorker::SentFrames { frames }) => super::debug::expose_sent_frames(&frames),
                Ok(FromWorker::Problem { what }) => {
                    web_sys::console::warn_1(&format!("frame worker: {what}").into())
                }
                Err(err) => web_sys::console::warn_1(
                    &format!("frame worker: unreadable message: {err}").into(),
                ),
            }
        });
        worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        let this = Rc::new(Self {
            worker,
            _on_message: on_message,
        });
        let timeout = gloo_timers::future::TimeoutFuture::new(READY_TIMEOUT_MS);
        futures::select! {
            ready = ready_rx.fuse() => ready.map_err(|_| "the encryption worker stopped".to_owned())?,
            _ = timeout.fuse() => return Err("the encryption worker did not start".to_owned()),
        }
        Ok(this)
    }

    pub fn post(&self, msg: &ToWorker) {
        if let Ok(value) = serde_wasm_bindgen::to_value(msg) {
            let _ = self.worker.post_message(&value);
        }
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
        let options = serde_wasm_bindgen::to_value(&options)?;
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
