use conclave_call::reach::Reach;
use conclave_call::{MediaState, notice};
use leptos::html::Video;
use leptos::prelude::*;

use super::gestures::ReactionsOf;
use super::model::CallModel;
use super::widgets::initials;
use crate::web::media;

/// One remote member: their video (and sound), name, mute state and encryption state.
#[component]
pub fn RemoteTile(peer: String) -> impl IntoView {
    let model = expect_context::<CallModel>();
    let id = peer.clone();
    let peer_id = peer.clone();
    let tile = Memo::new(move |_| {
        model
            .tiles
            .with(|ts| ts.iter().find(|t| t.peer == id).cloned())
    });
    let video = NodeRef::<Video>::new();
    {
        let peer = peer.clone();
        Effect::new(move |_| {
            let rev = tile.with(|t| t.as_ref().map(|t| t.stream_rev));
            if let (Some(el), Some(_)) = (video.get(), rev) {
                media::play(&el, model.stream(&peer).as_ref());
            }
        });
    }
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
        <figure class="tile" data-testid="tile" data-peer=peer data-state=move || state().0>
            <ReactionsOf peer=Some(peer_id.clone())/>
            <div class="video-box" class:off=camera_off>
                <video node_ref=video autoplay playsinline></video>
                <div class="avatar">{move || initials(&field(|t| t.name.clone()))}</div>
            </div>
            <figcaption>
                <span class="name" data-testid="tile-name">{move || field(|t| t.name.clone())}</span>
                <Show when=muted>
                    <span class="badge muted" data-testid="muted">"🔇 Muted"</span>
                </Show>
                <Show when=move || tile.with(|t| t.as_ref().is_some_and(|t| t.hand))>
                    <span class="badge hand" data-testid="hand-raised">"✋ Hand raised"</span>
                </Show>
                <span class="badge state" data-testid="tile-state">{move || state().1}</span>
            </figcaption>
            {move || problem().map(|text| view! {
                <p class="tile-problem" role="status" data-testid="tile-problem">{text}</p>
            })}
        </figure>
    }
}
