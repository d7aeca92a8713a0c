use leptos::prelude::*;

use super::devices::DevicePickers;
use super::model::{CallModel, Phase};
use super::widgets::{CameraSwitch, LocalVideo, MicSwitch, Notices};
use crate::web::session::{Intent, SessionHandle};

/// Preview, name, mic and camera switches, and the Join button.
#[component]
pub fn Lobby() -> impl IntoView {
    let model = expect_context::<CallModel>();
    let session = expect_context::<SessionHandle>();
    let joining = move || model.phase.get() == Phase::Joining;
    let join = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        session.send(Intent::Join);
    };
    view! {
        <section class="lobby">
            <div class="preview">
                <LocalVideo/>
                <div class="switches">
                    <MicSwitch/>
                    <CameraSwitch/>
                </div>
                <DevicePickers/>
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
                    on:input=move |ev| session.send(Intent::Rename(event_target_value(&ev)))
                />
                <button
                    type="submit"
                    class="primary big"
                    data-testid="join"
                    disabled=joining
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
