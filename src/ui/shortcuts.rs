//! Keyboard shortcuts: one list, for the keys and for the help that shows them.

use leptos::prelude::*;

use super::model::CallModel;
use crate::web::session::{Intent, SessionHandle};

/// (key, what it does, the intent).
const SHORTCUTS: &[(&str, &str, Intent)] = &[
    ("m", "Turn the microphone on or off", Intent::ToggleMic),
    ("v", "Turn the camera on or off", Intent::ToggleCamera),
    (
        "s",
        "Share your screen, or stop sharing",
        Intent::ToggleShare,
    ),
    ("c", "Open or close the chat", Intent::ToggleChat),
    ("h", "Raise or lower your hand", Intent::ToggleHand),
    ("?", "Show or hide these shortcuts", Intent::ToggleHelp),
    ("Escape", "Close what is open", Intent::Close),
];

/// The intent of a key pressed on the page, if it is a shortcut.
pub fn intent_for(key: &str) -> Option<Intent> {
    SHORTCUTS
        .iter()
        .find(|(k, _, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, _, intent)| intent.clone())
}

/// The list of shortcuts, as a dialog.
#[component]
pub fn ShortcutHelp() -> impl IntoView {
    let model = expect_context::<CallModel>();
    let session = expect_context::<SessionHandle>();
    view! {
        <Show when=move || model.help_open.get()>
            <div class="help" role="dialog" aria-modal="false" aria-labelledby="help-title" data-testid="shortcuts">
                <h2 id="help-title">"Keyboard shortcuts"</h2>
                <dl>
                    {SHORTCUTS.iter().map(|(key, what, _)| view! {
                        <dt><kbd>{if *key == "Escape" { "Esc" } else { key }}</kbd></dt>
                        <dd>{*what}</dd>
                    }).collect_view()}
                    <dt><kbd>"Space"</kbd></dt>
                    <dd>"Hold to talk while your microphone is off"</dd>
                </dl>
                <button type="button" on:click=move |_| session.send(Intent::ToggleHelp)>"Close"</button>
            </div>
        </Show>
    }
}
