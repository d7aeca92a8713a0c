//! The camera, microphone and speaker pickers, and the microphone's level meter: in the lobby
//! and, behind a button, in the call.

use conclave_call::devices::{self, DeviceKind};
use leptos::prelude::*;

use super::model::CallModel;
use super::widgets::icon_label;
use crate::web::session::{Intent, SessionHandle};

#[component]
fn Picker(kind: DeviceKind, testid: &'static str, label: &'static str) -> impl IntoView {
    let model = expect_context::<CallModel>();
    let session = expect_context::<SessionHandle>();
    let options = move || {
        model.devices.with(|list| {
            devices::of_kind(list, kind)
                .map(|d| (d.id.clone(), d.name()))
                .collect::<Vec<_>>()
        })
    };
    let in_use = move || {
        match kind {
            DeviceKind::Camera => model.camera_id,
            DeviceKind::Microphone => model.mic_id,
            DeviceKind::Speaker => model.speaker_id,
        }
        .get()
    };
    // No speaker chosen: the browser's default, listed first. No camera or microphone in use
    // (none when the call began, or none left): "none", so that picking the one plugged in
    // since is a change.
    let none = match kind {
        DeviceKind::Camera => Some("No camera"),
        DeviceKind::Microphone => Some("No microphone"),
        DeviceKind::Speaker => None,
    };
    let chosen = move || {
        in_use()
            .or_else(|| {
                none.is_none()
                    .then(|| options().into_iter().next().map(|(id, _)| id))
                    .flatten()
            })
            .unwrap_or_default()
    };
    let id = format!("pick-{testid}");
    view! {
        <Show when=move || !options().is_empty()>
            <label for=id.clone()>{label}</label>
            <select
                id=id.clone()
                data-testid=testid
                prop:value=chosen
                on:change=move |ev| session.send(Intent::Choose(kind, event_target_value(&ev)))
            >
                {move || none.filter(|_| in_use().is_none()).map(|none| view! {
                    <option value="" disabled=true selected=true>{none}</option>
                })}
                {move || options().into_iter().map(|(id, name)| {
                    let selected = chosen() == id;
                    view! { <option value=id selected=selected>{name}</option> }
                }).collect_view()}
            </select>
        </Show>
    }
}

/// How loud the microphone is, on a scale that moves with speech (decibels, -60 to 0).
#[component]
pub fn MicLevel() -> impl IntoView {
    let model = expect_context::<CallModel>();
    let shown = move || {
        let level = model.mic_level.get();
        if level <= 0.0 {
            0.0
        } else {
            ((20.0 * level.log10() + 60.0) / 60.0).clamp(0.0, 1.0)
        }
    };
    view! {
        <meter
            class="mic-level"
            data-testid="mic-level"
            min="0"
            max="1"
            low="0.15"
            high="0.9"
            optimum="0.5"
            aria-label="Microphone level"
            prop:value=shown
            data-level=move || conclave_call::quality::fixed(model.mic_level.get(), 3)
        ></meter>
    }
}

/// A chime on the chosen speaker, to hear that sound comes out before anyone talks.
#[component]
fn SpeakerTest() -> impl IntoView {
    let model = expect_context::<CallModel>();
    let session = expect_context::<SessionHandle>();
    view! {
        <button
            type="button"
            class="speaker-test"
            data-testid="speaker-test"
            disabled=move || model.chime.get()
            on:click=move |_| session.send(Intent::TestSpeaker)
        >
            {move || if model.chime.get() { "🔊 Playing…" } else { "🔊 Test sound" }}
        </button>
    }
}

#[component]
pub fn DevicePickers() -> impl IntoView {
    view! {
        <div class="pickers">
            <Picker kind=DeviceKind::Camera testid="device-camera" label="Camera"/>
            <Picker kind=DeviceKind::Microphone testid="device-mic" label="Microphone"/>
            <MicLevel/>
            <Picker kind=DeviceKind::Speaker testid="device-speaker" label="Speaker"/>
            <SpeakerTest/>
        </div>
    }
}

/// The pickers in the call, behind a button, so the controls stay few.
#[component]
pub fn DevicesMenu() -> impl IntoView {
    view! {
        <details class="popover devices-menu">
            <summary data-testid="devices-menu">{icon_label("⚙\u{fe0f} Devices")}</summary>
            <div class="menu">
                <DevicePickers/>
            </div>
        </details>
    }
}
