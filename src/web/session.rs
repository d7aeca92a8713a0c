//! The call page's one owner. A [`Session`] holds the `conclave_call::Call`, the socket, the
//! peer connections, the frame worker and the camera, and nothing else touches them: browser
//! callbacks and the person's intents arrive as [`Input`]s in one queue, handled one at a
//! time, in order. Only the session writes the screen's model.

mod devices;
mod input;
mod sfu;
mod view;

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;

use litemap::LiteMap;

use conclave_call::cues::{self, Cue};
use conclave_call::devices::{Device, DeviceKind};
use conclave_call::muted_talk::MutedTalk;
use conclave_call::quality::LinkSample;
use conclave_call::reach::LinkState;
use conclave_call::topology::Route;
use conclave_call::{Call, CallStatus, Event, ServerLink, notice};
use conclave_e2ee::RoomSecret;
use conclave_protocol::peer::PeerMessage;
use conclave_protocol::signaling::{ClientMessage, ErrorCode, ServerMessage};
use conclave_protocol::{PeerId, RoomId};
use gloo_timers::callback::Interval;
use leptos::prelude::*;
use wasm_bindgen_futures::spawn_local;
use web_sys::{MediaStream, RtcPeerConnectionState};

pub use input::{Inbox, Input, Intent, PeerEvent};

use super::chime::{Chime, Sound};
use super::frame_worker::FrameWorker;
use super::level::MicMeter;
use super::media::{self, Acquired};
use super::peer::PeerLink;
use super::signaling::Signaling;
use super::{clipboard, drop_later, emoji, events, keys, link, network, now_ms, storage};
use crate::ui::model::{CallModel, Phase};
use crate::ui::qr::Qr;
use conclave_bridge::{PeerStats, ToWorker};

/// How often the call's clock ticks: key switches, retries, heartbeats, liveness.
const TICK_MS: u32 = 200;

/// How long the server may be unreachable before the person is told more than "reconnecting".
const SERVER_QUIET_MS: u64 = 20_000;

/// How long a reaction stays on screen.
const REACTION_MS: u64 = 4_000;

/// How often the microphone meter moves.
const METER_MS: u32 = 100;

/// How often each connection is asked what it measures (voice levels, quality).
const SAMPLE_MS: u64 = 500;

/// How often tiles show new quality figures.
const QUALITY_MS: u64 = 1_000;

/// What the screen holds to reach the session: intents go in, nothing comes out but through
/// the model. A handle into the page's reactive arena, so components can copy it around; it
/// lives as long as the call page.
#[derive(Clone, Copy)]
pub struct SessionHandle(StoredValue<Rc<Actor>, LocalStorage>);

pub(crate) struct Actor {
    queue: RefCell<VecDeque<Input>>,
    draining: Cell<bool>,
    session: RefCell<Session>,
}

impl Actor {
    /// Queues `input` and, unless an input is being handled right now (this one was posted
    /// from inside it), handles the queue to the end.
    fn post(&self, input: Input) {
        self.queue.borrow_mut().push_back(input);
        if self.draining.replace(true) {
            return;
        }
        loop {
            let next = self.queue.borrow_mut().pop_front();
            let Some(input) = next else { break };
            self.session.borrow_mut().on(input);
        }
        self.draining.set(false);
    }
}

impl SessionHandle {
    pub fn send(&self, intent: Intent) {
        self.0
            .try_with_value(|actor| actor.post(Input::Intent(intent)));
    }
}

