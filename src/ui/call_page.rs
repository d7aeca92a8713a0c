use conclave_call::notice;
use conclave_e2ee::RoomSecret;
use conclave_protocol::RoomId;
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::hooks::use_params_map;
use wasm_bindgen::prelude::*;

use super::in_call::InCall;
use super::lobby::Lobby;
use super::model::{CallModel, Phase};
use crate::web::{frame_worker, link, session, window};

/// `/r/:room`: checks the link, then shows the lobby, the call, or why neither can be had.
#[component]
pub fn CallPage() -> impl IntoView {
    let room = use_params_map()
        .read_untracked()
        .get("room")
        .and_then(|r| RoomId::new(r).ok());
    // Read once, here; the secret goes nowhere but into the call's key schedule.
    let secret = link::secret_from_location();
    match (room, secret) {
        (None, _) | (_, Err(_)) => view! { <Problem text=notice::BAD_LINK/> }.into_any(),
        _ if !frame_worker::supported() => view! { <Problem text=notice::NO_WEBRTC/> }.into_any(),
        (Some(room), Ok(secret)) => view! { <Call room secret/> }.into_any(),
    }
}

#[component]
fn Call(room: RoomId, secret: RoomSecret) -> impl IntoView {
    let model = CallModel::new();
    provide_context(model);
    let credentials = StoredValue::new((room, secret));
    spawn_local(session::open_local_media(model));
    // Warm up encryption while the person looks at their preview.
    spawn_local(async {
        let _ = session::start_worker().await;
    });

    // Closing the tab leaves at once, so the others' grids update in a moment, not on a timeout.
    let on_page_hide = Closure::<dyn FnMut()>::new(session::leave);
    let _ = window()
        .add_event_listener_with_callback("pagehide", on_page_hide.as_ref().unchecked_ref());
    on_page_hide.forget();
    on_cleanup(session::leave);

    let join = move || {
        model.phase.set(Phase::Joining);
        let (room, secret) = credentials.get_value();
        spawn_local(async move {
            if let Err(err) = session::join(model, room, secret).await {
                model.phase.set(Phase::Failed(format!(
                    "Could not start end-to-end encryption ({err}), so nothing was sent. Reload the page to try again."
                )));
            }
        });
    };

    move || match model.phase.get() {
        Phase::Lobby | Phase::Joining => view! { <Lobby on_join=join/> }.into_any(),
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
                    <button class="primary" on:click=|_| { let _ = window().location().reload(); }>
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
                <button class="primary" data-testid="rejoin" on:click=|_| { let _ = window().location().reload(); }>
                    "Rejoin"
                </button>
                <a class="button" href="/">"Start a new call"</a>
            </div>
        </section>
    }
}
