use conclave_call::notice;
use leptos::prelude::*;

use super::chat::{ChatPanel, ChatToggle};
use super::devices::DevicesMenu;
use super::gestures::{HandToggle, Reactions, ReactionsOf};
use super::model::{CallModel, Phase, Safety, ServerLink};
use super::qr::QrPanel;
use super::share::{OwnShare, ShareToggle, Shares};
use super::shortcuts::ShortcutHelp;
use super::tile::RemoteTile;
use super::widgets::{CameraSwitch, LocalVideo, MicSwitch, Notices, QualityBadge, SpeakingBadge};
use crate::web::link;
use crate::web::session::{Intent, SessionHandle};

#[component]
pub fn InCall() -> impl IntoView {
    let model = expect_context::<CallModel>();
    let session = expect_context::<SessionHandle>();
    let mismatch = move || model.phase.get() == Phase::KeyMismatch;
    let people = move || model.tiles.with(Vec::len) + 1;
    let verifiable = move || !mismatch() && people() > 1;
    let server = move || match model.server.get() {
        ServerLink::Connected => None,
        ServerLink::Connecting => Some("Connecting…"),
        ServerLink::Reconnecting => Some("Reconnecting…"),
    };
    view! {
        <section class="call">
            <header class="bar">
                <span class="lock" data-testid="e2ee-state" title="Audio, video and call setup are encrypted in your browser with the key in your link.">
                    "🔒 End-to-end encrypted"
                </span>
                <span class="people" data-testid="people">
                    {move || match people() { 1 => "Only you".to_owned(), n => format!("{n} people") }}
                </span>
                {move || server().map(|s| view! { <span class="server" data-testid="server-state">{s}</span> })}
                <span class="bar-actions">
                    <CopyLink/>
                    <button type="button" data-testid="qr-toggle" on:click=move |_| session.send(Intent::ToggleQr)>
                        "📱 QR code"
                    </button>
                    <button
                        type="button"
                        data-testid="shortcuts-toggle"
                        aria-keyshortcuts="?"
                        aria-label="Keyboard shortcuts"
                        title="Keyboard shortcuts (?)"
                        on:click=move |_| session.send(Intent::ToggleHelp)
                    >
                        "⌨\u{fe0f}"
                    </button>
                </span>
            </header>
            <Show when=verifiable>
                <SafetyCheck/>
            </Show>
            <Show when=mismatch>
                <p class="banner danger" role="alert" data-testid="key-mismatch">{notice::KEY_MISMATCH}</p>
            </Show>
            <Notices/>
            <Show when=move || !mismatch() && people() == 1 && model.server.get() == ServerLink::Connected>
                <p class="banner" data-testid="alone">"You're the only one here. Copy the link and send it to the people you want to talk to."</p>
            </Show>
            <p class="sr-only" aria-live="polite" data-testid="announcement">{move || model.announcement.get()}</p>
            <div class="stage" class:with-chat=move || model.chat_open.get()>
                <div class="main" class:with-share=move || model.sharing.get() || model.shares.with(|s| !s.is_empty())>
                <Show when=move || model.sharing.get()>
                    <OwnShare/>
                </Show>
                <Shares/>
                <div
                    class="grid"
                    class:spotlight=move || model.focus().is_some()
                    data-count=people
                >
                    <figure class="tile self" class:speaking=move || model.speaking.get() data-testid="self-tile">
                        <LocalVideo/>
                        <ReactionsOf peer=None/>
                        <figcaption>
                            <SpeakingBadge speaking=model.speaking.into()/>
                            <span class="name">{move || format!("{} (you)", model.name.get())}</span>
                            <Show when=move || !(model.mic.get() && model.has_mic.get())>
                                <span class="badge muted" data-testid="muted">"🔇 Muted"</span>
                            </Show>
                            <Show when=move || model.hand.get()>
                                <span class="badge hand">"✋ Hand raised"</span>
                            </Show>
                            <Show when=move || { people() > 1 }>
                                <QualityBadge
                                    sample=model.uplink.into()
                                    about=Signal::derive(|| "of what you send".to_owned())
                                />
                            </Show>
                        </figcaption>
                    </figure>
                    <For each=move || model.tiles.get() key=|t| t.peer.clone() let:tile>
                        <RemoteTile peer=tile.peer/>
                    </For>
                </div>
                <AboutEncryption/>
                </div>
                <Show when=move || model.chat_open.get()>
                    <ChatPanel/>
                </Show>
            </div>
            <ShortcutHelp/>
            <QrPanel/>
            <MutedTalkReminder/>
            <footer class="controls">
                <MicSwitch/>
                <CameraSwitch/>
                <ShareToggle/>
                <HandToggle/>
                <Reactions/>
                <ChatToggle/>
                <DevicesMenu/>
                <button type="button" class="danger" data-testid="leave" on:click=move |_| session.send(Intent::Leave)>
                    "Leave"
                </button>
            </footer>
        </section>
    }
}