/// Starts the call page's session: asks for camera and microphone and starts the frame worker
/// at once, so both are ready by the time the person has typed their name.
pub fn start(model: CallModel, room: RoomId, secret: RoomSecret) -> SessionHandle {
    let actor = Rc::new_cyclic(|weak| Actor {
        queue: RefCell::new(VecDeque::new()),
        draining: Cell::new(false),
        session: RefCell::new(Session {
            model,
            inbox: Inbox(weak.clone()),
            link: link::share_link(&room, &secret),
            room,
            secret: Some(secret),
            local: MediaStream::new().expect("MediaStream constructor"),
            worker: None,
            worker_problem: None,
            worker_backlog: Vec::new(),
            peers_waiting: LiteMap::new(),
            join_requested: false,
            call: None,
            signaling: None,
            sfu_link: None,
            sfu: None,
            sfu_waiting: None,
            sfu_trouble: None,
            sfu_layers: Default::default(),
            sfu_sampled_ms: 0,
            peers: LiteMap::new(),
            stream_revs: LiteMap::new(),
            ticker: None,
            server_down_since: None,
            left: false,
            _listeners: Vec::new(),
            names: LiteMap::new(),
            sharing: None,
            next_reaction: 0,
            reactions_until: VecDeque::new(),
            devices: Vec::new(),
            meter: None,
            meter_ticker: None,
            muted_talk: MutedTalk::default(),
            talk_held: false,
            chime: None,
            cue: None,
            track_ends: Vec::new(),
            uplinks: LiteMap::new(),
            last_sample_ms: 0,
            last_quality_ms: 0,
        }),
    });
    if model.name.get_untracked().is_empty() {
        model.name.set(storage::saved_name());
    }
    model.emoji_render.set(emoji::render());
    let inbox = Inbox(Rc::downgrade(&actor));
    {
        let inbox = inbox.clone();
        let mic = storage::saved_device(DeviceKind::Microphone);
        let camera = storage::saved_device(DeviceKind::Camera);
        spawn_local(async move {
            let acquired = media::acquire(mic.as_deref(), camera.as_deref()).await;
            inbox.post(Input::Media(acquired));
        });
    }
    {
        let inbox = inbox.clone();
        spawn_local(async move {
            let stats = inbox.clone();
            let worker = FrameWorker::start(move |s| stats.post(Input::Stats(s))).await;
            inbox.post(Input::Worker(worker));
        });
    }
    let mut listeners = network::listen(
        {
            let inbox = inbox.clone();
            move || inbox.post(Input::Network)
        },
        // Closing the tab leaves at once, so the others' grids follow in a moment.
        {
            let inbox = inbox.clone();
            move || inbox.post(Input::Intent(Intent::Leave))
        },
    );
    listeners.extend(super::devices::watch({
        let inbox = inbox.clone();
        move || inbox.post(Input::DevicesChanged)
    }));
    listeners.extend(keys::listen({
        let inbox = inbox.clone();
        move |key| match crate::ui::shortcuts::intent_for(key) {
            Some(intent) => {
                inbox.post(Input::Intent(intent));
                true
            }
            None => false,
        }
    }));
    listeners.extend(keys::hold_space({
        let inbox = inbox.clone();
        move |held| inbox.post(Input::Intent(Intent::HoldToTalk(held)))
    }));
    listeners.extend(super::layout::on_visibility({
        let inbox = inbox.clone();
        move || inbox.post(Input::Visibility)
    }));
    actor.session.borrow_mut()._listeners = listeners;
    // The server connection opens while the lobby shows (TLS and the WebSocket upgrade are
    // round trips a person would otherwise wait for after clicking Join); nothing is said on
    // it before Join.
    actor.session.borrow_mut().connect();
    let handle = SessionHandle(StoredValue::new_local(actor));
    // Leaving the call page (the app navigating elsewhere) leaves the call.
    on_cleanup(move || handle.send(Intent::Leave));
    handle
}

pub(crate) struct Session {
    model: CallModel,
    inbox: Inbox,
    room: RoomId,
    /// Until it moves into the call.
    secret: Option<RoomSecret>,
    link: String,
    /// Camera and microphone; empty until (and unless) the browser gives them.
    local: MediaStream,
    worker: Option<Rc<FrameWorker>>,
    worker_problem: Option<String>,
    /// What the call handed the worker before it was up, in order.
    worker_backlog: Vec<ToWorker>,
    /// Members whose connection waits for the worker, with what they said to negotiate it
    /// meanwhile (their offer, their candidates), in order.
    peers_waiting: LiteMap<PeerId, Vec<PeerMessage>>,
    join_requested: bool,
    call: Option<Call>,
    signaling: Option<Signaling>,
    /// A large call's way to the SFU, and what to say there.
    sfu_link: Option<Rc<super::sfu::SfuLink>>,
    sfu: Option<conclave_call::sfu::Sfu>,
    /// Access to the SFU that came before the frame worker: used once it is there (url,
    /// token, Janus room).
    sfu_waiting: Option<(String, String, u64)>,
    /// What the page says went wrong with the SFU, until it is back.
    sfu_trouble: Option<&'static str>,
    /// The simulcast layer our downlink takes, and when it was last measured.
    sfu_layers: conclave_call::layers::Layers,
    sfu_sampled_ms: u64,
    peers: LiteMap<PeerId, Rc<PeerLink>>,
    /// Bumped when a member's incoming tracks change, so its tile re-attaches them.
    stream_revs: LiteMap<PeerId, u32>,
    ticker: Option<Interval>,
    server_down_since: Option<u64>,
    left: bool,
    _listeners: Vec<events::Listener>,
    /// Everyone's name as last shown, to say who left once the call has forgotten them.
    names: LiteMap<PeerId, String>,
    /// Our screen share, while we share one, and what tells us the browser stopped it.
    sharing: Option<(MediaStream, events::Listener)>,
    next_reaction: u64,
    reactions_until: VecDeque<(u64, u64)>,
    /// The devices as last listed.
    devices: Vec<Device>,
    meter: Option<MicMeter>,
    meter_ticker: Option<Interval>,
    muted_talk: MutedTalk,
    /// The microphone is on only while Space is held.
    talk_held: bool,
    /// The speaker's test chime while it sounds.
    chime: Option<Chime>,
    /// The sound of someone coming, going or raising a hand while it sounds.
    cue: Option<Chime>,
    /// What tells us our camera or microphone stopped by itself.
    track_ends: Vec<events::Listener>,
    /// How our sending to each member fares.
    uplinks: LiteMap<PeerId, LinkSample>,
    last_sample_ms: u64,
    last_quality_ms: u64,
}

