//! Raising a hand and reacting: what people do instead of interrupting.

use conclave_protocol::peer::REACTIONS;
use leptos::prelude::*;

use super::model::CallModel;
use super::widgets::icon_label;
use crate::web::session::{Intent, SessionHandle};

#[component]
pub fn HandToggle() -> impl IntoView {
    let model = expect_context::<CallModel>();
    let session = expect_context::<SessionHandle>();
    view! {
        <button
            type="button"
            data-testid="raise-hand"
            aria-pressed=move || model.hand.get().to_string()
            aria-keyshortcuts="H"
            on:click=move |_| session.send(Intent::ToggleHand)
        >
            {move || icon_label(if model.hand.get() { "✋ Lower hand" } else { "✋ Raise hand" })}
        </button>
    }
}

/// The reactions, behind one button so the controls fit one row; each shows on our tile
/// and everyone else's screen for a moment.
#[component]
pub fn Reactions() -> impl IntoView {
    let session = expect_context::<SessionHandle>();
    view! {
        <details class="popover reactions-menu">
            <summary data-testid="reactions-menu">{icon_label("😊 React")}</summary>
            <div class="menu reactions" role="group" aria-label="Reactions">
            {REACTIONS.iter().map(|emoji| view! {
                <button
                    type="button"
                    class="reaction"
                    data-testid="react"
                    aria-label=format!("React with {emoji}")
                    on:click=move |_| session.send(Intent::React((*emoji).to_owned()))
                >
                    {*emoji}
                </button>
            }).collect_view()}
            </div>
        </details>
    }
}

/// The reactions of one member (`None`: ours) that are on screen now.
#[component]
pub fn ReactionsOf(peer: Option<String>) -> impl IntoView {
    let model = expect_context::<CallModel>();
    let shown = move || {
        model.reactions.with(|r| {
            r.iter()
                .filter(|x| x.peer == peer)
                .map(|x| (x.id, x.emoji.clone()))
                .collect::<Vec<_>>()
        })
    };
    view! {
        <div class="floating" aria-hidden="true">
            <For each=shown key=|(id, _)| *id let:item>
                <span class="float" data-testid="reaction">{item.1}</span>
            </For>
        </div>
    }
}
