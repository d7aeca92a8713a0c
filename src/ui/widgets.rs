//! Pieces both the lobby and the call screen show: notices, our own video, device switches.

use conclave_call::devices::{DeviceKind, plugged_in};
use conclave_call::quality::LinkSample;
use leptos::html::{Figure, Video};
use leptos::prelude::*;

use super::model::CallModel;
use crate::web::media;
use crate::web::session::{Intent, SessionHandle};

/// Problems and confirmations, each dismissable.
#[component]
pub fn Notices() -> impl IntoView {
    let model = expect_context::<CallModel>();
    let session = expect_context::<SessionHandle>();
    view! {
        <ul class="notices" aria-live="polite">
            <For each=move || model.notices.get() key=|n| n.id let:n>
                <li class="notice" role="alert" data-testid="notice">
                    <span>{n.text.clone()}</span>
                    <button
                        type="button"
                        class="dismiss"
                        aria-label="Dismiss"
                        on:click=move |_| session.send(Intent::Dismiss(n.text.clone()))
                    >
                        "×"
                    </button>
                </li>
            </For>
        </ul>
    }
}

/// Our own camera, mirrored like a mirror, never played back aloud.
#[component]
pub fn LocalVideo() -> impl IntoView {
    let model = expect_context::<CallModel>();
    let video = NodeRef::<Video>::new();
    Effect::new(move |_| {
        model.local_rev.track();
        if let Some(el) = video.get() {
            media::play(&el, model.local.get_value().as_ref());
        }
    });
    let off = move || !(model.camera.get() && model.has_camera.get());
    view! {
        <div class="video-box self" class:off=off>
            <video node_ref=video autoplay playsinline prop:muted=true data-testid="local-video"></video>
            <div class="avatar">{move || initials(&model.name.get())}</div>
        </div>
    }
}

/// Puts `of` on the whole screen, or takes it off (Esc too, the browser's way).
#[component]
pub fn FullscreenButton(of: NodeRef<Figure>, testid: &'static str) -> impl IntoView {
    let toggle = move |_| {
        if let Some(el) = of.get() {
            media::toggle_fullscreen(&el);
        }
    };
    view! {
        <button type="button" class="fullscreen" data-testid=testid aria-label="Full screen" title="Full screen" on:click=toggle>
            // Drawn, not a character: few fonts have one for "full screen".
            <svg viewBox="0 0 16 16" aria-hidden="true" fill="none" stroke="currentColor" stroke-width="2">
                <path d="M1 6V1h5M10 1h5v5M15 10v5h-5M6 15H1v-5"/>
            </svg>
        </button>
    }
}

/// A control's text as an icon and a label ("🎙 Mic on"), so a narrow screen can show the
/// icon alone and still give screen readers the label.
pub fn icon_label(text: &'static str) -> impl IntoView {
    let (icon, label) = text.split_once(' ').unwrap_or(("", text));
    view! {
        <span class="icon" aria-hidden="true">{icon}</span>
        <span class="label">{label}</span>
    }
}

pub fn initials(name: &str) -> String {
    let letters: String = name
        .split_whitespace()
        .filter_map(|w| w.chars().next())
        .take(2)
        .collect();
    if letters.is_empty() {
        "?".to_owned()
    } else {
        letters.to_uppercase()
    }
}

/// A device on/off button. Disabled, and saying so, where there is no such device (or no
/// permission to use it). Off and enabled where one was plugged in since: turning it on
/// opens it. While the browser is still opening camera and microphone (the person may be
/// reading its prompt) it sets what they will be once open: "Mic off" pressed then is kept.
#[component]
fn DeviceSwitch(
    wanted: Signal<bool>,
    /// We have a track of this kind.
    available: Signal<bool>,
    /// The browser lists a device of this kind.
    plugged: Signal<bool>,
    intent: Intent,
    testid: &'static str,
    device: &'static str,
    on_label: &'static str,
    off_label: &'static str,
    shortcut: &'static str,
) -> impl IntoView {
    let session = expect_context::<SessionHandle>();
    let model = expect_context::<CallModel>();
    // The browser is still opening camera and microphone.
    let pending = move || !model.media_ready.get();
    let on = move || wanted.get() && (available.get() || pending());
    let usable = move || available.get() || plugged.get() || pending();
    view! {
        <button
            type="button"
            class="switch"
            class:off=move || !on()
            data-testid=testid
            aria-keyshortcuts=shortcut
            aria-pressed=move || on().to_string()
            disabled=move || !usable()
            title=move || if usable() { device.to_owned() } else { format!("No {device}") }
            on:click=move |_| session.send(intent.clone())
        >
            {move || icon_label(if on() { on_label } else { off_label })}
        </button>
    }
}

#[component]
pub fn MicSwitch() -> impl IntoView {
    let model = expect_context::<CallModel>();
    view! {
        <DeviceSwitch
            wanted=model.mic.into()
            available=model.has_mic.into()
            plugged=Signal::derive(move || model.devices.with(|l| plugged_in(l, DeviceKind::Microphone)))
            intent=Intent::ToggleMic
            testid="mic"
            device="microphone"
            on_label="🎙 Mic on"
            off_label="🔇 Mic off"
            shortcut="M"
        />
    }
}

#[component]
pub fn CameraSwitch() -> impl IntoView {
    let model = expect_context::<CallModel>();
    view! {
        <DeviceSwitch
            wanted=model.camera.into()
            available=model.has_camera.into()
            plugged=Signal::derive(move || model.devices.with(|l| plugged_in(l, DeviceKind::Camera)))
            intent=Intent::ToggleCamera
            testid="camera"
            device="camera"
            on_label="📷 Camera on"
            off_label="🚫 Camera off"
            shortcut="V"
        />
    }
}

/// A connection's quality as three bars, the figures on hover or focus.
#[component]
pub fn QualityBadge(
    /// What it measured; `None` while nothing was.
    sample: Signal<Option<LinkSample>>,
    /// Whose connection it is, for the label: "to Bob", "your sending".
    about: Signal<String>,
) -> impl IntoView {
    let quality = move || sample.get().and_then(|s| s.quality());
    let word = move || quality().map(|q| q.word()).unwrap_or("unknown");
    let figures = move || {
        sample
            .get()
            .map(|s| s.figures())
            .unwrap_or_else(|| "Not measured yet".to_owned())
    };
    let label = move || format!("Connection {}: {}. {}", about.get(), word(), figures());
    view! {
        <span
            class="quality"
            data-testid="quality"
            data-quality=word
            tabindex="0"
            role="img"
            title=label
            aria-label=label
        >
            <i></i><i></i><i></i>
        </span>
    }
}

/// Shown while the tile's member is speaking.
#[component]
pub fn SpeakingBadge(speaking: Signal<bool>) -> impl IntoView {
    view! {
        <Show when=move || speaking.get()>
            <span class="badge speaking" data-testid="speaking" aria-label="Speaking">"🔊"</span>
        </Show>
    }
}