impl Session {
    fn on(&mut self, input: Input) {
        if self.left {
            if let Input::Media(acquired) = input {
                media::stop(&acquired.stream);
            }
            return;
        }
        match input {
            Input::Intent(intent) => self.on_intent(intent),
            Input::Media(acquired) => self.on_media(acquired),
            Input::Worker(Ok(worker)) => {
                self.model.cipher.set(worker.backend().to_owned());
                for msg in self.worker_backlog.drain(..) {
                    worker.post(&msg);
                }
                self.worker = Some(worker);
                self.join_if_ready();
                for (peer, said) in std::mem::take(&mut self.peers_waiting) {
                    self.open_peer(peer.clone());
                    if let Some(link) = self.peers.get(&peer) {
                        for msg in said {
                            link.deliver(msg);
                        }
                    }
                }
                self.sfu_access_waiting();
            }
            Input::Worker(Err(problem)) => {
                self.worker_problem = Some(problem);
                // Asked to join, or joined already: no call goes on without encryption.
                if self.join_requested {
                    self.fail_without_encryption();
                }
            }
            Input::Stats(stats) => self.on_stats(stats),
            Input::SocketOpen => {
                if let Some(join) = self.call.as_ref().map(Call::join) {
                    self.send(&join);
                }
            }
            Input::Server(msg) => self.on_server(msg),
            Input::SocketClosed { was_open } => self.on_socket_closed(was_open),
            Input::Peer(peer, event) => self.on_peer(peer, event),
            Input::Display(Ok(stream)) => self.start_share(stream),
            Input::Display(Err(why)) => self.model.notify(notice::share_error(&why)),
            Input::ShareEnded => self.stop_share(),
            Input::ChimeDone => {
                if let Some(chime) = self.chime.take() {
                    drop_later(chime);
                }
                self.model.chime.set(false);
            }
            Input::CueDone => {
                if let Some(cue) = self.cue.take() {
                    drop_later(cue);
                }
            }
            Input::Copied(true) => self.model.notify(notice::LINK_COPIED),
            Input::Copied(false) => self.model.notify(notice::LINK_NOT_COPIED),
            Input::Visibility => self.sfu_layers_now(),
            Input::Network => {
                if let Some(call) = self.call.as_mut() {
                    let events = call.network_changed(now_ms());
                    self.run(events);
                }
            }
            Input::Devices(list) => self.on_devices(list),
            Input::DevicesChanged => self.list_devices(),
            Input::Opened(kind, Ok(track)) => self.use_track(kind, track),
            Input::Opened(kind, Err(why)) => {
                self.model.notify(notice::device_not_switched(kind, &why));
                self.show_devices_in_use();
            }
            Input::TurnedOn(kind, Ok(track)) => self.use_track(kind, track),
            Input::TurnedOn(kind, Err(why)) => {
                self.model.notify(notice::device_not_turned_on(kind, &why));
            }
            Input::TrackEnded(kind) => self.on_track_ended(kind),
            Input::Replace {
                kind,
                lost,
                devices,
            } => self.replace_device(kind, &lost, devices),
            Input::Meter => self.read_meter(),
            Input::Sampled(peer, report) => self.on_sample(peer, report),
            Input::Sfu(input) => self.on_sfu(input),
            Input::Tick => {
                if let Some(call) = self.call.as_mut() {
                    let events = call.tick(now_ms());
                    self.run(events);
                }
                self.sfu_tick();
                self.tell_if_server_stays_away();
                self.expire_reactions();
                self.sample_links();
            }
        }
    }

