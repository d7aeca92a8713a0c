//! A call in progress on this page: the `conclave_call::Call` state machine wired to the
//! WebSocket, the peer connections, the frame worker and the screen's model.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;

use conclave_call::reach::LinkState;
use conclave_call::{Call, CallStatus, Event, Verification, notice};
use conclave_e2ee::RoomSecret;
use conclave_protocol::peer::PeerMessage;
use conclave_protocol::signaling::{ClientMessage, PING_INTERVAL_SECS, ServerMessage};
use conclave_protocol::{PeerId, RoomId};
use futures::FutureExt as _;
use futures::future::{LocalBoxFuture, Shared};
use gloo_timers::callback::{Interval, Timeout};
use leptos::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{MediaStream, MediaStreamTrack, RtcPeerConnectionState};

use super::frame_worker::FrameWorker;
use super::peer::{PeerHooks, PeerLink};
use super::signaling::Signaling;
use super::{media, now_ms};
use crate::bridge::{PeerStats, ToWorker};
use crate::ui::model::{CallModel, Phase, Safety, ServerLink, Tile};

type WorkerStart = Shared<LocalBoxFuture<'static, Result<Rc<FrameWorker>, String>>>;

thread_local! {
    static CURRENT: RefCell<Option<Rc<Session>>> = const { RefCell::new(None) };
    /// The frame worker, started while the lobby is up so that joining need not wait for it.
    static WORKER: RefCell<Option<WorkerStart>> = const { RefCell::new(None) };
    /// The camera and microphone, from the lobby on.
    static LOCAL: RefCell<Option<MediaStream>> = const { RefCell::new(None) };
}

const TICK_MS: u32 = 200;

pub struct Session {
    model: CallModel,
    call: RefCell<Call>,
    worker: Rc<FrameWorker>,
    local: MediaStream,
    signaling: RefCell<Option<Signaling>>,
    peers: RefCell<BTreeMap<PeerId, Rc<PeerLink>>>,
    stream_revs: RefCell<BTreeMap<PeerId, u32>>,
    hooks: Rc<PeerHooks>,
    leaving: Cell<bool>,
    reconnects: Cell<u32>,
    timers: RefCell<Vec<Interval>>,
    reconnect_timer: RefCell<Option<Timeout>>,
}

fn current() -> Option<Rc<Session>> {
    CURRENT.with_borrow(Clone::clone)
}

/// The camera/microphone stream, if the lobby got one.
pub fn local_stream() -> Option<MediaStream> {
    LOCAL.with_borrow(Clone::clone)
}

/// Asks for camera and microphone for the lobby preview, and says what did not work.
pub async fn open_local_media(model: CallModel) {
    let acquired = media::acquire(true, true).await;
    if let Some(problem) = &acquired.problem {
        model.notify(problem.clone());
    }
    model.has_mic.set(acquired.audio().is_some());
    model.has_camera.set(acquired.video().is_some());
    if let Some(old) = LOCAL.with_borrow_mut(|l| l.replace(acquired.stream)) {
        media::stop(&old);
    }
    apply_track_switches(model);
    model.local_rev.update(|r| *r += 1);
    model.media_ready.set(true);
}

/// Makes the local tracks follow the mic and camera switches.
pub fn apply_track_switches(model: CallModel) {
    if let Some(stream) = local_stream() {
        let set = |tracks: js_sys::Array, on: bool| {
            for t in tracks.iter() {
                t.unchecked_into::<MediaStreamTrack>().set_enabled(on);
            }
        };
        set(stream.get_audio_tracks(), model.mic.get_untracked());
        set(stream.get_video_tracks(), model.camera.get_untracked());
    }
}

/// Shows `stream` in `el` and starts it. `autoplay` alone is not enough: a media element that
/// was assigned a stream before it had tracks, or while covered, can stay paused.
pub fn play(el: &web_sys::HtmlMediaElement, stream: Option<&MediaStream>) {
    el.set_src_object(stream);
    if stream.is_some()
        && let Ok(started) = el.play()
    {
        wasm_bindgen_futures::spawn_local(async move {
            // Refused only by a browser's autoplay policy; the element plays once the person
            // interacts with the page.
            let _ = wasm_bindgen_futures::JsFuture::from(started).await;
        });
    }
}

