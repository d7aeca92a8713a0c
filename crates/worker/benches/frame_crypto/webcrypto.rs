//! The reference: the same frame layout (`clear bytes || SFrame header || ciphertext || tag`,
//! RFC 9605 with AES_128_GCM_SHA256_128) built the way LiveKit's and Jitsi's transforms build
//! it: the key imported into WebCrypto once, then per frame a fresh IV and AAD, one
//! `crypto.subtle.encrypt` (or `decrypt`) awaited, and a new buffer assembled from the pieces.
//! Written from the RFC, independently of `sframe`, and checked against it byte for byte
//! before anything is timed.

use hkdf::Hkdf;
use js_sys::{Array, ArrayBuffer, Uint8Array};
use sha2::Sha256;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{AesGcmParams, CryptoKey, SubtleCrypto, WorkerGlobalScope};

/// AES_128_GCM_SHA256_128 (RFC 9605 §4.5).
const CIPHER_SUITE: u16 = 0x0004;

pub struct WebCryptoSframe {
    subtle: SubtleCrypto,
    key: CryptoKey,
    salt: [u8; 12],
    key_id: u64,
    counter: u64,
}

/// How many leading bytes stay in clear, from the first byte alone, as those transforms do:
/// VP8 key frame 10 (RFC 6386 §9.1: bit 0 of the tag is 0), delta 3; Opus 1.
fn clear_len(video: bool, first: u8) -> u32 {
    match (video, first & 0x01 == 0) {
        (false, _) => 1,
        (true, true) => 10,
        (true, false) => 3,
    }
}

/// A value as the fewest big-endian bytes that hold it (at least one).
fn min_be(value: u64) -> Vec<u8> {
    let bytes = value.to_be_bytes();
    let skip = bytes.iter().take(7).take_while(|b| **b == 0).count();
    bytes[skip..].to_vec()
}

/// RFC 9605 §4.3: `|X|K K K|Y|C C C|`, then the key id and counter fields a short value does
/// not fit into the config byte.
fn header(key_id: u64, counter: u64) -> Vec<u8> {
    let mut out = vec![0u8];
    let mut config = 0u8;
    if key_id < 8 {
        config |= (key_id as u8) << 4;
    } else {
        let bytes = min_be(key_id);
        config |= 0x80 | ((bytes.len() as u8 - 1) << 4);
        out.extend(bytes);
    }
    if counter < 8 {
        config |= counter as u8;
    } else {
        let bytes = min_be(counter);
        config |= 0x08 | (bytes.len() as u8 - 1);
        out.extend(bytes);
    }
    out[0] = config;
    out
}

/// Reads a header back: (key id, counter, header length).
fn parse_header(bytes: &Uint8Array, at: u32) -> Option<(u64, u64, u32)> {
    let len = bytes.length();
    let config = (at < len).then(|| bytes.get_index(at))?;
    let mut pos = at + 1;
    let mut field = |extended: bool, short: u8| -> Option<u64> {
        if !extended {
            return Some(u64::from(short));
        }
        let n = u32::from(short) + 1;
        if pos + n > len {
            return None;
        }
        let value = (pos..pos + n).fold(0u64, |v, i| (v << 8) | u64::from(bytes.get_index(i)));
        pos += n;
        Some(value)
    };
    let key_id = field(config & 0x80 != 0, (config >> 4) & 0x07)?;
    let counter = field(config & 0x08 != 0, config & 0x07)?;
    Some((key_id, counter, pos - at))
}

fn subtle() -> SubtleCrypto {
    js_sys::global()
        .unchecked_into::<WorkerGlobalScope>()
        .crypto()
        .expect("WebCrypto in a secure worker")
        .subtle()
}