    fn on_intent(&mut self, intent: Intent) {
        // Every intent comes from a click or a key: the moment a browser lets sound start.
        self.wake_meter();
        match intent {
            Intent::Rename(name) => {
                self.model.name.set(name);
                self.presence_changed();
            }
            // Without such a device once the browser has answered for camera and microphone
            // (before, the switch only says what to send once they open).
            Intent::ToggleMic if self.lacks(DeviceKind::Microphone) => {
                self.model.mic.set(true);
                self.turn_on(DeviceKind::Microphone);
            }
            Intent::ToggleCamera if self.lacks(DeviceKind::Camera) => {
                self.model.camera.set(true);
                self.turn_on(DeviceKind::Camera);
            }
            Intent::ToggleMic => {
                // A switch pressed while Space is held is the person's choice from then on.
                self.talk_held = false;
                self.model.mic.update(|on| *on = !*on);
                self.presence_changed();
            }
            Intent::HoldToTalk(true) => {
                let in_call = self.model.phase.get_untracked() == Phase::InCall;
                if in_call
                    && !self.talk_held
                    && !self.model.mic.get_untracked()
                    && self.model.has_mic.get_untracked()
                {
                    self.talk_held = true;
                    self.model.mic.set(true);
                    self.presence_changed();
                }
            }
            Intent::HoldToTalk(false) => {
                if self.talk_held {
                    self.talk_held = false;
                    self.model.mic.set(false);
                    self.presence_changed();
                }
            }
            Intent::ToggleCamera => {
                self.model.camera.update(|on| *on = !*on);
                self.presence_changed();
            }
            Intent::Join => {
                if self.model.phase.get_untracked() != Phase::Lobby {
                    return;
                }
                if self.model.name.get_untracked().trim().is_empty() {
                    self.model.name.set("Guest".to_owned());
                }
                storage::save_name(&self.model.name.get_untracked());
                self.model.phase.set(Phase::Joining);
                self.join_requested = true;
                self.join_if_ready();
            }
            Intent::Leave => self.leave(),
            Intent::TestSpeaker if self.chime.is_none() => {
                match self.play(Sound::Test, Input::ChimeDone) {
                    Ok(chime) => {
                        self.chime = Some(chime);
                        self.model.chime.set(true);
                    }
                    Err(_) => self.model.notify(notice::TEST_SOUND_FAILED),
                }
            }
            Intent::TestSpeaker => {}
            Intent::WaveAwayMutedTalk => {
                self.muted_talk.wave_away();
                self.model.muted_talk.set(false);
            }
            Intent::CopyLink => {
                let (link, inbox) = (self.link.clone(), self.inbox.clone());
                spawn_local(async move { inbox.post(Input::Copied(clipboard::copy(&link).await)) });
            }
            Intent::Dismiss(text) => self.model.dismiss(&text),
            Intent::SendChat(text) => {
                let Some(call) = self.call.as_mut() else {
                    return;
                };
                match call.send_chat(&text, now_ms()) {
                    Ok(events) => {
                        self.model.chat_problem.set(None);
                        self.run(events);
                    }
                    Err(why) => self.model.chat_problem.set(notice::chat_refused(why)),
                }
            }
            Intent::ToggleChat => {
                let open = !self.model.chat_open.get_untracked();
                self.model.chat_open.set(open);
                if open {
                    self.model.unread.set(0);
                }
            }
            Intent::ToggleHand => {
                if let Some(call) = self.call.as_mut() {
                    let raised = !call.hand_raised();
                    let events = call.set_hand(raised);
                    self.run(events);
                }
            }
            Intent::ToggleShare => {
                if self.sharing.is_some() {
                    self.stop_share();
                } else if self.call.is_some() {
                    let inbox = self.inbox.clone();
                    spawn_local(async move { inbox.post(Input::Display(media::display().await)) });
                }
            }
            Intent::React(emoji) => {
                if let Some(call) = self.call.as_mut() {
                    let events = call.react(&emoji);
                    self.run(events);
                }
            }
            Intent::Choose(kind, id) => self.choose(kind, id),
            Intent::Pin(peer) => self.model.pinned.set(peer),
            Intent::ToggleHelp => self.model.help_open.update(|open| *open = !*open),
            Intent::ToggleQr => {
                let shown = self.model.qr.get_untracked().is_some();
                self.model
                    .qr
                    .set(if shown { None } else { Qr::of(&self.link) });
            }
            Intent::Close => {
                if self.model.qr.get_untracked().is_some() {
                    self.model.qr.set(None);
                } else if self.model.help_open.get_untracked() {
                    self.model.help_open.set(false);
                } else if self.model.chat_open.get_untracked() {
                    self.model.chat_open.set(false);
                }
            }
        }
    }

    fn on_media(&mut self, acquired: Acquired) {
        if let Some(problem) = &acquired.problem {
            self.model.notify(problem.clone());
        }
        self.model.has_mic.set(acquired.audio().is_some());
        self.model.has_camera.set(acquired.video().is_some());
        media::stop(&self.local);
        self.local = acquired.stream;
        self.apply_switches();
        self.model.local.set_value(Some(Clone::clone(&self.local)));
        self.model.local_rev.update(|r| *r += 1);
        self.model.media_ready.set(true);
        self.watch_tracks();
        self.start_meter();
        self.list_devices();
        // Joined before the browser opened them: the call has been going without them.
        self.send_local();
        self.presence_changed();
    }

    /// Our camera and microphone onto every connection that lacks them, and onto the SFU's
    /// publisher.
    pub(super) fn send_local(&self) {
        for link in self.peers.values() {
            if let Err(err) = link.send(&self.local) {
                web_sys::console::error_2(&"could not send on a connection".into(), &err);
                self.model.notify(notice::MEDIA_NOT_SENT);
            }
        }
        if let Some(link) = &self.sfu_link {
            link.send(&self.local);
        }
    }

