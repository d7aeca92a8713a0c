//! One frame's trip through our crypto, as every transform makes it: the encoded frame's
//! `ArrayBuffer` is copied into wasm memory once, straight into the buffer where
//! `conclave_e2ee::frame` encrypts or decrypts it in place, and released; the result is copied
//! once into a new `ArrayBuffer` for the browser.
//! The benchmark (`benches/frame_crypto`) times these very functions.
//!
//! Buffers are released (detached) as soon as nobody needs them, not left to the garbage
//! collector: a frame buffer freed at once is memory the next one reuses while it is still
//! mapped and in cache, where one left for the collector makes every allocation take fresh
//! pages (measured in headless Chromium: a 200 KB frame's trip in and out 480 µs → 30 µs).
//!
//! Every JavaScript call made here catches its exceptions: a sender encrypts while the
//! worker's `RefCell` lends it the shared encryptor, and an exception unwinding through wasm
//! would leave that borrow taken for good.

use conclave_e2ee::frame::{Codec, FrameDecryptor, FrameEncryptor, FrameError};
use js_sys::{ArrayBuffer, Uint8Array};
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    /// A `Uint8Array` whose constructors catch (js-sys's do not).
    #[wasm_bindgen(js_name = Uint8Array, extends = Uint8Array)]
    type Bytes;

    /// `new Uint8Array(buffer)`: a view of a frame's bytes. Throws for a detached buffer.
    #[wasm_bindgen(constructor, js_class = "Uint8Array", catch)]
    fn view_of(buffer: &ArrayBuffer) -> Result<Bytes, JsValue>;

    /// `new Uint8Array(bytes)`: a copy of wasm memory in a buffer of its own. Throws when out
    /// of memory.
    #[wasm_bindgen(constructor, js_class = "Uint8Array", catch)]
    fn copy_of(bytes: &[u8]) -> Result<Bytes, JsValue>;
}

/// Why a frame did not come through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Our crypto refused it.
    Frame(FrameError),
    /// The browser would not hand its bytes over or take new ones.
    Browser,
}

/// Frees a frame buffer's memory now rather than at the next garbage collection. Only for
/// buffers nothing else reads any more: the bytes `frame.data` handed us once they are copied
/// in (the frame gets new ones before it goes on), and the ones we handed the browser once its
/// writable stream has taken the frame. Where the browser has already detached the buffer
/// itself (Firefox does when it takes a frame), or has no `transfer`, it stays as it is.
pub fn release(buffer: &ArrayBuffer) {
    let _ = buffer.transfer_with_length(0);
}

/// The buffer last handed to the browser with a frame, released once the browser has taken
/// that frame (see [`release`]). The worker's pipe and the benchmark keep it alike.
#[derive(Default)]
pub struct HandedOn(Option<ArrayBuffer>);

impl HandedOn {
    /// Remembers `buffer`, just set as a frame's data.
    pub fn hand_on(&mut self, buffer: ArrayBuffer) {
        self.0 = Some(buffer);
    }

    /// Releases the buffer handed on last: call once the browser has taken its frame.
    pub fn taken(&mut self) {
        if let Some(buffer) = self.0.take() {
            release(&buffer);
        }
    }
}

/// A new `ArrayBuffer` holding `bytes`.
pub fn to_buffer(bytes: &[u8]) -> Result<ArrayBuffer, Failure> {
    Bytes::copy_of(bytes)
        .map(|array| array.buffer())
        .map_err(|_| Failure::Browser)
}

/// Encrypts one outgoing frame, releasing `data`: its bytes are copied straight into the
/// encryptor's buffer, where they are encrypted in place.
pub fn encrypt(
    encryptor: &mut FrameEncryptor,
    codec: Codec,
    data: &ArrayBuffer,
) -> Result<ArrayBuffer, Failure> {
    in_place(data, |len, fill| encryptor.encrypt_with(codec, len, fill))
}

/// Decrypts one incoming frame, releasing `data`, in place as [`encrypt`] does.
pub fn decrypt(
    decryptor: &mut FrameDecryptor,
    codec: Codec,
    data: &ArrayBuffer,
) -> Result<ArrayBuffer, Failure> {
    in_place(data, |len, fill| decryptor.decrypt_with(codec, len, fill))
}

/// Runs `op` on `data`'s length and a `fill` that copies its bytes into wasm, releases `data`
/// (only then: `fill` reads it), and hands what `op` made back in a new buffer.
fn in_place<'a>(
    data: &ArrayBuffer,
    op: impl FnOnce(usize, &dyn Fn(&mut [u8])) -> Result<&'a [u8], FrameError>,
) -> Result<ArrayBuffer, Failure> {
    let view = Bytes::view_of(data).map_err(|_| Failure::Browser)?;
    let done = op(view.length() as usize, &|into| view.copy_to(into)).map_err(Failure::Frame);
    release(data);
    to_buffer(done?)
}
