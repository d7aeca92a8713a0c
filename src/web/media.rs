//! Camera and microphone. Asking for both and falling back one device at a time, so a person
//! who blocks the camera still joins with their voice, and one who blocks both still joins to
//! watch and listen.

use conclave_call::notice::{Devices, media_error};
use js_sys::{Object, Reflect};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{DomException, MediaStream, MediaStreamConstraints, MediaStreamTrack};

use super::window;

/// What we got, and what to tell the person about what we did not.
pub struct Acquired {
    pub stream: MediaStream,
    pub problem: Option<String>,
}

impl Acquired {
    pub fn audio(&self) -> Option<MediaStreamTrack> {
        audio_track(&self.stream)
    }

    pub fn video(&self) -> Option<MediaStreamTrack> {
        video_track(&self.stream)
    }
}

/// Which device of a kind to ask for.
#[derive(Clone, Copy)]
pub enum Want<'a> {
    No,
    /// The browser's default.
    Default,
    /// This one or none. (Chromium weighs an `ideal` device id against the ideal size and may
    /// open another camera, so a remembered device is asked for exactly, then the default.)
    Exactly(&'a str),
}

impl<'a> Want<'a> {
    fn remembered(id: Option<&'a str>) -> Self {
        id.map_or(Self::Default, Self::Exactly)
    }
}

fn with(key: &str, value: &JsValue) -> Object {
    let o = Object::new();
    let _ = Reflect::set(&o, &key.into(), value);
    o
}

fn device_constraint(want: Want<'_>, video: bool) -> JsValue {
    let id = match want {
        Want::No => return JsValue::FALSE,
        Want::Default if !video => return JsValue::TRUE,
        Want::Default => None,
        Want::Exactly(id) => Some(id),
    };
    let c = Object::new();
    if let Some(id) = id {
        let _ = Reflect::set(&c, &"deviceId".into(), &with("exact", &id.into()));
    }
    if video {
        // 640x360 keeps a full mesh of eight within a laptop's uplink and CPU.
        let ideal = |v: f64| with("ideal", &v.into());
        let (width, height) = conclave_call::layers::CAMERA;
        let _ = Reflect::set(&c, &"width".into(), &ideal(width.into()));
        let _ = Reflect::set(&c, &"height".into(), &ideal(height.into()));
        let _ = Reflect::set(&c, &"frameRate".into(), &ideal(24.0));
    }
    c.into()
}

async fn get_user_media(audio: Want<'_>, video: Want<'_>) -> Result<MediaStream, String> {
    let devices = window()
        .navigator()
        .media_devices()
        .map_err(|_| "NotSupportedError".to_owned())?;
    let constraints = MediaStreamConstraints::new();
    constraints.set_audio(&device_constraint(audio, false));
    constraints.set_video(&device_constraint(video, true));
    let promise = devices
        .get_user_media_with_constraints(&constraints)
        .map_err(|e| error_name(&e))?;
    JsFuture::from(promise)
        .await
        .map(|s| s.unchecked_into())
        .map_err(|e| error_name(&e))
}

fn error_name(err: &JsValue) -> String {
    err.dyn_ref::<DomException>()
        .map(DomException::name)
        .unwrap_or_else(|| "Error".to_owned())
}

/// Gets what it can of the camera and microphone, the ones chosen in this browser before
/// where they are still plugged in.
pub async fn acquire(mic: Option<&str>, camera: Option<&str>) -> Acquired {
    let empty = || MediaStream::new().expect("MediaStream constructor");
    let (audio, video) = (Want::remembered(mic), Want::remembered(camera));
    let mut got = get_user_media(audio, video).await;
    if got.is_err() && (mic.is_some() || camera.is_some()) {
        // A remembered device was unplugged since: the defaults.
        got = get_user_media(Want::Default, Want::Default).await;
    }
    if let Ok(stream) = got {
        return Acquired {
            stream,
            problem: None,
        };
    }
    // One device at a time, to find out which one is the problem.
    let audio = Some(get_user_media(Want::Default, Want::No).await);
    let video = Some(get_user_media(Want::No, Want::Default).await);
    let stream = empty();
    for got in [&audio, &video].into_iter().flatten().flatten() {
        for track in got.get_tracks().iter() {
            stream.add_track(&track.unchecked_into());
        }
    }
    let problem = match (audio, video) {
        (Some(Err(a)), Some(Err(_))) => Some(media_error(&a, Devices::Both)),
        (Some(Err(a)), _) => Some(media_error(&a, Devices::Microphone)),
        (_, Some(Err(v))) => Some(media_error(&v, Devices::Camera)),
        _ => None,
    };
    Acquired { stream, problem }
}

