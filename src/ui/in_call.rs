use conclave_call::notice;
use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen_futures::JsFuture;

use super::lobby::{CameraSwitch, LocalVideo, MicSwitch};
use super::model::{CallModel, Phase, ServerLink};
use super::tile::RemoteTile;
use crate::web::{link, session, window};

/// Problems and confirmations, each dismissable.
#[component]
pub fn Notices() -> impl IntoView {
    let model = expect_context::<CallModel>();
    view! {
        <ul class="notices" aria-live="polite">
            <For each=move || model.notices.get() key=|n| n.id let:n>
                <li class="notice" role="alert" data-testid="notice">
                    <span>{n.text.clone()}</span>
                    <button
                        type="button"
                        class="dismiss"
                        aria-label="Dismiss"
                        on:click=move |_| model.dismiss(&n.text)
                    >
                        "×"
                    </button>
                </li>
            </For>
        </ul>
    }
}

#[component]
pub fn InCall() -> impl IntoView {
    let model = expect_context::<CallModel>();
    let mismatch = move || model.phase.get() == Phase::KeyMismatch;
    let people = move || model.tiles.with(Vec::len) + 1;
    let server = move || match model.server.get() {
        ServerLink::Connected => None,
        ServerLink::Connecting => Some("Connecting…"),
        ServerLink::Reconnecting => Some("Reconnecting…"),
    };
    view! {
        <section class="call">
            <header class="bar">
                <span class="lock" data-testid="e2ee-state" title="Audio, video and call setup are encrypted in your browser with the key in your link.">
                    "🔒 End-to-end encrypted"
                </span>
                <span class="people" data-testid="people">
                    {move || match people() { 1 => "Only you".to_owned(), n => format!("{n} people") }}
                </span>
                {move || server().map(|s| view! { <span class="server" data-testid="server-state">{s}</span> })}
            </header>
            <Show when=mismatch>
                <p class="banner danger" role="alert" data-testid="key-mismatch">{notice::KEY_MISMATCH}</p>
            </Show>
            <Notices/>
            <Show when=move || !mismatch() && people() == 1 && model.server.get() == ServerLink::Connected>
                <p class="banner" data-testid="alone">"You're the only one here. Copy the link and send it to the people you want to talk to."</p>
            </Show>
            <div class="grid" data-count=people>
                <figure class="tile self" data-testid="self-tile">
                    <LocalVideo/>
                    <figcaption>
                        <span class="name">{move || format!("{} (you)", model.name.get())}</span>
                        <Show when=move || !(model.mic.get() && model.has_mic.get())>
                            <span class="badge muted" data-testid="muted">"🔇 Muted"</span>
                        </Show>
                    </figcaption>
                </figure>
                <For each=move || model.tiles.get() key=|t| t.peer.clone() let:tile>
                    <RemoteTile peer=tile.peer/>
                </For>
            </div>
            <footer class="controls">
                <MicSwitch/>
                <CameraSwitch/>
                <CopyLink/>
                <button type="button" class="danger" data-testid="leave" on:click=|_| session::leave()>
                    "Leave"
                </button>
            </footer>
        </section>
    }
}

#[component]
fn CopyLink() -> impl IntoView {
    let model = expect_context::<CallModel>();
    let copy = move |_| {
        let Some(link) = current_link() else { return };
        spawn_local(async move {
            let copied = JsFuture::from(window().navigator().clipboard().write_text(&link)).await;
            match copied {
                Ok(_) => model.notify("Link copied. Anyone with it can join this call, so share it only with the people you want here."),
                Err(_) => model.notify("Couldn't copy automatically. Copy the address from the address bar instead: it is the call link."),
            }
        });
    };
    view! {
        <button type="button" data-testid="copy-link" on:click=copy>
            "🔗 Copy link"
        </button>
    }
}

/// The link of this call as the address bar has it.
fn current_link() -> Option<String> {
    let location = window().location();
    let path = location.pathname().ok()?;
    let room = path.strip_prefix("/r/")?.parse().ok()?;
    let secret = link::secret_from_location().ok()?;
    Some(link::share_link(&room, &secret))
}