    /// Makes the local tracks follow the mic and camera switches.
    fn apply_switches(&self) {
        media::set_enabled(
            &self.local,
            self.model.mic.get_untracked(),
            self.model.camera.get_untracked(),
        );
    }

    fn presence_changed(&mut self) {
        self.apply_switches();
        let (name, mic, camera) = self.presence();
        if let Some(call) = self.call.as_mut() {
            let events = call.set_presence(&name, mic, camera);
            self.run(events);
        }
    }

    fn presence(&self) -> (String, bool, bool) {
        let m = &self.model;
        (
            m.name.get_untracked(),
            m.mic.get_untracked() && m.has_mic.get_untracked(),
            m.camera.get_untracked() && m.has_camera.get_untracked(),
        )
    }

    /// Joins once the person asked to, unless encryption could not start. A frame worker
    /// still loading does not hold the join up: the round that agrees keys runs meanwhile,
    /// what the call hands the worker waits for it, and so does every connection (we never
    /// send media without it).
    fn join_if_ready(&mut self) {
        if !self.join_requested || self.call.is_some() {
            return;
        }
        if self.worker_problem.is_some() {
            self.fail_without_encryption();
            return;
        }
        let Some(secret) = self.secret.take() else {
            return;
        };
        let (name, mic, camera) = self.presence();
        let call = Call::new(self.room.clone(), secret, &name, mic, camera);
        let join = call.join();
        self.call = Some(call);
        let inbox = self.inbox.clone();
        self.ticker = Some(Interval::new(TICK_MS, move || inbox.post(Input::Tick)));
        // The socket opened while the lobby showed: join on it now. Still opening: its open
        // sends the join. Gone (the server closes an idle one after a while): open another.
        match &self.signaling {
            Some(signaling) if signaling.is_open() => self.send(&join),
            Some(_) => {}
            None => self.connect(),
        }
    }

    /// The frame worker could not start: nothing was or will be sent (no connection opens
    /// without it), so the call is left, camera and microphone are let go, and the person is
    /// told why.
    fn fail_without_encryption(&mut self) {
        let problem = self.worker_problem.clone().unwrap_or_default();
        if self.call.take().is_some() {
            self.send(&ClientMessage::Leave);
        }
        self.stop();
        media::stop(&self.local);
        // Nothing more happens on this page: a camera that opens later is let go at once.
        self.left = true;
        self.model.phase.set(Phase::Failed(format!(
            "Could not start end-to-end encryption ({problem}), so nothing was sent. Reload the page to try again."
        )));
    }

    fn connect(&mut self) {
        let opened = self.inbox.clone();
        let message = self.inbox.clone();
        let closed = self.inbox.clone();
        match Signaling::connect(
            move || opened.post(Input::SocketOpen),
            move |msg| message.post(Input::Server(msg)),
            move |was_open| closed.post(Input::SocketClosed { was_open }),
        ) {
            Ok(signaling) => {
                if let Some(old) = self.signaling.replace(signaling) {
                    drop_later(old);
                }
            }
            Err(_) => self.inbox.post(Input::SocketClosed { was_open: false }),
        }
    }

    fn send(&self, msg: &ClientMessage) {
        if let Some(signaling) = &self.signaling {
            signaling.send(msg);
        }
    }

    fn on_server(&mut self, msg: ServerMessage) {
        if let ServerMessage::Error {
            code, fatal: false, ..
        } = &msg
        {
            web_sys::console::warn_1(&format!("server refused a message: {code:?}").into());
        }
        let Some(call) = self.call.as_mut() else {
            return;
        };
        let events = call.handle(msg, now_ms());
        self.run(events);
    }

    fn on_socket_closed(&mut self, _was_open: bool) {
        // We are (most likely) inside the socket's own close handler.
        if let Some(old) = self.signaling.take() {
            drop_later(old);
        }
        if let Some(call) = self.call.as_mut() {
            let events = call.socket_closed(now_ms());
            self.run(events);
        }
    }

    fn on_peer(&mut self, peer: PeerId, event: PeerEvent) {
        match event {
            PeerEvent::Send(msg) => self.send_to(&peer, msg),
            PeerEvent::Tracks => {
                *self.stream_revs.entry(peer).or_default() += 1;
                self.refresh_tiles();
            }
            PeerEvent::State(state) => {
                let state = match state {
                    RtcPeerConnectionState::Connected => LinkState::Connected,
                    RtcPeerConnectionState::Disconnected => LinkState::Disconnected,
                    RtcPeerConnectionState::Failed => LinkState::Failed,
                    RtcPeerConnectionState::New | RtcPeerConnectionState::Connecting => {
                        LinkState::Connecting
                    }
                    // Closed only by us, when the member left or we did.
                    _ => return,
                };
                if let Some(call) = self.call.as_mut() {
                    let events = call.link_report(&peer, state, now_ms());
                    self.run(events);
                }
            }
        }
    }

