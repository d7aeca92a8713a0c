use conclave_call::notice;
use conclave_e2ee::RoomSecret;
use conclave_protocol::RoomId;
use leptos::prelude::*;

use super::in_call::InCall;
use super::lobby::Lobby;
use super::model::{CallModel, Phase};
use crate::web::session;
use crate::web::{frame_worker, link};

/// `/r/<room>`: checks the link, then shows the lobby, the call, or why neither can be had.
/// `room` is `None` when the path's room part is not a room id.
#[component]
pub fn CallPage(room: Option<RoomId>) -> impl IntoView {
    // Read once, here; the secret goes nowhere but into the call's key schedule.
    let secret = link::secret_from_location();
    match (room, secret) {
        (None, _) => view! { <Problem text=notice::BAD_ROOM/> }.into_any(),
        (_, Err(_)) => view! { <Problem text=notice::BAD_LINK/> }.into_any(),
        _ if !frame_worker::supported() => view! { <Problem text=notice::NO_WEBRTC/> }.into_any(),
        (Some(room), Ok(secret)) => view! { <Call room secret/> }.into_any(),
    }
}

#[component]
fn Call(room: RoomId, secret: RoomSecret) -> impl IntoView {
    let model = CallModel::new();
    provide_context(model);
    // Camera, microphone and the encryption worker start now, while the person reads the lobby.
    provide_context(session::start(model, room, secret));
    Effect::new(move |_| {
        let title = match model.phase.get() {
            Phase::Lobby | Phase::Joining => notice::TITLE_LOBBY.to_owned(),
            Phase::InCall | Phase::KeyMismatch => {
                notice::title_in_call(model.tiles.with(Vec::len) + 1, model.unread.get())
            }
            Phase::Refused(_) | Phase::Failed(_) => notice::TITLE_PROBLEM.to_owned(),
            Phase::Left => notice::TITLE_LEFT.to_owned(),
        };
        crate::web::show_title(&title);
    });

    move || match model.phase.get() {
        Phase::Lobby | Phase::Joining => view! { <Lobby/> }.into_any(),
        Phase::InCall | Phase::KeyMismatch => view! { <InCall/> }.into_any(),
        Phase::Refused(text) | Phase::Failed(text) => view! {
            <Problem text=text retry=true/>
        }
        .into_any(),
        Phase::Left => view! { <LeftCall/> }.into_any(),
    }
}

#[component]
fn Problem(#[prop(into)] text: String, #[prop(optional)] retry: bool) -> impl IntoView {
    view! {
        <section class="card problem" role="alert" data-testid="problem">
            <p>{text}</p>
            <div class="actions">
                {retry.then(|| view! {
                    <button class="primary" on:click=|_| link::reload()>
                        "Try again"
                    </button>
                })}
                <a class="button" href="/">"Start a new call"</a>
            </div>
        </section>
    }
}

#[component]
fn LeftCall() -> impl IntoView {
    view! {
        <section class="card" data-testid="left">
            <h1>"You left the call"</h1>
            <div class="actions">
                <button class="primary" data-testid="rejoin" on:click=|_| link::reload()>
                    "Rejoin"
                </button>
                <a class="button" href="/">"Start a new call"</a>
            </div>
        </section>
    }
}