impl WebCryptoSframe {
    /// Imports the key of `base_key` under `key_id` (RFC 9605 §4.4.2), once.
    pub async fn new(key_id: u64, base_key: &[u8]) -> Result<Self, JsValue> {
        let hkdf = Hkdf::<Sha256>::new(Some(b""), base_key);
        let label = |what: &str| {
            [
                format!("SFrame 1.0 Secret {what} ").as_bytes(),
                &key_id.to_be_bytes(),
                &CIPHER_SUITE.to_be_bytes(),
            ]
            .concat()
        };
        let (mut key, mut salt) = ([0u8; 16], [0u8; 12]);
        hkdf.expand(&label("key"), &mut key)
            .map_err(|_| "HKDF length")?;
        hkdf.expand(&label("salt"), &mut salt)
            .map_err(|_| "HKDF length")?;

        let subtle = subtle();
        let algorithm = js_sys::Object::new();
        js_sys::Reflect::set(&algorithm, &"name".into(), &"AES-GCM".into())?;
        let usages = Array::of2(&"encrypt".into(), &"decrypt".into());
        let imported = subtle.import_key_with_object(
            "raw",
            &Uint8Array::from(&key[..]),
            &algorithm,
            false,
            &usages,
        )?;
        let key = JsFuture::from(imported).await?.unchecked_into();
        Ok(Self {
            subtle,
            key,
            salt,
            key_id,
            counter: 0,
        })
    }

    fn params(&self, counter: u64, aad: &[u8]) -> AesGcmParams {
        let mut iv = self.salt;
        for (n, c) in iv[4..].iter_mut().zip(counter.to_be_bytes()) {
            *n ^= c;
        }
        let params = AesGcmParams::new("AES-GCM", &Uint8Array::from(&iv[..]));
        params.set_additional_data(&Uint8Array::from(aad));
        params
    }

    /// Encrypts one frame held in `frame` (`video`: VP8, else Opus) into a new buffer.
    pub async fn encrypt(
        &mut self,
        video: bool,
        frame: &ArrayBuffer,
    ) -> Result<ArrayBuffer, JsValue> {
        let bytes = Uint8Array::new(frame);
        let len = bytes.length();
        let clear = clear_len(video, bytes.get_index(0)).min(len);
        let header = header(self.key_id, self.counter);
        // RFC 9605 §4.4.3: the AAD is the header followed by the metadata (our clear bytes).
        let mut aad = header.clone();
        aad.extend(bytes.subarray(0, clear).to_vec());
        let params = self.params(self.counter, &aad);
        self.counter += 1;
        let sealed = self.subtle.encrypt_with_object_and_buffer_source(
            &params,
            &self.key,
            &bytes.subarray(clear, len),
        )?;
        let sealed = Uint8Array::new(&JsFuture::from(sealed).await?);
        let out = Uint8Array::new_with_length(clear + header.len() as u32 + sealed.length());
        out.set(&bytes.subarray(0, clear), 0);
        out.set(&Uint8Array::from(&header[..]), clear);
        out.set(&sealed, clear + header.len() as u32);
        Ok(out.buffer())
    }

    /// Decrypts one frame into a new buffer: clear bytes, then the plaintext.
    pub async fn decrypt(&self, video: bool, frame: &ArrayBuffer) -> Result<ArrayBuffer, JsValue> {
        let bytes = Uint8Array::new(frame);
        let len = bytes.length();
        let clear = clear_len(video, bytes.get_index(0)).min(len);
        let (key_id, counter, header_len) = parse_header(&bytes, clear).ok_or("bad header")?;
        if key_id != self.key_id {
            return Err("unknown key id".into());
        }
        let mut aad = bytes.subarray(clear, clear + header_len).to_vec();
        aad.extend(bytes.subarray(0, clear).to_vec());
        let params = self.params(counter, &aad);
        let opened = self.subtle.decrypt_with_object_and_buffer_source(
            &params,
            &self.key,
            &bytes.subarray(clear + header_len, len),
        )?;
        let opened = Uint8Array::new(&JsFuture::from(opened).await?);
        let out = Uint8Array::new_with_length(clear + opened.length());
        out.set(&bytes.subarray(0, clear), 0);
        out.set(&opened, clear);
        Ok(out.buffer())
    }
}