    fn send_to(&mut self, to: &PeerId, msg: PeerMessage) {
        if let Some(sealed) = self.call.as_mut().and_then(|c| c.seal(to, msg)) {
            self.send(&sealed);
        }
    }

    fn on_stats(&mut self, stats: Vec<PeerStats>) {
        let Some(call) = self.call.as_mut() else {
            return;
        };
        let now = now_ms();
        let mut changed = false;
        let mut events = Vec::new();
        for s in stats {
            if let Ok(peer) = PeerId::new(s.peer) {
                let (tile, more) =
                    call.media_report(&peer, now, s.decrypted, s.failed, s.missing_key);
                changed |= tile;
                events.extend(more);
            }
        }
        self.run(events);
        if changed {
            self.refresh_tiles();
        }
    }

    fn run(&mut self, events: Vec<Event>) {
        for event in events {
            match event {
                Event::Send(msg) => self.send(&msg),
                Event::Connect => self.connect(),
                Event::OpenConnection(peer) => self.open_peer(peer),
                Event::MemberReady(peer) => {
                    self.open_peer(peer);
                    self.refresh_tiles();
                }
                Event::UseSendKey { key_id, key } => self.post_worker(&ToWorker::SendKey {
                    key_id,
                    key: key.as_bytes().to_vec(),
                }),
                Event::ReceiveKeys { peer, keys } => {
                    let msg = ToWorker::ReceiveKeys {
                        peer: peer.to_string(),
                        keys: keys
                            .iter()
                            .map(|(kid, key)| (*kid, key.as_bytes().to_vec()))
                            .collect(),
                    };
                    self.post_keys(msg);
                    self.refresh_tiles();
                }
                Event::RequestKeyFrame => self.post_worker(&ToWorker::KeyFrame),
                Event::MemberUpdated(_) => self.refresh_tiles(),
                Event::MemberLeft(peer) => {
                    self.uplinks.remove(&peer);
                    if let Some(link) = &self.sfu_link {
                        link.forget(&peer);
                    }
                    self.close_peer(&peer);
                    self.refresh_tiles();
                }
                Event::Negotiate { peer, msg } => {
                    if let Some(link) = self.peers.get(&peer) {
                        link.deliver(msg);
                    } else if let Some(said) = self.peers_waiting.get_mut(&peer) {
                        said.push(msg);
                    }
                }
                Event::RestartIce(peer) => {
                    if let Some(link) = self.peers.get(&peer) {
                        link.restart_ice();
                    }
                }
                Event::StatusChanged => self.on_status(),
                Event::StartedOver { paused_ms } => {
                    web_sys::console::warn_1(
                        &format!("this page was paused for {paused_ms} ms: joining again").into(),
                    );
                    self.model.notify(notice::REJOINED_AFTER_PAUSE);
                }
                Event::VerificationChanged => self.refresh_safety(),
                Event::ServerLinkChanged => self.refresh_server_link(),
                Event::Chat { from } => {
                    if let Some(call) = self.call.as_ref() {
                        view::show_chat(&self.model, call);
                    }
                    if from.is_some() && !self.model.chat_open.get_untracked() {
                        self.model.unread.update(|n| *n += 1);
                    }
                }
                Event::Hand { from: None, raised } => self.model.hand.set(raised),
                Event::Hand {
                    from: Some(peer),
                    raised,
                } => {
                    if let Some(name) = self.names.get(&peer) {
                        self.model.announcement.set(notice::hand(name, raised));
                    }
                    if raised {
                        self.sound(Cue::Hand);
                    }
                    self.refresh_tiles();
                }
                Event::Reaction { from, emoji } => self.show_reaction(from, emoji),
                Event::Speaking => self.refresh_tiles(),
                Event::UseSfu => self.use_sfu(),
                Event::SfuAccess { url, token, room } => self.sfu_access(url, token, room),
                Event::SfuUnavailable => self
                    .model
                    .notify(notice::server_error(ErrorCode::SfuUnavailable)),
                Event::SfuFeeds => self.sfu_feeds(),
            }
        }
    }

    fn start_share(&mut self, stream: MediaStream) {
        let Some(track) = media::video_track(&stream) else {
            return;
        };
        if self.call.is_none() || self.sharing.is_some() {
            media::stop(&stream);
            return;
        }
        let inbox = self.inbox.clone();
        let ended = events::on(Clone::clone(&track).into(), "ended", move || {
            inbox.post(Input::ShareEnded)
        });
        for link in self.peers.values() {
            if let Err(err) = link.start_share(&track, &stream) {
                web_sys::console::error_2(&"could not share on a connection".into(), &err);
            }
        }
        if let Some(link) = &self.sfu_link {
            link.share(Some(&track));
        }
        self.model.own_share.set_value(Some(Clone::clone(&stream)));
        self.model.sharing.set(true);
        let id = stream.id();
        self.sharing = Some((stream, ended));
        if let Some(call) = self.call.as_mut() {
            let events = call.set_share(Some(id));
            self.run(events);
        }
    }

