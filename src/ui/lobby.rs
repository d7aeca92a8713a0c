use leptos::html::Video;
use leptos::prelude::*;

use super::in_call::Notices;
use super::model::{CallModel, Phase};
use crate::web::{session, window};

const NAME_KEY: &str = "conclave.name";

fn saved_name() -> String {
    window()
        .local_storage()
        .ok()
        .flatten()
        .and_then(|s| s.get_item(NAME_KEY).ok().flatten())
        .unwrap_or_default()
}

fn save_name(name: &str) {
    // Only the display name is remembered on this device; never anything about the call.
    if let Some(storage) = window().local_storage().ok().flatten() {
        let _ = storage.set_item(NAME_KEY, name);
    }
}

/// Preview, name, mic and camera switches, and the Join button.
#[component]
pub fn Lobby(on_join: impl Fn() + Copy + 'static) -> impl IntoView {
    let model = expect_context::<CallModel>();
    if model.name.get_untracked().is_empty() {
        model.name.set(saved_name());
    }
    let joining = move || model.phase.get() == Phase::Joining;
    let join = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if model.name.get_untracked().trim().is_empty() {
            model.name.set("Guest".to_owned());
        }
        save_name(&model.name.get_untracked());
        on_join();
    };
    view! {
        <section class="lobby">
            <div class="preview">
                <LocalVideo/>
                <div class="switches">
                    <MicSwitch/>
                    <CameraSwitch/>
                </div>
            </div>
            <form class="card join" on:submit=join>
                <h1>"Ready to join?"</h1>
                <Notices/>
                <label for="name">"Your name"</label>
                <input
                    id="name"
                    data-testid="name"
                    maxlength="40"
                    autocomplete="nickname"
                    placeholder="Guest"
                    prop:value=move || model.name.get()
                    on:input=move |ev| model.name.set(event_target_value(&ev))
                />
                <button
                    type="submit"
                    class="primary big"
                    data-testid="join"
                    disabled=move || joining() || !model.media_ready.get()
                >
                    {move || if joining() { "Joining…" } else { "Join call" }}
                </button>
                <Show when=move || !model.media_ready.get()>
                    <p class="fine">"Waiting for the browser to answer about camera and microphone…"</p>
                </Show>
                <p class="fine">
                    "🔒 End-to-end encrypted: your browser encrypts everything before it leaves."
                </p>
            </form>
        </section>
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
            session::play(&el, session::local_stream().as_ref());
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
/// permission to use it).
#[component]
fn DeviceSwitch(
    wanted: RwSignal<bool>,
    available: RwSignal<bool>,
    testid: &'static str,
    device: &'static str,
    on_label: &'static str,
    off_label: &'static str,
) -> impl IntoView {
    let model = expect_context::<CallModel>();
    let on = move || wanted.get() && available.get();
    let toggle = move |_| {
        wanted.update(|w| *w = !*w);
        session::presence_changed(model);
    };
    view! {
        <button
            type="button"
            class="switch"
            class:off=move || !on()
            data-testid=testid
            aria-pressed=move || on().to_string()
            disabled=move || !available.get()
            title=move || if available.get() { device.to_owned() } else { format!("No {device}") }
            on:click=toggle
        >
            {move || if on() { on_label } else { off_label }}
        </button>
    }
}

#[component]
pub fn MicSwitch() -> impl IntoView {
    let model = expect_context::<CallModel>();
    view! {
        <DeviceSwitch
            wanted=model.mic
            available=model.has_mic
            testid="mic"
            device="microphone"
            on_label="🎙 Mic on"
            off_label="🔇 Mic off"
        />
    }
}

#[component]
pub fn CameraSwitch() -> impl IntoView {
    let model = expect_context::<CallModel>();
    view! {
        <DeviceSwitch
            wanted=model.camera
            available=model.has_camera
            testid="camera"
            device="camera"
            on_label="📷 Camera on"
            off_label="🚫 Camera off"
        />
    }
}