/// Above the controls while we talk with the microphone off: that nobody hears us, and the
/// switch to fix it right there.
#[component]
fn MutedTalkReminder() -> impl IntoView {
    let model = expect_context::<CallModel>();
    let session = expect_context::<SessionHandle>();
    view! {
        <Show when=move || model.muted_talk.get()>
            <p class="muted-talk" role="status" data-testid="muted-talk">
                <span>{notice::MUTED_TALK}</span>
                <button
                    type="button"
                    class="primary"
                    data-testid="muted-talk-unmute"
                    aria-keyshortcuts="m"
                    on:click=move |_| session.send(Intent::ToggleMic)
                >
                    "🎤 Turn it on"
                </button>
                <button
                    type="button"
                    aria-label="Close"
                    data-testid="muted-talk-close"
                    on:click=move |_| session.send(Intent::WaveAwayMutedTalk)
                >
                    "✕"
                </button>
            </p>
        </Show>
    }
}

/// The safety words, how to use them, and what to do when they differ.
#[component]
fn SafetyCheck() -> impl IntoView {
    let model = expect_context::<CallModel>();
    let differ = RwSignal::new(false);
    let words = move || match model.safety.get() {
        Safety::Words(symbols) => Some(symbols),
        _ => None,
    };
    let spoken = move || {
        words()
            .map(|symbols| {
                symbols
                    .iter()
                    .map(|(_, word)| *word)
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default()
    };
    let session = expect_context::<SessionHandle>();
    let start_over = move |_| {
        session.send(Intent::Leave);
        // A new room and a new key: whoever sits in between had this link, not the next one.
        link::open_new_call();
    };
    view! {
        <div class="safety" data-testid="safety-check">
            {move || match model.safety.get() {
                Safety::None => None,
                Safety::Checking => Some(view! {
                    <span class="checking" data-testid="safety-checking">{notice::CHECKING_MEMBERS}</span>
                }.into_any()),
                Safety::Problem(text) => Some(view! {
                    <p class="problem" role="alert" data-testid="safety-problem">{text}</p>
                }.into_any()),
                Safety::Words(symbols) => Some(view! {
                    <ol
                        class="words"
                        class:no-emoji=move || !model.emoji_render.get()
                        data-testid="safety-words"
                        data-words=spoken
                        aria-label=move || format!("Safety words: {}", spoken())
                    >
                        {symbols.into_iter().map(|(emoji, word)| view! {
                            <li>
                                <span class="emoji" aria-hidden="true">{emoji}</span>
                                <span class="word">{word}</span>
                            </li>
                        }).collect_view()}
                    </ol>
                    <span class="hint">{notice::SAFETY_HINT}</span>
                    <button type="button" class="link" data-testid="words-differ" on:click=move |_| differ.update(|d| *d = !*d)>
                        "Our words differ"
                    </button>
                }.into_any()),
            }}
            <Show when=move || differ.get() && words().is_some()>
                <div class="differ" role="alert" data-testid="differ-explained">
                    <p>{notice::WORDS_DIFFER}</p>
                    <div class="actions">
                        <button type="button" class="danger" data-testid="start-over" on:click=start_over>
                            "Leave and start a new call"
                        </button>
                        <button type="button" on:click=move |_| differ.set(false)>"They're the same after all"</button>
                    </div>
                </div>
            </Show>
        </div>
    }
}

/// What the encryption does and does not protect, in plain words.
#[component]
fn AboutEncryption() -> impl IntoView {
    let model = expect_context::<CallModel>();
    view! {
        <details class="about" data-testid="about-encryption">
            <summary>"About encryption"</summary>
            <p>
                "Your voice and video are encrypted in this browser before they leave it, and only the people in this call can decrypt them. Each person has their own key, which is handed to the others directly, encrypted again for each of them."
            </p>
            <p>
                "Our server connects you. It sees that a call with this link's room name exists, when people join and leave, their internet addresses and how much data they send. It cannot see or hear the call, read names or chat, or learn the keys: those never reach it."
            </p>
            <p>
                "When someone joins, they cannot decrypt what was said before. When someone leaves, everyone switches to new keys within a few seconds, so they cannot decrypt what follows."
            </p>
            <p>
                "The safety words come from everyone's keys, and each person commits to theirs before seeing anyone else's, so nobody can pick keys that happen to give the same words. If the words match for all of you, nobody has slipped in between you; if they differ, someone has, and you should leave and start a new call."
            </p>
            <p>
                "What encryption cannot do: anyone who has the link can join, so share it only with the people you want here. And you trust this website to give your browser honest code."
            </p>
            <p class="backend">
                "Frame encryption in this browser: "
                <span data-testid="frame-cipher">{move || model.cipher.get()}</span>
            </p>
        </details>
    }
}

#[component]
fn CopyLink() -> impl IntoView {
    let session = expect_context::<SessionHandle>();
    view! {
        <button type="button" data-testid="copy-link" on:click=move |_| session.send(Intent::CopyLink)>
            "🔗 Copy link"
        </button>
    }
}
