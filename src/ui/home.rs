use leptos::prelude::*;

use crate::web::link;

#[component]
pub fn Home() -> impl IntoView {
    let start = move |_| {
        link::open_new_call();
    };
    view! {
        <section class="home">
            <h1 class="logo">"Conclave"</h1>
            <p class="tagline">"Video calls that only the people in them can see and hear."</p>
            <button class="primary big" data-testid="new-call" on:click=start>
                "New call"
            </button>
            <ul class="points">
                <li>"Share the link; whoever opens it is in the call. Nothing to install."</li>
                <li>
                    "Every sound and picture is encrypted in your browser before it leaves. "
                    "The key is in the link after the " <code>"#"</code>
                    ", which browsers never send to our server."
                </li>
                <li>"Up to eight people per call."</li>
            </ul>
        </section>
    }
}
