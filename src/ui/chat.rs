//! The chat panel and its button: end-to-end encrypted like everything else, plain text only,
//! kept in this tab alone.

use conclave_call::conversation::{Piece, pieces};
use conclave_protocol::peer::MAX_CHAT_CHARS;
use leptos::html::{Ol, Textarea};
use leptos::prelude::*;

use super::model::CallModel;
use super::widgets::icon_label;
use crate::web::layout;
use crate::web::session::{Intent, SessionHandle};

/// Opens and closes the panel; shows how many lines came while it was closed.
#[component]
pub fn ChatToggle() -> impl IntoView {
    let model = expect_context::<CallModel>();
    let session = expect_context::<SessionHandle>();
    let label = move || match model.unread.get() {
        0 => "Chat".to_owned(),
        n => format!("Chat, {n} unread"),
    };
    view! {
        <button
            type="button"
            data-testid="chat-toggle"
            aria-pressed=move || model.chat_open.get().to_string()
            aria-label=label
            aria-keyshortcuts="C"
            on:click=move |_| session.send(Intent::ToggleChat)
        >
            {icon_label("💬 Chat")}
            <Show when=move || { model.unread.get() > 0 }>
                <span class="count" data-testid="chat-unread">{move || model.unread.get()}</span>
            </Show>
        </button>
    }
}

#[component]
pub fn ChatPanel() -> impl IntoView {
    let model = expect_context::<CallModel>();
    let session = expect_context::<SessionHandle>();
    let input = NodeRef::<Textarea>::new();
    let draft = RwSignal::new(String::new());
    let send = move || {
        let text = draft.get_untracked();
        if text.trim().is_empty() {
            return;
        }
        session.send(Intent::SendChat(text));
        // Sent, or refused with words below; a refused draft stays for the person to shorten.
        if model.chat_problem.get_untracked().is_none() {
            draft.set(String::new());
        }
    };
    let too_long = move || draft.with(|d| d.chars().count() > MAX_CHAT_CHARS);
    // A new line shows where the person reads the newest ones, or wrote it; one scrolled back to
    // read earlier lines stays where it is.
    let list = NodeRef::<Ol>::new();
    let at_end = StoredValue::new(true);
    Effect::new(move |_| {
        let mine = model.chat.with(|c| c.last().is_some_and(|l| l.mine));
        if let Some(el) = list.get()
            && (at_end.get_value() || mine)
        {
            layout::scroll_to_end(&el);
        }
    });
    let scrolled = move |_| {
        if let Some(el) = list.get_untracked() {
            at_end.set_value(layout::shows_end(&el));
        }
    };
    view! {
        <aside class="chat" aria-label="Chat" data-testid="chat-panel">
            <header>
                <h2>"Chat"</h2>
                <p class="fine">"Encrypted end to end, like the call. Nothing is kept once you close this tab."</p>
            </header>
            <ol node_ref=list class="lines" aria-live="polite" data-testid="chat-lines" on:scroll=scrolled>
                <For each=move || model.chat.get() key=|l| l.id let:line>
                    <li class="line" class:mine=line.mine data-testid="chat-message">
                        <span class="who">{line.name.clone()}</span>
                        <time>{line.time.clone()}</time>
                        // Text, never markup: whatever someone sends is shown as the characters it
                        // is, web addresses made links (opened apart from this page, told nothing
                        // of where they were clicked).
                        <p class="text">
                            {pieces(&line.text).into_iter().map(|piece| match piece {
                                Piece::Text(text) => text.to_owned().into_any(),
                                Piece::Link(url) => view! {
                                    <a href=url.to_owned() target="_blank" rel="noopener noreferrer">{url.to_owned()}</a>
                                }.into_any(),
                            }).collect_view()}
                        </p>
                    </li>
                </For>
            </ol>
            <form class="compose" on:submit=move |ev| { ev.prevent_default(); send(); }>
                <textarea
                    node_ref=input
                    data-testid="chat-input"
                    rows="2"
                    aria-label="Message"
                    placeholder="Message everyone"
                    prop:value=move || draft.get()
                    on:input=move |ev| draft.set(event_target_value(&ev))
                    on:keydown=move |ev: leptos::ev::KeyboardEvent| {
                        if ev.key() == "Enter" && !ev.shift_key() {
                            ev.prevent_default();
                            send();
                        }
                    }
                ></textarea>
                <button type="submit" class="primary" data-testid="chat-send">"Send"</button>
            </form>
            <Show when=too_long>
                <p class="problem" role="alert">
                    {move || format!("{} of {MAX_CHAT_CHARS} characters: too long to send.", draft.with(|d| d.chars().count()))}
                </p>
            </Show>
            {move || model.chat_problem.get().map(|text| view! {
                <p class="problem" role="alert" data-testid="chat-problem">{text}</p>
            })}
        </aside>
    }
}
