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
mod share;
pub mod shortcuts;
mod tile;
mod widgets;

use leptos::prelude::*;
use leptos_router::components::{Route, Router, Routes};
use leptos_router::path;

pub fn mount() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(App);
}

#[component]
fn App() -> impl IntoView {
    view! {
        <Router>
            <Routes fallback=|| view! { <NotFound/> }>
                <Route path=path!("/") view=home::Home/>
                <Route path=path!("/r/:room") view=call_page::CallPage/>
            </Routes>
        </Router>
    }
}

#[component]
fn NotFound() -> impl IntoView {
    view! {
        <section class="card">
            <h1>"Nothing here"</h1>
            <p>"This page does not exist. Call links look like " <code>"/r/…#…"</code> "."</p>
            <a class="button" href="/">"Start a new call"</a>
        </section>
    }
}