    fn stop_share(&mut self) {
        let Some((stream, ended)) = self.sharing.take() else {
            return;
        };
        drop_later(ended);
        for link in self.peers.values() {
            link.stop_share();
        }
        if let Some(link) = &self.sfu_link {
            link.share(None);
        }
        media::stop(&stream);
        self.model.own_share.set_value(None);
        self.model.sharing.set(false);
        if let Some(call) = self.call.as_mut() {
            let events = call.set_share(None);
            self.run(events);
        }
    }

    /// A reaction on the sender's tile (or ours) for a few seconds.
    fn show_reaction(&mut self, from: Option<PeerId>, emoji: String) {
        self.next_reaction += 1;
        let id = self.next_reaction;
        self.reactions_until.push_back((id, now_ms() + REACTION_MS));
        self.model.reactions.update(|r| {
            r.push(crate::ui::model::Reaction {
                id,
                peer: from.map(|p| p.to_string()),
                emoji,
            })
        });
    }

    fn expire_reactions(&mut self) {
        let now = now_ms();
        while let Some(&(id, until)) = self.reactions_until.front() {
            if until > now {
                break;
            }
            self.reactions_until.pop_front();
            self.model.reactions.update(|r| r.retain(|x| x.id != id));
        }
    }

    /// To the frame worker, or, while it loads, to the backlog it gets first.
    fn post_worker(&mut self, msg: &ToWorker) {
        match &self.worker {
            Some(worker) => worker.post(msg),
            None => self.worker_backlog.push(msg.clone()),
        }
    }

    /// A member's keys to the worker; the test build's `?debug=late-keys=MS` holds them back.
    fn post_keys(&mut self, msg: ToWorker) {
        #[cfg(feature = "test-hooks")]
        if let (Some(ms), Some(worker)) = (super::debug::late_keys_ms(), self.worker.clone()) {
            // Equal delays keep the keys in order.
            gloo_timers::callback::Timeout::new(ms, move || worker.post(&msg)).forget();
            return;
        }
        self.post_worker(&msg);
    }

    fn on_status(&mut self) {
        let Some(status) = self.call.as_ref().map(|c| c.status().clone()) else {
            return;
        };
        match status {
            CallStatus::Joining => {}
            CallStatus::InCall => {
                self.model.dismiss(notice::KEY_MISMATCH);
                self.model.phase.set(Phase::InCall);
            }
            CallStatus::KeyMismatch => self.model.phase.set(Phase::KeyMismatch),
            CallStatus::Refused(code) => {
                self.stop();
                self.model
                    .phase
                    .set(Phase::Refused(notice::server_error(code).to_owned()));
            }
        }
    }

    /// Opens a connection to `peer` unless one is open or the call goes through the SFU.
    fn open_peer(&mut self, peer: PeerId) {
        if self.peers.contains_key(&peer)
            || self.call.as_ref().map(Call::route) != Some(Route::Mesh)
        {
            return;
        }
        let Some((me, ice_servers)) = self
            .call
            .as_ref()
            .and_then(|c| Some((c.me()?.clone(), c.ice_servers().to_vec())))
        else {
            return;
        };
        let Some(worker) = self.worker.clone() else {
            self.peers_waiting.entry(peer).or_default();
            return;
        };
        match PeerLink::open(
            &me,
            peer.clone(),
            &self.local,
            &ice_servers,
            worker,
            self.inbox.clone(),
        ) {
            Ok(link) => {
                if let Some((stream, _)) = &self.sharing
                    && let Some(track) = media::video_track(stream)
                    && let Err(err) = link.start_share(&track, stream)
                {
                    web_sys::console::error_2(&"could not share on a connection".into(), &err);
                }
                self.peers.insert(peer, link);
            }
            Err(err) => {
                web_sys::console::error_2(&"could not open a peer connection".into(), &err);
                self.model.notify(notice::PEER_CONNECTION_FAILED);
            }
        }
    }

    fn close_peer(&mut self, peer: &PeerId) {
        self.peers_waiting.remove(peer);
        if let Some(link) = self.peers.remove(peer) {
            link.close();
            drop_later(link);
            self.post_worker(&ToWorker::ForgetPeer {
                peer: peer.to_string(),
            });
        }
        self.stream_revs.remove(peer);
        self.model.streams.update_value(|s| {
            s.remove(peer.as_str());
        });
    }

