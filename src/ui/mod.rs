//! The screens, as Leptos components. They read [`model::CallModel`] and send intents to the
//! session (`web::session::SessionHandle`); nothing here touches WebRTC, keys or any other
//! browser API.

mod call_page;
mod chat;
mod devices;
mod gestures;
mod home;
mod in_call;
mod lobby;
pub mod model;
pub mod qr;
mod share;
pub mod shortcuts;
mod tile;
mod widgets;

use conclave_protocol::{Page, RoomId};
use leptos::prelude::*;

use crate::web::link;

pub fn mount() {
    console_error_panic_hook::set_once();
    crate::web::app_started();
    leptos::mount::mount_to_body(App);
}

/// The page the path names, chosen once: every move between pages is a full load.
#[component]
fn App() -> impl IntoView {
    let path = link::path();
    match Page::from_path(&path) {
        Some(Page::Home) => view! { <home::Home/> }.into_any(),
        Some(Page::Room(room)) => {
            let room = RoomId::new(room).ok();
            view! { <call_page::CallPage room/> }.into_any()
        }
        None => view! { <NotFound/> }.into_any(),
    }
}

#[component]
fn NotFound() -> impl IntoView {
    view! {
        <section class="card" data-testid="not-found">
            <h1>"Nothing here"</h1>
            <p>"This page does not exist. Call links look like " <code>"/r/…#…"</code> "."</p>
            <a class="button" href="/">"Start a new call"</a>
        </section>
    }
}