/// Opens device `id` alone (a camera or a microphone), for a switch. `Err` holds the browser's
/// reason.
pub async fn open(video: bool, id: &str) -> Result<MediaStreamTrack, String> {
    open_one(video, Want::Exactly(id)).await
}

/// Opens the browser's default camera (`video`) or microphone alone.
pub async fn open_default(video: bool) -> Result<MediaStreamTrack, String> {
    open_one(video, Want::Default).await
}

async fn open_one(video: bool, want: Want<'_>) -> Result<MediaStreamTrack, String> {
    let (a, v) = if video {
        (Want::No, want)
    } else {
        (want, Want::No)
    };
    let stream = get_user_media(a, v).await?;
    stream
        .get_tracks()
        .get(0)
        .dyn_into()
        .map_err(|_| "NotFoundError".to_owned())
}

/// Stops the camera and microphone (their lights go off).
pub fn stop(stream: &MediaStream) {
    for track in stream.get_tracks().iter() {
        track.unchecked_into::<MediaStreamTrack>().stop();
    }
}

/// Makes the tracks follow the mic and camera switches: a disabled track sends silence or
/// black, without renegotiating.
pub fn set_enabled(stream: &MediaStream, mic: bool, camera: bool) {
    let set = |tracks: js_sys::Array, on: bool| {
        for t in tracks.iter() {
            t.unchecked_into::<MediaStreamTrack>().set_enabled(on);
        }
    };
    set(stream.get_audio_tracks(), mic);
    set(stream.get_video_tracks(), camera);
}

/// Shows `stream` in `el` and starts it. `autoplay` alone is not enough: a media element that
/// was assigned a stream before it had tracks, or while covered, can stay paused.
pub fn play(el: &web_sys::HtmlMediaElement, stream: Option<&MediaStream>) {
    el.set_src_object(stream);
    if stream.is_some()
        && let Ok(started) = el.play()
    {
        wasm_bindgen_futures::spawn_local(async move {
            // Refused only by a browser's autoplay policy; the element plays once the person
            // interacts with the page.
            let _ = JsFuture::from(started).await;
        });
    }
}

/// Asks to share a screen, window or tab. The video is marked as detail (text and lines), so
/// the encoder keeps it sharp rather than smooth. `Err` holds the browser's reason.
pub async fn display() -> Result<MediaStream, String> {
    let devices = window()
        .navigator()
        .media_devices()
        .map_err(|_| "NotSupportedError".to_owned())?;
    let promise = devices.get_display_media().map_err(|e| error_name(&e))?;
    let stream: MediaStream = JsFuture::from(promise)
        .await
        .map(|s| s.unchecked_into())
        .map_err(|e| error_name(&e))?;
    for track in stream.get_video_tracks().iter() {
        // Not in web-sys: `MediaStreamTrack.contentHint`.
        let _ = Reflect::set(&track, &"contentHint".into(), &"detail".into());
    }
    Ok(stream)
}

/// The first video track of `stream`.
pub fn video_track(stream: &MediaStream) -> Option<MediaStreamTrack> {
    stream.get_video_tracks().get(0).dyn_into().ok()
}

pub fn audio_track(stream: &MediaStream) -> Option<MediaStreamTrack> {
    stream.get_audio_tracks().get(0).dyn_into().ok()
}

/// Shows `el` on the whole screen, or leaves full screen if it is showing.
pub fn toggle_fullscreen(el: &web_sys::Element) {
    let Some(document) = window().document() else {
        return;
    };
    if document.fullscreen_element().is_some() {
        document.exit_fullscreen();
    } else {
        // Refused without a click, or where the page may not go full screen: nothing changes.
        let _ = el.request_fullscreen();
    }
}