/// The incoming media of a member, for its tile.
pub fn remote_stream(peer: &str) -> Option<MediaStream> {
    let session = current()?;
    let peers = session.peers.borrow();
    peers
        .iter()
        .find(|(id, _)| id.as_str() == peer)
        .map(|(_, link)| link.remote_stream().clone())
}

/// Starts the frame worker (once), so it is ready by the time the person clicks Join.
pub fn start_worker() -> WorkerStart {
    WORKER.with_borrow_mut(|w| {
        w.get_or_insert_with(|| {
            FrameWorker::start(|stats| {
                if let Some(session) = current() {
                    session.on_stats(stats);
                }
            })
            .boxed_local()
            .shared()
        })
        .clone()
    })
}

/// Joins the call. Fails only if encryption cannot be set up: we never send media without it.
pub async fn join(model: CallModel, room: RoomId, secret: RoomSecret) -> Result<(), String> {
    let worker = start_worker().await?;

    let call = Call::new(
        room,
        secret,
        &model.name.get_untracked(),
        model.mic.get_untracked() && model.has_mic.get_untracked(),
        model.camera.get_untracked() && model.has_camera.get_untracked(),
    );

    let hooks = Rc::new(PeerHooks {
        send: Box::new(|to, msg| {
            if let Some(session) = current() {
                session.send_to(to, msg);
            }
        }),
        on_tracks: Box::new(|peer| {
            if let Some(session) = current() {
                *session
                    .stream_revs
                    .borrow_mut()
                    .entry(peer.clone())
                    .or_default() += 1;
                session.refresh_tiles();
            }
        }),
        on_state: Box::new(|peer, state| {
            if let Some(session) = current() {
                session.on_link_state(peer, state);
            }
        }),
    });
    let local = local_stream().unwrap_or_else(|| MediaStream::new().expect("MediaStream"));
    let session = Rc::new(Session {
        model,
        call: RefCell::new(call),
        worker,
        local,
        signaling: RefCell::new(None),
        peers: RefCell::new(BTreeMap::new()),
        stream_revs: RefCell::new(BTreeMap::new()),
        hooks,
        leaving: Cell::new(false),
        reconnects: Cell::new(0),
        timers: RefCell::new(Vec::new()),
        reconnect_timer: RefCell::new(None),
    });
    CURRENT.with_borrow_mut(|c| *c = Some(session.clone()));
    session.connect();
    session
        .timers
        .borrow_mut()
        .push(Interval::new((PING_INTERVAL_SECS * 1000) as u32, || {
            if let Some(session) = current() {
                session.send(&ClientMessage::Ping);
            }
        }));
    // Key switches and retirements are timed by the call; give it a clock.
    session.timers.borrow_mut().push(Interval::new(TICK_MS, || {
        if let Some(session) = current() {
            let events = session.call.borrow_mut().tick(now_ms());
            session.run(events);
        }
    }));
    Ok(())
}

/// Leaves the call on purpose (button, or the tab closing).
pub fn leave() {
    if let Some(session) = CURRENT.with_borrow_mut(Option::take) {
        session.leaving.set(true);
        session.send(&ClientMessage::Leave);
        session.signaling.borrow_mut().take();
        session.reconnect_timer.borrow_mut().take();
        session.timers.borrow_mut().clear();
        session.close_peers();
        session.model.tiles.set(Vec::new());
        session.model.safety.set(Safety::None);
        session.model.phase.set(Phase::Left);
    }
    if let Some(stream) = LOCAL.with_borrow_mut(Option::take) {
        media::stop(&stream);
    }
}

/// Tells the others our new name or mute state.
pub fn presence_changed(model: CallModel) {
    apply_track_switches(model);
    if let Some(session) = current() {
        let events = session.call.borrow_mut().set_presence(
            &model.name.get_untracked(),
            model.mic.get_untracked() && model.has_mic.get_untracked(),
            model.camera.get_untracked() && model.has_camera.get_untracked(),
        );
        session.run(events);
    }
}

