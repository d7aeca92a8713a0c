//! One transform: encoded frames from the transformer's readable stream, encrypted or
//! decrypted, on to its writable stream. A frame that cannot be processed is dropped (audio:
//! replaced by silence), never passed on as it came.
//!
//! No JavaScript is called while the worker's `RefCell`s are borrowed, except the copies in
//! `frames`, which catch: a JavaScript exception unwinds straight through wasm and would leave
//! the borrow taken for good.

use conclave_e2ee::frame::{Codec, FrameDecryptor, FrameError};
use js_sys::{ArrayBuffer, Object, Promise, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{RtcRtpScriptTransformer, UnderlyingSink, WritableStream};

use super::frames::{self, Failure};
use super::{KEYS, VIDEO_SENDERS};
use conclave_bridge::{MediaKind, Role, TransformOptions};

#[wasm_bindgen]
extern "C" {
    /// `RTCEncodedVideoFrame` or `RTCEncodedAudioFrame`: the part both share, with the
    /// exceptions they can throw (a frame already handed on, say) caught.
    #[wasm_bindgen(extends = Object)]
    type EncodedFrame;

    #[wasm_bindgen(method, getter, catch)]
    fn data(this: &EncodedFrame) -> Result<ArrayBuffer, JsValue>;

    #[wasm_bindgen(method, setter, catch, js_name = data)]
    fn set_data(this: &EncodedFrame, data: &ArrayBuffer) -> Result<(), JsValue>;

    #[wasm_bindgen(method, catch, js_name = getMetadata)]
    fn get_metadata(this: &EncodedFrame) -> Result<Object, JsValue>;

    /// JavaScript's `String(value)`.
    #[wasm_bindgen(js_name = String)]
    fn js_string(value: &JsValue) -> String;
}

pub fn spawn(transformer: RtcRtpScriptTransformer, options: TransformOptions) {
    let video_sender = options.role == Role::Send && options.kind == MediaKind::Video;
    if video_sender {
        VIDEO_SENDERS.with_borrow_mut(|s| s.push(transformer.clone()));
    }
    wasm_bindgen_futures::spawn_local(async move {
        let ended = run(&transformer, &options).await;
        if video_sender {
            VIDEO_SENDERS.with_borrow_mut(|s| s.retain(|t| !Object::is(t, &transformer)));
        }
        if let Err(err) = ended {
            let role = match options.role {
                Role::Send => "sending ",
                Role::Receive => "receiving ",
            };
            let kind = match options.kind {
                MediaKind::Audio => "audio",
                MediaKind::Video => "video",
            };
            // The browser's own words for what stopped the stream.
            let err = js_string(&err);
            super::problem([role, kind, " transform stopped: ", &err].concat());
        }
    });
}

/// The codec from the frame's metadata where the browser gives one; else (Safari before 2025)
/// Opus for audio, and for video H.264 if the frame begins with an Annex B start code (Safari's
/// first choice; on the wire too, its start code is in clear), VP8 otherwise. (A VP8 frame
/// would begin so only as a hidden key frame, which encoders do not make.)
fn codec(frame: &EncodedFrame, kind: MediaKind, data: &ArrayBuffer) -> Codec {
    let mime = frame
        .get_metadata()
        .ok()
        .and_then(|m| Reflect::get(&m, &"mimeType".into()).ok())
        .and_then(|m| m.as_string());
    match (mime, kind) {
        (Some(mime), _) => Codec::from_mime(&mime),
        (None, MediaKind::Audio) => Codec::Opus,
        (None, MediaKind::Video) => {
            let head =
                Uint8Array::new_with_byte_offset_and_length(data, 0, data.byte_length().min(4))
                    .to_vec();
            if head.starts_with(&[0, 0, 1]) || head.starts_with(&[0, 0, 0, 1]) {
                Codec::H264
            } else {
                Codec::Vp8
            }
        }
    }
}

/// An Opus packet of 20 ms of silence (CELT, full band, one frame, DTX), which decoders play as
/// silence. Undecryptable audio becomes this rather than garbage, so the jitter buffer keeps
/// its timing and nobody hears noise.
const OPUS_SILENCE: [u8; 3] = [0xf8, 0xff, 0xfe];

/// What happened to one frame: what the pipe writes on, and what a receiver counts for the
/// page (`Keys::count`).
pub enum Fate {
    /// Encrypted or decrypted: passed on with these bytes.
    Passed(ArrayBuffer),
    /// Passed on as it came (`?debug=skip-decrypt`, test builds only); not counted.
    #[cfg(feature = "test-hooks")]
    PassedAsItCame,
    /// Dropped quietly, and not counted: a duplicate, nothing to encrypt with yet, or the
    /// browser would not hand over its bytes.
    Dropped,
    /// It did not decrypt; `missing_key` when it names a key we do not hold.
    Undecryptable { missing_key: bool },
}

/// One receiver's own decryptor (and replay window), re-keyed whenever the worker gets new keys
/// for its member.
struct Receiver {
    peer: String,
    decryptor: FrameDecryptor,
    version: u32,
    last_key_frame_request_ms: f64,
}

impl Receiver {
    /// A decoder fed nothing for a while needs a key frame to start again; asking more often
    /// than this only adds load on the sender.
    const KEY_FRAME_REQUEST_INTERVAL_MS: f64 = 1000.0;

    fn decrypt(&mut self, codec: Codec, data: &ArrayBuffer) -> Fate {
        KEYS.with_borrow(|keys| {
            if let Some(current) = keys.peers.get(&self.peer)
                && current.version != self.version
            {
                self.decryptor
                    .set_keys(current.keys.iter().map(|(kid, key)| (*kid, key)));
                self.version = current.version;
            }
        });
        #[cfg(feature = "test-hooks")]
        if KEYS.with_borrow(|keys| keys.hooks.skip_decrypt()) {
            return Fate::PassedAsItCame;
        }
        // The decryptor is this receiver's own, so no borrow is held across the JavaScript
        // calls that copy the frame in and out.
        let fate = match frames::decrypt(&mut self.decryptor, codec, data) {
            Ok(plain) => Fate::Passed(plain),
            // The browser hands some video frames over more than once (retransmissions);
            // the copy is dropped, and it says nothing about the key.
            Err(Failure::Frame(FrameError::Replayed)) => return Fate::Dropped,
            // Nor does a frame whose bytes the browser would not hand over or take.
            Err(Failure::Browser) => return Fate::Dropped,
            Err(Failure::Frame(FrameError::UnknownKey | FrameError::NoKey)) => {
                Fate::Undecryptable { missing_key: true }
            }
            Err(Failure::Frame(_)) => Fate::Undecryptable { missing_key: false },
        };
        KEYS.with_borrow_mut(|keys| keys.count(&self.peer, &fate));
        fate
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

fn encrypt(codec: Codec, data: &ArrayBuffer) -> Fate {
    KEYS.with_borrow_mut(|keys| {
        match frames::encrypt(&mut keys.encryptor, codec, data) {
            Ok(sealed) => Fate::Passed(sealed),
            // No key yet (or a failure): drop. A frame is never sent in clear.
            Err(_) => Fate::Dropped,
        }
    })
}

/// [`encrypt`], noting the frame for `record-frames` (test builds only).
#[cfg(feature = "test-hooks")]
fn encrypt_recorded(
    frame: &EncodedFrame,
    kind: MediaKind,
    codec: Codec,
    data: &ArrayBuffer,
) -> Fate {
    // Read first: encrypting releases `data`, and no JavaScript may run while it borrows.
    let bytes = data.byte_length();
    let key = Reflect::get(frame, &"type".into())
        .ok()
        .and_then(|t| t.as_string())
        .is_some_and(|t| t == "key");
    let started = super::hooks::now_us();
    let fate = encrypt(codec, data);
    let us = super::hooks::now_us() - started;
    if let Fate::Passed(_) = &fate {
        super::hooks::record_sent(kind, key, bytes, us);
    }
    fate
}

/// What our `write` returns for a frame it does not pass on.
fn dropped() -> Promise {
    Promise::resolve(&JsValue::UNDEFINED)
}

/// Pipes the transformer's readable stream into a writable stream of ours, whose `write`
/// transforms a frame and writes it on to the transformer's writable stream, returning that
/// write's promise: the browser's stream machinery handles ordering and backpressure, and the
/// next `write` comes only once the browser has taken the previous frame, so the buffer we
/// handed it can be released then. (A read loop of our own over the readable stalled in
/// Chromium after a frame or two.)
async fn run(
    transformer: &RtcRtpScriptTransformer,
    options: &TransformOptions,
) -> Result<(), JsValue> {
    let mut receiver = match (options.role, &options.peer) {
        (Role::Receive, Some(peer)) => Some(Receiver {
            peer: peer.clone(),
            decryptor: FrameDecryptor::new(),
            version: 0,
            last_key_frame_request_ms: f64::NEG_INFINITY,
        }),
        (Role::Receive, None) => return Err("receive transform without a peer".into()),
        (Role::Send, _) => None,
    };
    let kind = options.kind;
    let requester = transformer.clone();
    let out = transformer.writable().get_writer()?;
    // The bytes of the frame written last, which the browser has taken by the next `write`.
    let mut handed_on = frames::HandedOn::default();

    let writer = out.clone();
    let write = Closure::<dyn FnMut(JsValue) -> Promise>::new(move |chunk: JsValue| {
        handed_on.taken();
        let frame: EncodedFrame = chunk.unchecked_into();
        let Ok(data) = frame.data() else {
            return dropped();
        };
        let codec = codec(&frame, kind, &data);
        let fate = match receiver.as_mut() {
            Some(receiver) => receiver.decrypt(codec, &data),
            #[cfg(feature = "test-hooks")]
            None if super::hooks::records_sent_frames() => {
                encrypt_recorded(&frame, kind, codec, &data)
            }
            None => encrypt(codec, &data),
        };
        let bytes = match fate {
            Fate::Passed(bytes) => bytes,
            #[cfg(feature = "test-hooks")]
            Fate::PassedAsItCame => return writer.write_with_chunk(&frame),
            Fate::Undecryptable { .. } if kind == MediaKind::Audio => {
                match frames::to_buffer(&OPUS_SILENCE) {
                    Ok(silence) => silence,
                    Err(_) => return dropped(),
                }
            }
            Fate::Undecryptable { .. } => {
                if receiver
                    .as_mut()
                    .is_some_and(Receiver::should_request_key_frame)
                {
                    // Once frames decrypt again, the decoder can restart at once.
                    let _ = super::call_method(&requester, "sendKeyFrameRequest");
                }
                return dropped();
            }
            Fate::Dropped => return dropped(),
        };
        if frame.set_data(&bytes).is_err() {
            return dropped();
        }
        handed_on.hand_on(bytes);
        writer.write_with_chunk(&frame)
    });
    // The end of the frames, or an error, passes on to the transformer's writable stream.
    let writer = out.clone();
    let close = Closure::<dyn FnMut() -> Promise>::new(move || writer.close());
    let writer = out;
    let abort = Closure::<dyn FnMut(JsValue) -> Promise>::new(move |reason| {
        writer.abort_with_reason(&reason)
    });
    let sink = UnderlyingSink::new();
    sink.set_write(write.as_ref().unchecked_ref());
    sink.set_close(close.as_ref().unchecked_ref());
    sink.set_abort(abort.as_ref().unchecked_ref());
    let ours = WritableStream::new_with_underlying_sink(&sink)?;
    let piped = transformer.readable().pipe_to(&ours);
    // Keeps the closures alive exactly as long as frames flow.
    let ended = JsFuture::from(piped).await;
    drop((write, close, abort));
    ended.map(|_| ())
}
