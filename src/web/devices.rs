//! The browser's cameras, microphones and speakers: listing them, opening one, playing sound
//! on one, and hearing when one is plugged in or out.

use conclave_call::devices::{Device, DeviceKind};
use js_sys::{Array, Function, Reflect};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{MediaDeviceInfo, MediaDeviceKind};

use super::events::{Listener, on};
use super::window;

/// Whether this browser can choose where sound plays (`HTMLMediaElement.setSinkId`).
pub fn can_choose_speaker() -> bool {
    let proto = Reflect::get(&window(), &"HTMLMediaElement".into())
        .and_then(|c| Reflect::get(&c, &"prototype".into()));
    proto.is_ok_and(|p| Reflect::has(&p, &"setSinkId".into()).unwrap_or(false))
}

/// Every camera, microphone and (where it can be chosen) speaker, the browser's default of
/// each kind first. Labels are empty until the person allowed a device.
pub async fn list() -> Vec<Device> {
    let Ok(devices) = window().navigator().media_devices() else {
        return Vec::new();
    };
    let Ok(promise) = devices.enumerate_devices() else {
        return Vec::new();
    };
    let Ok(found) = JsFuture::from(promise).await else {
        return Vec::new();
    };
    let speakers = can_choose_speaker();
    Array::from(&found)
        .iter()
        .filter_map(|d| {
            let d: MediaDeviceInfo = d.dyn_into().ok()?;
            let kind = match d.kind() {
                MediaDeviceKind::Videoinput => DeviceKind::Camera,
                MediaDeviceKind::Audioinput => DeviceKind::Microphone,
                MediaDeviceKind::Audiooutput if speakers => DeviceKind::Speaker,
                _ => return None,
            };
            // Before permission some browsers list one device of each kind with no id: kept,
            // as it says one is plugged in (see `Device::id`).
            Some(Device {
                kind,
                id: d.device_id(),
                label: d.label(),
            })
        })
        .collect()
}

/// Calls `changed` whenever a device is plugged in or out.
pub fn watch(changed: impl FnMut() + 'static) -> Option<Listener> {
    let devices = window().navigator().media_devices().ok()?;
    Some(on(devices.into(), "devicechange", changed))
}

/// The id of the device a track comes from (`getSettings().deviceId`).
pub fn device_of(track: &web_sys::MediaStreamTrack) -> Option<String> {
    let get = Reflect::get(track, &"getSettings".into()).ok()?;
    let settings = get.dyn_ref::<Function>()?.call0(track).ok()?;
    Reflect::get(&settings, &"deviceId".into())
        .ok()?
        .as_string()
}

/// Plays `el`'s sound on speaker `id` (`""`: the default). Not in web-sys: `setSinkId`.
pub fn play_on(el: &web_sys::HtmlMediaElement, id: &str) {
    let Ok(set) = Reflect::get(el, &"setSinkId".into()) else {
        return;
    };
    if let Some(set) = set.dyn_ref::<Function>()
        && let Ok(promise) = set.call1(el, &JsValue::from_str(id))
    {
        let promise: js_sys::Promise = promise.unchecked_into();
        wasm_bindgen_futures::spawn_local(async move {
            // A speaker unplugged since it was chosen: the sound stays where it was.
            let _ = JsFuture::from(promise).await;
        });
    }
}