impl Session {
    fn connect(self: &Rc<Self>) {
        self.model.server.set(if self.reconnects.get() == 0 {
            ServerLink::Connecting
        } else {
            ServerLink::Reconnecting
        });
        let join = self.call.borrow().join();
        let connected = Signaling::connect(
            move || {
                if let Some(session) = current() {
                    session.send(&join);
                }
            },
            |msg| {
                if let Some(session) = current() {
                    session.on_server(msg);
                }
            },
            |opened| {
                if let Some(session) = current() {
                    session.on_disconnect(opened);
                }
            },
        );
        match connected {
            Ok(signaling) => *self.signaling.borrow_mut() = Some(signaling),
            Err(_) => self.on_disconnect(false),
        }
    }

    fn send(&self, msg: &ClientMessage) {
        if let Some(signaling) = self.signaling.borrow().as_ref() {
            signaling.send(msg);
        }
    }

    fn send_to(&self, to: &PeerId, msg: PeerMessage) {
        let sealed = self.call.borrow_mut().seal(to, msg);
        if let Some(sealed) = sealed {
            self.send(&sealed);
        }
    }

    fn on_server(self: &Rc<Self>, msg: ServerMessage) {
        if let ServerMessage::Welcome { .. } = msg {
            self.reconnects.set(0);
            self.model.server.set(ServerLink::Connected);
            self.model.dismiss(notice::SERVER_LOST);
            self.model.dismiss(notice::SERVER_UNREACHABLE);
        }
        if let ServerMessage::Error {
            code, fatal: false, ..
        } = &msg
        {
            web_sys::console::warn_1(&format!("server refused a message: {code:?}").into());
        }
        let events = self.call.borrow_mut().handle(msg, now_ms());
        self.run(events);
    }

    fn run(self: &Rc<Self>, events: Vec<Event>) {
        for event in events {
            match event {
                Event::Send(msg) => self.send(&msg),
                Event::MemberReady(peer) => {
                    self.open_peer(peer);
                    self.refresh_tiles();
                }
                Event::UseSendKey { key_id, key } => self.worker.post(&ToWorker::SendKey {
                    key_id,
                    key: key.as_bytes().to_vec(),
                }),
                Event::ReceiveKeys { peer, keys } => {
                    self.worker.post(&ToWorker::ReceiveKeys {
                        peer: peer.to_string(),
                        keys: keys
                            .iter()
                            .map(|(kid, key)| (*kid, key.as_bytes().to_vec()))
                            .collect(),
                    });
                    self.refresh_tiles();
                }
                Event::RequestKeyFrame => self.worker.post(&ToWorker::KeyFrame),
                Event::MemberUpdated(_) => self.refresh_tiles(),
                Event::MemberLeft(peer) => {
                    if let Some(link) = self.peers.borrow_mut().remove(&peer) {
                        link.close();
                    }
                    self.worker.post(&ToWorker::ForgetPeer {
                        peer: peer.to_string(),
                    });
                    self.refresh_tiles();
                }
                Event::Negotiate { peer, msg } => {
                    if let Some(link) = self.peers.borrow().get(&peer) {
                        link.deliver(msg);
                    }
                }
                Event::StatusChanged => self.on_status(),
                Event::VerificationChanged => self.refresh_safety(),
                Event::Connect => self.connect(),
                Event::ServerLinkChanged => {}
                Event::RestartIce(peer) => {
                    if let Some(link) = self.peers.borrow().get(&peer) {
                        link.restart_ice();
                    }
                }
            }
        }
    }

    fn on_link_state(self: &Rc<Self>, peer: &PeerId, state: RtcPeerConnectionState) {
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
        let events = self.call.borrow_mut().link_report(peer, state, now_ms());
        self.run(events);
    }

    fn on_status(self: &Rc<Self>) {
        let status = self.call.borrow().status().clone();
        match status {
            CallStatus::Joining => {}
            CallStatus::InCall => {
                self.model.dismiss(notice::KEY_MISMATCH);
                self.model.phase.set(Phase::InCall);
            }
            CallStatus::KeyMismatch => {
                self.model.phase.set(Phase::KeyMismatch);
            }
            CallStatus::Refused(code) => {
                self.leaving.set(true);
                self.close_peers();
                self.model.tiles.set(Vec::new());
                self.model
                    .phase
                    .set(Phase::Refused(notice::server_error(code).to_owned()));
            }
        }
    }

