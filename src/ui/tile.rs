use conclave_call::reach::Reach;
use conclave_call::{MediaState, notice};
use leptos::html::{Figure, Video};
use leptos::prelude::*;

use super::gestures::ReactionsOf;
use super::model::CallModel;
use super::widgets::{FullscreenButton, QualityBadge, SpeakingBadge, initials};
use crate::web::session::{Intent, SessionHandle};
use crate::web::{devices, media};

/// One remote member: their video (and sound), name, mute state and encryption state.
#[component]
pub fn RemoteTile(peer: String) -> impl IntoView {
    let model = expect_context::<CallModel>();
    let session = expect_context::<SessionHandle>();
    let id = peer.clone();
    let peer_id = peer.clone();
    let focus_id = peer.clone();
    let tile = Memo::new(move |_| {
        model
            .tiles
            .with(|ts| ts.iter().find(|t| t.peer == id).cloned())
    });
    let video = NodeRef::<Video>::new();
    {
        let peer = peer.clone();
        // Only when its tracks change: assigning the stream again restarts the video, and
        // the tile changes every second (quality, speaking).
        let rev = Memo::new(move |_| tile.with(|t| t.as_ref().map(|t| t.stream_rev)));
        Effect::new(move |_| {
            if let (Some(el), Some(_)) = (video.get(), rev.get()) {
                media::play(&el, model.stream(&peer).as_ref());
            }
        });
    }
    // Sound plays on the chosen speaker.
    Effect::new(move |_| {
        let speaker = model.speaker_id.get();
        if let (Some(el), Some(id)) = (video.get(), speaker) {
            devices::play_on(&el, &id);
        }
    });
    let figure = NodeRef::<Figure>::new();
    let pinned = {
        let peer = peer.clone();
        Memo::new(move |_| model.pinned.with(|p| p.as_deref() == Some(peer.as_str())))
    };
    let pin = {
        let peer = peer.clone();
        move |_| session.send(Intent::Pin((!pinned.get_untracked()).then(|| peer.clone())))
    };
    let speaking = Signal::derive(move || tile.with(|t| t.as_ref().is_some_and(|t| t.speaking)));
    let quality = Signal::derive(move || tile.with(|t| t.as_ref().and_then(|t| t.quality)));
    let about = Signal::derive(move || {
        format!(
            "to {}",
            tile.with(|t| t.as_ref().map(|t| t.name.clone()).unwrap_or_default())
        )
    });
    let field = move |f: fn(&super::model::Tile) -> String| {
        tile.with(|t| t.as_ref().map(f).unwrap_or_default())
    };
    let state = move || {
        tile.with(|t| {
            let Some(t) = t else {
                return ("", String::new());
            };
            // A broken path outranks whatever the media did before it broke.
            match t.reach {
                Reach::Unreachable(_) => return ("unreachable", "⚠ Can't connect".to_owned()),
                Reach::Retrying => return ("retrying", notice::RETRYING_PATH.to_owned()),
                Reach::Reconnecting => {
                    return ("reconnecting", notice::RECONNECTING_PATH.to_owned());
                }
                Reach::Connecting | Reach::Connected => {}
            }
            match t.media {
                MediaState::Encrypted => ("encrypted", "🔒 Encrypted".to_owned()),
                MediaState::CantDecrypt => (
                    "cant-decrypt",
                    "⚠ Can't decrypt: this person's call key doesn't match yours".to_owned(),
                ),
                MediaState::Waiting if !t.mic && !t.camera => {
                    ("waiting", "Camera and mic off".to_owned())
                }
                MediaState::Waiting if t.reach == Reach::Connected => {
                    ("waiting", "Waiting for media…".to_owned())
                }
                MediaState::Waiting => ("connecting", "Connecting…".to_owned()),
            }
        })
    };
    // Until frames decrypt, show who it is rather than a black rectangle.
    let camera_off = move || {
        tile.with(|t| {
            t.as_ref()
                .is_some_and(|t| !t.camera || !t.has_key || t.media != MediaState::Encrypted)
        })
    };
    let muted = move || tile.with(|t| t.as_ref().is_some_and(|t| !t.mic));
    let problem = move || {
        tile.with(|t| match t.as_ref().map(|t| (t.reach, &t.name)) {
            Some((Reach::Unreachable(why), name)) => Some(notice::unreachable(why, name)),
            _ => None,
        })
    };
    view! {
        <figure
            class="tile"
            class:speaking=speaking
            class:focus=move || model.focus().as_deref() == Some(focus_id.as_str())
            node_ref=figure
            data-testid="tile"
            data-peer=peer
            data-state=move || state().0
        >
            <ReactionsOf peer=Some(peer_id.clone())/>
            <div class="tile-actions">
                <button
                    type="button"
                    data-testid="pin"
                    aria-pressed=move || pinned.get().to_string()
                    aria-label=move || if pinned.get() { "Unpin" } else { "Pin to the big place" }
                    title=move || if pinned.get() { "Unpin" } else { "Pin" }
                    on:click=pin
                >
                    {move || if pinned.get() { "📍" } else { "📌" }}
                </button>
                <FullscreenButton of=figure testid="fullscreen"/>
            </div>
            <div class="video-box" class:off=camera_off>
                <video node_ref=video autoplay playsinline></video>
                <div class="avatar">{move || initials(&field(|t| t.name.clone()))}</div>
            </div>
            <figcaption>
                <SpeakingBadge speaking=speaking/>
                <span class="name" data-testid="tile-name">{move || field(|t| t.name.clone())}</span>
                <Show when=muted>
                    <span class="badge muted" data-testid="muted">"🔇 Muted"</span>
                </Show>
                <Show when=move || tile.with(|t| t.as_ref().is_some_and(|t| t.hand))>
                    <span class="badge hand" data-testid="hand-raised">"✋ Hand raised"</span>
                </Show>
                <span class="badge state" data-testid="tile-state">{move || state().1}</span>
                <QualityBadge sample=quality about=about/>
            </figcaption>
            {move || problem().map(|text| view! {
                <p class="tile-problem" role="status" data-testid="tile-problem">{text}</p>
            })}
        </figure>
    }
}
