//! One transform: read encoded frames from the transformer, encrypt or decrypt them, write
//! them on. A frame that cannot be processed is dropped, never passed on as it came.

use conclave_e2ee::frame::{Codec, FrameDecryptor, FrameError};
use js_sys::{ArrayBuffer, Object, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    ReadableWritablePair, RtcEncodedAudioFrame, RtcEncodedVideoFrame, RtcRtpScriptTransformer,
    TransformStream, TransformStreamDefaultController,
};

use super::KEYS;
use crate::bridge::{MediaKind, Role, TransformOptions};

pub fn spawn(transformer: RtcRtpScriptTransformer, options: TransformOptions) {
    wasm_bindgen_futures::spawn_local(async move {
        if let Err(err) = run(&transformer, &options).await {
            super::problem(format!(
                "{:?} {:?} transform stopped: {err:?}",
                options.role, options.kind
            ));
        }
    });
}

/// A frame's bytes, whichever kind of encoded frame it is.
enum Frame {
    Video(RtcEncodedVideoFrame),
    Audio(RtcEncodedAudioFrame),
}

impl Frame {
    fn new(kind: MediaKind, chunk: JsValue) -> Self {
        match kind {
            MediaKind::Video => Frame::Video(chunk.unchecked_into()),
            MediaKind::Audio => Frame::Audio(chunk.unchecked_into()),
        }
    }

    fn data(&self) -> ArrayBuffer {
        match self {
            Frame::Video(f) => f.data(),
            Frame::Audio(f) => f.data(),
        }
    }

    fn set_data(&self, bytes: &[u8]) {
        let buffer = Uint8Array::from(bytes).buffer();
        match self {
            Frame::Video(f) => f.set_data(&buffer),
            Frame::Audio(f) => f.set_data(&buffer),
        }
    }

    /// The codec from the frame's metadata where the browser gives one, else what we
    /// negotiate for the kind (VP8 and Opus).
    fn codec(&self, kind: MediaKind) -> Codec {
        let metadata: JsValue = match self {
            Frame::Video(f) => f.get_metadata().into(),
            Frame::Audio(f) => f.get_metadata().into(),
        };
        let mime = Reflect::get(&metadata, &"mimeType".into())
            .ok()
            .and_then(|m| m.as_string());
        match (mime, kind) {
            (Some(mime), _) => Codec::from_mime(&mime),
            (None, MediaKind::Video) => Codec::Vp8,
            (None, MediaKind::Audio) => Codec::Opus,
        }
    }

    fn into_js(self) -> JsValue {
        match self {
            Frame::Video(f) => f.into(),
            Frame::Audio(f) => f.into(),
        }
    }
}

/// What happens to one receiver's frames: its own decryptor (and replay window), re-keyed
/// whenever the worker gets a new key for its member.
struct Receiver {
    peer: String,
    decryptor: FrameDecryptor,
    generation: u32,
    last_key_frame_request_ms: f64,
}

impl Receiver {
    /// A decoder that was fed nothing for a while needs a key frame to start again; asking
    /// more often than this only adds load on the sender.
    const KEY_FRAME_REQUEST_INTERVAL_MS: f64 = 1000.0;

    fn process(&mut self, codec: Codec, data: &[u8], frame: &Frame) -> Outcome {
        KEYS.with_borrow_mut(|keys| {
            if keys.debug.skip_decrypt {
                return Outcome::Pass;
            }
            if let Some(current) = keys.peers.get(&self.peer)
                && current.generation != self.generation
            {
                self.decryptor.set_key(current.key_id, &current.key);
                self.generation = current.generation;
            }
            let outcome = match self.decryptor.decrypt(codec, data) {
                Ok(plain) => {
                    frame.set_data(plain);
                    Outcome::Pass
                }
                // The browser hands some video frames over more than once (retransmissions);
                // the copy is dropped, and it says nothing about the key.
                Err(FrameError::Replayed) => return Outcome::Drop,
                Err(_) => Outcome::Failed,
            };
            keys.count(&self.peer, outcome == Outcome::Pass);
            outcome
        })
    }

    fn should_request_key_frame(&mut self) -> bool {
        let now = js_sys::Date::now();
        let due = now - self.last_key_frame_request_ms >= Self::KEY_FRAME_REQUEST_INTERVAL_MS;
        if due {
            self.last_key_frame_request_ms = now;
        }
        due
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Send the frame on.
    Pass,
    /// Drop it quietly.
    Drop,
    /// Drop it: it did not decrypt.
    Failed,
}

fn encrypt(codec: Codec, data: &[u8], frame: &Frame) -> Outcome {
    KEYS.with_borrow_mut(|keys| match keys.encryptor.as_mut() {
        Some(encryptor) => match encryptor.encrypt(codec, data) {
            Ok(sealed) => {
                frame.set_data(sealed);
                Outcome::Pass
            }
            Err(_) => Outcome::Drop,
        },
        // No key yet: drop. A frame is never sent in clear.
        None => Outcome::Drop,
    })
}

/// Connects the transformer's streams through a `TransformStream` whose `transform` is
/// ours, so the browser's stream machinery handles ordering and backpressure.
async fn run(
    transformer: &RtcRtpScriptTransformer,
    options: &TransformOptions,
) -> Result<(), JsValue> {
    let mut receiver = match (options.role, &options.peer) {
        (Role::Receive, Some(peer)) => Some(Receiver {
            peer: peer.clone(),
            decryptor: FrameDecryptor::new(),
            generation: 0,
            last_key_frame_request_ms: f64::NEG_INFINITY,
        }),
        (Role::Receive, None) => return Err("receive transform without a peer".into()),
        (Role::Send, _) => None,
    };
    let kind = options.kind;
    let mut data = Vec::new();
    let requester = transformer.clone();

    let transform = Closure::<dyn FnMut(JsValue, TransformStreamDefaultController)>::new(
        move |chunk: JsValue, controller: TransformStreamDefaultController| {
            let frame = Frame::new(kind, chunk);
            let codec = frame.codec(kind);
            let buffer = Uint8Array::new(&frame.data());
            data.resize(buffer.length() as usize, 0);
            buffer.copy_to(&mut data);
            let outcome = match receiver.as_mut() {
                Some(receiver) => receiver.process(codec, &data, &frame),
                None => encrypt(codec, &data, &frame),
            };
            match outcome {
                Outcome::Pass => {
                    let _ = controller.enqueue_with_chunk(&frame.into_js());
                }
                Outcome::Failed if kind == MediaKind::Video => {
                    if receiver
                        .as_mut()
                        .is_some_and(Receiver::should_request_key_frame)
                    {
                        // Once frames decrypt again, the decoder can restart at once.
                        let _ = requester.send_key_frame_request();
                    }
                }
                Outcome::Failed | Outcome::Drop => {}
            }
        },
    );
    let methods = Object::new();
    Reflect::set(&methods, &"transform".into(), transform.as_ref())?;
    let stream = TransformStream::new_with_transformer(&methods)?;
    let piped = transformer
        .readable()
        .pipe_through(stream.unchecked_ref::<ReadableWritablePair>())
        .pipe_to(&transformer.writable());
    // Keeps the closure alive exactly as long as frames flow.
    let ended = JsFuture::from(piped).await;
    drop(transform);
    ended.map(|_| ())
}