    fn open_peer(self: &Rc<Self>, peer: PeerId) {
        let (me, ice_servers) = {
            let call = self.call.borrow();
            let Some(me) = call.me().cloned() else {
                return;
            };
            (me, call.ice_servers().to_vec())
        };
        if let Some(old) = self.peers.borrow_mut().remove(&peer) {
            old.close();
        }
        match PeerLink::open(
            &me,
            peer.clone(),
            &self.local,
            &ice_servers,
            self.worker.clone(),
            self.hooks.clone(),
        ) {
            Ok(link) => {
                self.peers.borrow_mut().insert(peer, link);
            }
            Err(err) => {
                web_sys::console::error_2(&"could not open a peer connection".into(), &err);
                self.model.notify(
                    "Could not connect to one of the others. Leave and join again to retry.",
                );
            }
        }
    }

    fn close_peers(&self) {
        for (peer, link) in std::mem::take(&mut *self.peers.borrow_mut()) {
            link.close();
            self.worker.post(&ToWorker::ForgetPeer {
                peer: peer.to_string(),
            });
        }
    }

    /// The server connection dropped. Peer connections end with it (the others see us leave),
    /// so we rejoin from scratch once the server is back.
    fn on_disconnect(self: &Rc<Self>, was_open: bool) {
        if self.leaving.get() {
            return;
        }
        // We are inside the socket's own close handler: drop it once that has returned.
        let old = self.signaling.borrow_mut().take();
        Timeout::new(0, move || drop(old)).forget();
        // The peer connections do not need the server: they stay, and the call retries it
        // (`Event::Connect` from its clock).
        self.model.server.set(ServerLink::Reconnecting);
        self.model.notify(if was_open {
            notice::SERVER_LOST
        } else {
            notice::SERVER_UNREACHABLE
        });
        self.reconnects.set(self.reconnects.get() + 1);
        let events = self.call.borrow_mut().socket_closed(now_ms());
        self.run(events);
    }

    fn on_stats(self: &Rc<Self>, stats: Vec<PeerStats>) {
        let now = now_ms();
        let mut changed = false;
        let mut events = Vec::new();
        {
            let mut call = self.call.borrow_mut();
            for s in stats {
                if let Ok(peer) = PeerId::new(s.peer) {
                    let (tile, more) =
                        call.media_report(&peer, now, s.decrypted, s.failed, s.missing_key);
                    changed |= tile;
                    events.extend(more);
                }
            }
        }
        self.run(events);
        if changed {
            self.refresh_tiles();
        }
    }

    fn refresh_tiles(&self) {
        let call = self.call.borrow();
        let revs = self.stream_revs.borrow();
        let tiles = call
            .ready_members()
            .filter_map(|m| {
                let presence = m.presence.as_ref()?;
                Some(Tile {
                    peer: m.id.to_string(),
                    name: presence.name.clone(),
                    mic: presence.mic,
                    camera: presence.camera,
                    has_key: call.has_key_from(&m.id),
                    media: m.media.state(),
                    reach: m.reach.reach(),
                    stream_rev: revs.get(&m.id).copied().unwrap_or(0),
                })
            })
            .collect();
        self.model.tiles.set(tiles);
        if call.own_network_blocked() {
            self.model.notify(notice::OWN_NETWORK_BLOCKED);
        } else {
            self.model.dismiss(notice::OWN_NETWORK_BLOCKED);
        }
    }

    /// The safety check as the screen shows it, with names for the members it talks about.
    fn refresh_safety(&self) {
        let call = self.call.borrow();
        let name = |peer: &PeerId| {
            call.member(peer)
                .and_then(|m| m.presence.as_ref())
                .map(|p| p.name.clone())
        };
        let safety = match call.verification() {
            None => Safety::None,
            Some(Verification::Checking) => Safety::Checking,
            Some(Verification::Words(words)) => Safety::Words(words.symbols().collect()),
            Some(Verification::Stalled(missing)) => {
                let names: Vec<String> = missing.iter().filter_map(name).collect();
                Safety::Problem(notice::verification_stalled(
                    &names,
                    missing.len() - names.len(),
                ))
            }
            Some(Verification::Tampered(peer)) => {
                Safety::Problem(notice::tampered(name(peer).as_deref()))
            }
        };
        self.model.safety.set(safety);
    }
}