    /// Ends everything this page started for the call: connections, socket, clock.
    fn stop(&mut self) {
        self.stop_devices();
        if let Some((stream, ended)) = self.sharing.take() {
            drop_later(ended);
            media::stop(&stream);
        }
        for peer in self.peers.keys().cloned().collect::<Vec<_>>() {
            self.close_peer(&peer);
        }
        self.close_sfu();
        if let Some(old) = self.signaling.take() {
            drop_later(old);
        }
        if let Some(old) = self.ticker.take() {
            drop_later(old);
        }
        self.model.tiles.set(Vec::new());
        self.model.safety.set(Default::default());
    }

    /// Leaves on purpose (the button, or the tab closing): say so to the server first, so the
    /// others' grids follow at once.
    fn leave(&mut self) {
        if self.call.take().is_some() {
            self.send(&ClientMessage::Leave);
        }
        self.stop();
        media::stop(&self.local);
        self.model.local.set_value(None);
        self.left = true;
        self.model.phase.set(Phase::Left);
    }

    /// After [`SERVER_QUIET_MS`] without the server, the person hears why nobody new can join.
    fn tell_if_server_stays_away(&mut self) {
        let Some(since) = self.server_down_since else {
            return;
        };
        if now_ms().saturating_sub(since) >= SERVER_QUIET_MS {
            self.model.notify(notice::SERVER_UNREACHABLE);
        }
    }

    fn refresh_server_link(&mut self) {
        let Some(link) = self.call.as_ref().map(Call::server_link) else {
            return;
        };
        self.model.server.set(link);
        if link == ServerLink::Connected {
            self.server_down_since = None;
            self.model.dismiss(notice::SERVER_UNREACHABLE);
        } else if self.server_down_since.is_none() {
            self.server_down_since = Some(now_ms());
        }
    }

    fn refresh_tiles(&mut self) {
        let Some(call) = self.call.as_ref() else {
            return;
        };
        let tiles = call.tiles();
        for (peer, link) in &self.peers {
            let share = tiles
                .iter()
                .find(|t| t.peer == *peer)
                .and_then(|t| t.share.clone());
            link.set_share_id(share);
            self.model.streams.update_value(|s| {
                s.insert(peer.to_string(), Clone::clone(link.remote_stream()));
            });
            self.model.share_streams.update_value(|s| {
                s.insert(peer.to_string(), Clone::clone(link.remote_share()));
            });
        }
        if let Some(link) = &self.sfu_link {
            for peer in link.members() {
                if let Some(stream) = link.remote_stream(&peer) {
                    self.model.streams.update_value(|s| {
                        s.insert(peer.to_string(), stream);
                    });
                }
                if let Some(share) = link.remote_share(&peer) {
                    self.model.share_streams.update_value(|s| {
                        s.insert(peer.to_string(), share);
                    });
                }
            }
        }
        view::show_tiles(&self.model, call, &self.stream_revs);
        // Who came and who went since the last look, for a screen reader.
        // Inserted one by one: `collect` would compile a sort for the map's type (see
        // `conclave_call::set`).
        let mut now: LiteMap<PeerId, String> = LiteMap::new();
        for tile in call.tiles() {
            now.insert(tile.peer, tile.name);
        }
        let mut said = Vec::new();
        let (mut came, mut went) = (0, 0);
        for (peer, name) in &now {
            if !self.names.contains_key(peer) {
                said.push(notice::joined(name));
                // Those in the call before us appear as we join: not news to sound.
                came += usize::from(call.member(peer).is_some_and(|m| !m.was_here_first));
            }
        }
        for (peer, name) in &self.names {
            if !now.contains_key(peer) {
                said.push(notice::left(name));
                went += 1;
            }
        }
        if !said.is_empty() {
            self.model.announcement.set(said.join(" "));
        }
        let in_call = self.model.phase.get_untracked() == Phase::InCall;
        let cue = cues::cue(came, went, self.names.len() + 1, now.len() + 1);
        self.names = now;
        if let Some(cue) = cue.filter(|_| in_call) {
            self.sound(cue);
        }
    }

    /// Sounds `cue` on the chosen speaker, in place of one still sounding.
    fn sound(&mut self, cue: Cue) {
        if let Some(earlier) = self.cue.take() {
            drop_later(earlier);
        }
        // A cue that cannot sound is no problem to report: the tiles show who came and went.
        self.cue = self.play(Sound::Cue(cue), Input::CueDone).ok();
    }

    /// Starts `sound` on the chosen speaker; `done` comes to the inbox once it has sounded.
    fn play(&self, sound: Sound, done: Input) -> Result<Chime, wasm_bindgen::JsValue> {
        let speaker = self.model.speaker_id.get_untracked().unwrap_or_default();
        let inbox = self.inbox.clone();
        Chime::play(sound, &speaker, move || inbox.post(done))
    }

    fn refresh_safety(&mut self) {
        if let Some(call) = self.call.as_ref() {
            view::show_safety(&self.model, call);
        }
    }
}
