//! Screen shares: others' shown large with the sharer's name, ours as a note with a way to stop.

use conclave_call::{MediaState, notice};
use leptos::html::{Figure, Video};
use leptos::prelude::*;

use super::model::CallModel;
use super::widgets::{FullscreenButton, icon_label};
use crate::web::media;
use crate::web::session::{Intent, SessionHandle};

#[component]
pub fn ShareToggle() -> impl IntoView {
    let model = expect_context::<CallModel>();
    let session = expect_context::<SessionHandle>();
    view! {
        <button
            type="button"
            data-testid="share-screen"
            aria-pressed=move || model.sharing.get().to_string()
            aria-keyshortcuts="S"
            on:click=move |_| session.send(Intent::ToggleShare)
        >
            {move || icon_label(if model.sharing.get() { "🖥 Stop sharing" } else { "🖥 Share screen" })}
        </button>
    }
}

/// "You are sharing", with the button that stops it: the browser's own bar may be far away.
#[component]
pub fn OwnShare() -> impl IntoView {
    let session = expect_context::<SessionHandle>();
    view! {
        <p class="banner sharing" role="status" data-testid="own-share">
            {notice::SHARING}
            " "
            <button type="button" on:click=move |_| session.send(Intent::ToggleShare)>"Stop sharing"</button>
        </p>
    }
}

/// Everyone else's shares, large, above the grid.
#[component]
pub fn Shares() -> impl IntoView {
    let model = expect_context::<CallModel>();
    view! {
        <For each=move || model.shares.get() key=|s| s.peer.clone() let:share>
            <ShareView peer=share.peer/>
        </For>
    }
}

#[component]
fn ShareView(peer: String) -> impl IntoView {
    let model = expect_context::<CallModel>();
    let id = peer.clone();
    let share = Memo::new(move |_| {
        model
            .shares
            .with(|s| s.iter().find(|x| x.peer == id).cloned())
    });
    let video = NodeRef::<Video>::new();
    let figure = NodeRef::<Figure>::new();
    {
        let peer = peer.clone();
        // Only when its tracks change: assigning the stream again restarts the video.
        let rev = Memo::new(move |_| share.with(|s| s.as_ref().map(|s| s.stream_rev)));
        Effect::new(move |_| {
            if let (Some(el), Some(_)) = (video.get(), rev.get()) {
                let stream = model.share_streams.with_value(|s| s.get(&peer).cloned());
                media::play(&el, stream.as_ref());
            }
        });
    }
    let name = move || share.with(|s| s.as_ref().map(|s| s.name.clone()).unwrap_or_default());
    let state = move || {
        share.with(|s| match s.as_ref().map(|s| s.media) {
            Some(MediaState::CantDecrypt) => "cant-decrypt",
            Some(MediaState::Encrypted) => "encrypted",
            _ => "waiting",
        })
    };
    view! {
        <figure node_ref=figure class="share" data-testid="share" data-peer=peer data-state=state>
            // Muted: a share carries no sound of its own here; the sharer's voice comes with their tile.
            <video node_ref=video autoplay playsinline prop:muted=true></video>
            <figcaption>
                <span class="name">{move || format!("{}'s screen", name())}</span>
                <Show when=move || state() == "cant-decrypt">
                    <span class="badge state">"⚠ Can't decrypt"</span>
                </Show>
                <FullscreenButton of=figure testid="share-fullscreen"/>
            </figcaption>
        </figure>
    }
}
