//! A call through the SFU (Janus): the WebSocket to the server's `/sfu` relay that carries the
//! Janus API, one `RTCPeerConnection` that publishes our camera and microphone (VP8 in three
//! simulcast layers, so Janus can give a weak receiver a lower one) and our screen share (a
//! sender of its own, negotiated from the start and empty while nothing is shared), and one
//! that receives every member's feed. Every sender and receiver goes through the frame worker:
//! Janus forwards frames it cannot read. What to say to Janus and when is
//! `conclave_call::sfu`'s to decide; this only carries it out.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use litemap::LiteMap;

use conclave_call::layers;
use conclave_call::sfu::{Kind, SubscribedStream};
use conclave_protocol::PeerId;
use conclave_protocol::signaling::IceServer;
use futures::FutureExt as _;
use js_sys::{Array, Object, Reflect};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{JsFuture, spawn_local};
use web_sys::{
    CloseEvent, MediaStream, MediaStreamTrack, MessageEvent, RtcConfiguration,
    RtcIceGatheringState, RtcPeerConnection, RtcRtpCodecCapability, RtcRtpSender,
    RtcRtpTransceiver, RtcRtpTransceiverDirection, RtcRtpTransceiverInit, RtcSdpType,
    RtcSessionDescriptionInit, WebSocket,
};

use super::frame_worker::FrameWorker;
use super::media::{audio_track, video_track};
use super::session::{Inbox, Input};
use super::stats::{Report, Sampler, Sources, Stats};
use super::window;
use conclave_bridge::MediaKind;

/// Janus's WebSocket subprotocol.
const PROTOCOL: &str = "janus-protocol";

/// How long we wait for our ICE candidates before sending a description without the rest
/// (Janus takes complete descriptions; on a normal network gathering ends in well under this).
const GATHER_MS: u32 = 3_000;

/// What the SFU's sockets and connections report to the session.
pub enum SfuInput {
    /// The socket to the relay is open: Janus can be spoken to.
    Open,
    /// One text frame from Janus.
    Text(String),
    /// The socket to the relay closed.
    Closed,
    /// Our publisher offer, complete with candidates (or why there is none).
    PublisherOffer(Result<String, String>),
    /// Our answer to Janus's subscriber offer (or why there is none).
    SubscriberAnswer(Result<String, String>),
    /// The tracks of some member changed.
    Tracks,
    /// The receiving connection's video packets so far (lost, received), and each member's
    /// figures.
    Sampled {
        downlink: (u64, u64),
        reports: Vec<(PeerId, Report)>,
    },
}

pub struct SfuLink {
    socket: WebSocket,
    publisher: RtcPeerConnection,
    subscriber: RtcPeerConnection,
    worker: Rc<FrameWorker>,
    /// Our camera and microphone (the page's stream, which its owner may replace).
    local: RefCell<MediaStream>,
    /// Janus asked for our offer while we had nothing to publish (camera and microphone not
    /// open yet, or denied): it is made once a track comes ([`SfuLink::send`]).
    offer_owed: Cell<bool>,
    /// The screen we share, if we do, and the sender it goes out on once the offer is made.
    share: RefCell<Option<MediaStreamTrack>>,
    share_sender: RefCell<Option<RtcRtpTransceiver>>,
    /// Each member's camera and microphone as they arrive through the SFU …
    streams: RefCell<LiteMap<PeerId, MediaStream>>,
    /// … and its screen share's stream (a track with no frames while it shares nothing).
    shares: RefCell<LiteMap<PeerId, MediaStream>>,
    /// Whose media each receiving transceiver (by mid) carries now, and whether it is the
    /// member's screen share.
    owners: RefCell<LiteMap<String, (PeerId, bool)>>,
    /// Each member's figures between two readings.
    samplers: RefCell<LiteMap<PeerId, Sampler>>,
    inbox: Inbox,
    _closures: Vec<Box<dyn std::any::Any>>,
}

fn sfu_url(path: &str) -> String {
    let location = window().location();
    let scheme = match location.protocol().as_deref() {
        Ok("https:") => "wss",
        _ => "ws",
    };
    format!("{scheme}://{}{path}", location.host().unwrap_or_default())
}

fn connection(ice_servers: &[IceServer]) -> Result<RtcPeerConnection, JsValue> {
    let config = RtcConfiguration::new();
    config.set_ice_servers(&serde_wasm_bindgen::to_value(ice_servers)?);
    RtcPeerConnection::new_with_configuration(&config)
}

fn post(inbox: &Inbox, input: SfuInput) {
    inbox.post(Input::Sfu(input));
}

impl SfuLink {
    /// Opens the socket to the server's relay at `path` and the two connections.
    pub fn open(
        path: &str,
        ice_servers: &[IceServer],
        local: &MediaStream,
        worker: Rc<FrameWorker>,
        inbox: Inbox,
    ) -> Result<Self, JsValue> {
        let socket = WebSocket::new_with_str(&sfu_url(path), PROTOCOL)?;
        let mut closures: Vec<Box<dyn std::any::Any>> = Vec::new();
        let on_message = {
            let inbox = inbox.clone();
            Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
                if let Some(text) = event.data().as_string() {
                    post(&inbox, SfuInput::Text(text));
                }
            })
        };
        socket.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        closures.push(Box::new(on_message));
        let on_close = {
            let inbox = inbox.clone();
            Closure::<dyn FnMut(CloseEvent)>::new(move |_: CloseEvent| {
                post(&inbox, SfuInput::Closed)
            })
        };
        socket.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        closures.push(Box::new(on_close));
        let on_open = {
            let inbox = inbox.clone();
            Closure::<dyn FnMut()>::new(move || post(&inbox, SfuInput::Open))
        };
        socket.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        closures.push(Box::new(on_open));
        Ok(Self {
            socket,
            publisher: connection(ice_servers)?,
            subscriber: connection(ice_servers)?,
            worker,
            // `Clone::clone`: the same stream, not a copy of its tracks (see `peer`).
            local: RefCell::new(Clone::clone(local)),
            offer_owed: Cell::new(false),
            share: RefCell::new(None),
            share_sender: RefCell::new(None),
            streams: RefCell::new(LiteMap::new()),
            shares: RefCell::new(LiteMap::new()),
            owners: RefCell::new(LiteMap::new()),
            samplers: RefCell::new(LiteMap::new()),
            inbox,
            _closures: closures,
        })
    }

    /// Sends one Janus request. The session starts talking only once the socket is open
    /// ([`SfuInput::Open`]), so nothing is lost to a socket still connecting.
    pub fn to_janus(&self, text: &str) {
        if self.socket.ready_state() == WebSocket::OPEN {
            let _ = self.socket.send_with_str(text);
        }
    }

    /// Puts our tracks on the publisher connection and makes the offer: one sender for audio,
    /// one for video and one for a screen share, each with its encrypting transform attached
    /// before it can send a frame, those we have no track for (no camera, nothing shared)
    /// empty until a track comes. With nothing at all (camera and microphone not open yet, or
    /// denied, and no share) there is nothing to publish: the member receives, and the offer
    /// waits for a track.
    pub fn make_publisher_offer(&self) {
        let local = Clone::clone(&*self.local.borrow());
        // (kind, track, whether it is the screen share)
        let senders = [
            (MediaKind::Video, video_track(&local), false),
            (MediaKind::Audio, audio_track(&local), false),
            (MediaKind::Video, self.share.borrow().clone(), true),
        ];
        if senders.iter().all(|(_, track, _)| track.is_none()) {
            self.offer_owed.set(true);
            return;
        }
        self.offer_owed.set(false);
        let result = (|| -> Result<(), JsValue> {
            for (kind, track, is_share) in senders {
                let init = RtcRtpTransceiverInit::new();
                init.set_direction(RtcRtpTransceiverDirection::Sendonly);
                // The camera in layers, in our stream; the share alone.
                if !is_share {
                    init.set_streams(&Array::of1(&local));
                    if kind == MediaKind::Video {
                        init.set_send_encodings(&simulcast_layers());
                    }
                }
                let transceiver = match &track {
                    Some(track) => self
                        .publisher
                        .add_transceiver_with_media_stream_track_and_init(track, &init),
                    None => self.publisher.add_transceiver_with_str_and_init(
                        match kind {
                            MediaKind::Video => "video",
                            MediaKind::Audio => "audio",
                        },
                        &init,
                    ),
                };
                let transform = self.worker.transform(kind, None)?;
                transceiver
                    .sender()
                    .set_transform_opt_rtc_rtp_script_transform(Some(&transform));
                match kind {
                    MediaKind::Video => only_vp8(&transceiver),
                    MediaKind::Audio => super::peer::no_audio_level(&transceiver),
                }
                if is_share {
                    *self.share_sender.borrow_mut() = Some(transceiver);
                }
            }
            Ok(())
        })();
        let (pc, inbox) = (self.publisher.clone(), self.inbox.clone());
        spawn_local(async move {
            let offer = match result {
                Ok(()) => describe(&pc, None).await,
                Err(err) => Err(err),
            };
            post(
                &inbox,
                SfuInput::PublisherOffer(offer.map_err(|e| describe_error(&e))),
            );
        });
    }

    /// Our camera and microphone as they are now (opened after the link was, switched, or a
    /// device that came back): an offer that waited for them is made; otherwise each goes on
    /// the sender of its kind in place of what it sent (nothing, the device before, or one
    /// that stopped), through the transform that sender has, with no new negotiation.
    pub fn send(&self, local: &MediaStream) {
        *self.local.borrow_mut() = Clone::clone(local);
        if self.offer_owed.get() {
            return self.make_publisher_offer();
        }
        for transceiver in self.publisher.get_transceivers().iter() {
            let transceiver: RtcRtpTransceiver = transceiver.unchecked_into();
            if self.share_sender.borrow().as_ref() == Some(&transceiver) {
                continue;
            }
            // An empty sender has no kind of its own: its transceiver's receiver has.
            let track = match transceiver.receiver().track().kind().as_str() {
                "video" => video_track(local),
                _ => audio_track(local),
            };
            let sender = transceiver.sender();
            if let Some(track) = track
                && sender.track().as_ref() != Some(&track)
            {
                let promise = sender.replace_track(Some(&track));
                spawn_local(async move {
                    if let Err(err) = JsFuture::from(promise).await {
                        web_sys::console::warn_2(&"could not send a device".into(), &err);
                    }
                });
            }
        }
    }

    /// Shares `screen` (or stops: `None`) on the share's sender, with no new negotiation; an
    /// offer not made yet takes it.
    pub fn share(&self, screen: Option<&MediaStreamTrack>) {
        *self.share.borrow_mut() = screen.cloned();
        if self.offer_owed.get() {
            if screen.is_some() {
                self.make_publisher_offer();
            }
            return;
        }
        if let Some(transceiver) = self.share_sender.borrow().as_ref() {
            let promise = transceiver.sender().replace_track(screen);
            spawn_local(async move {
                if let Err(err) = JsFuture::from(promise).await {
                    web_sys::console::warn_2(&"could not share the screen".into(), &err);
                }
            });
        }
    }

    /// The mid our screen share goes out on, once the publisher's offer is made.
    pub fn share_mid(&self) -> Option<String> {
        self.share_sender.borrow().as_ref().and_then(|t| t.mid())
    }

    pub fn publisher_answer(&self, sdp: String) {
        let pc = self.publisher.clone();
        spawn_local(async move {
            let answer = RtcSessionDescriptionInit::new(RtcSdpType::Answer);
            answer.set_sdp(&sdp);
            if let Err(err) = JsFuture::from(pc.set_remote_description(&answer)).await {
                web_sys::console::warn_2(&"the SFU's answer did not apply".into(), &err);
            }
        });
    }

    /// Applies Janus's offer for the subscriber connection, gives every receiving transceiver
    /// the decrypting transform of the member whose feed it carries (`owner`: the member, and
    /// the mid of its feed that carries its screen), before any of its frames can arrive, and
    /// answers.
    pub fn subscriber_offer(
        self: &Rc<Self>,
        sdp: String,
        streams: Vec<SubscribedStream>,
        owner: impl Fn(u64) -> Option<(PeerId, Option<String>)>,
    ) {
        let wanted: Vec<Routed> = streams
            .into_iter()
            .filter_map(|s| {
                let kind = match s.kind {
                    Kind::Audio => MediaKind::Audio,
                    Kind::Video => MediaKind::Video,
                };
                let (peer, share) = owner(s.feed)?;
                let is_share = kind == MediaKind::Video && share.is_some() && s.feed_mid == share;
                Some(Routed {
                    mid: s.mid,
                    peer,
                    kind,
                    is_share,
                })
            })
            .collect();
        let link = Rc::clone(self);
        spawn_local(async move {
            let offer = RtcSessionDescriptionInit::new(RtcSdpType::Offer);
            offer.set_sdp(&sdp);
            let answer = match JsFuture::from(link.subscriber.set_remote_description(&offer)).await
            {
                Ok(_) => {
                    link.route_receivers(&wanted);
                    describe(&link.subscriber, Some(())).await
                }
                Err(err) => Err(err),
            };
            post(
                &link.inbox,
                SfuInput::SubscriberAnswer(answer.map_err(|e| describe_error(&e))),
            );
        });
    }

    /// Each receiving transceiver in `wanted` gets the transform of the member it now carries,
    /// and its track goes into that member's stream, or its share's.
    fn route_receivers(&self, wanted: &[Routed]) {
        let transceivers: Vec<RtcRtpTransceiver> = self
            .subscriber
            .get_transceivers()
            .iter()
            .map(|t| t.unchecked_into())
            .collect();
        let mut owners = self.owners.borrow_mut();
        let mut streams = self.streams.borrow_mut();
        let mut shares = self.shares.borrow_mut();
        for transceiver in transceivers {
            let Some(mid) = transceiver.mid() else {
                continue;
            };
            let receiver = transceiver.receiver();
            let track = receiver.track();
            let now = wanted.iter().find(|r| r.mid == mid);
            let before = owners.get(&mid).cloned();
            if before.as_ref().map(|(p, s)| (p, *s)) == now.map(|r| (&r.peer, r.is_share)) {
                continue;
            }
            if let Some((old, was_share)) = before {
                let list = if was_share { &shares } else { &streams };
                if let Some(old) = list.get(&old) {
                    old.remove_track(&track);
                }
            }
            match now {
                Some(&Routed {
                    ref peer,
                    kind,
                    is_share,
                    ..
                }) => {
                    match self.worker.transform(kind, Some(peer.as_str())) {
                        Ok(transform) => {
                            receiver.set_transform_opt_rtc_rtp_script_transform(Some(&transform))
                        }
                        // Without its decrypting transform the track would only feed noise
                        // to the decoder: leave it out.
                        Err(_) => continue,
                    }
                    owners.insert(mid, (peer.clone(), is_share));
                    let list = if is_share { &mut shares } else { &mut streams };
                    let stream = list
                        .entry(peer.clone())
                        .or_insert_with(|| MediaStream::new().expect("MediaStream constructor"));
                    stream.add_track(&track);
                }
                None => {
                    owners.remove(&mid);
                }
            }
        }
        drop((owners, streams, shares));
        post(&self.inbox, SfuInput::Tracks);
    }

    /// A member's camera and microphone, as they come through the SFU.
    pub fn remote_stream(&self, peer: &PeerId) -> Option<MediaStream> {
        self.streams.borrow().get(peer).cloned()
    }

    /// A member's screen share, as it comes through the SFU (shown while it says it shares).
    pub fn remote_share(&self, peer: &PeerId) -> Option<MediaStream> {
        self.shares.borrow().get(peer).cloned()
    }

    /// Reads both connections' figures and posts them ([`SfuInput::Sampled`]): how lossy our
    /// downlink is decides the layer we receive; each member's voice and path feed its tile.
    pub fn sample(self: &Rc<Self>) {
        let link = Rc::clone(self);
        spawn_local(async move {
            let (Some(inbound), Some(outbound)) = (
                Stats::of(&link.subscriber).await,
                Stats::of(&link.publisher).await,
            ) else {
                return;
            };
            let camera = video_track(&link.local.borrow()).map(|t| t.id());
            let streams = link.streams.borrow().clone();
            let mut samplers = link.samplers.borrow_mut();
            samplers.retain(|peer, _| streams.contains_key(peer));
            let reports = streams
                .iter()
                .map(|(peer, stream)| {
                    let tracks: Vec<String> = stream
                        .get_tracks()
                        .iter()
                        .filter_map(|t| t.dyn_ref::<MediaStreamTrack>().map(|t| t.id()))
                        .collect();
                    let theirs = video_track(stream).map(|t| t.id());
                    let report = samplers.entry(peer.clone()).or_default().read(&Sources {
                        inbound: &inbound,
                        tracks: Some(&tracks),
                        outbound: &outbound,
                        camera: camera.as_deref(),
                        their_camera: theirs.as_deref(),
                    });
                    (peer.clone(), report)
                })
                .collect();
            drop(samplers);
            post(
                &link.inbox,
                SfuInput::Sampled {
                    downlink: inbound.video_packets(),
                    reports,
                },
            );
        });
    }

    /// A member left: its stream goes (its transceivers are reused or dropped by Janus).
    pub fn forget(&self, peer: &PeerId) {
        self.streams.borrow_mut().remove(peer);
        self.shares.borrow_mut().remove(peer);
        self.owners.borrow_mut().retain(|_, (p, _)| p != peer);
    }

    /// The members whose media comes through the SFU.
    pub fn members(&self) -> Vec<PeerId> {
        self.streams.borrow().keys().cloned().collect()
    }

    pub fn close(&self) {
        self.socket.set_onopen(None);
        self.socket.set_onmessage(None);
        self.socket.set_onclose(None);
        let _ = self.socket.close();
        self.publisher.close();
        self.subscriber.close();
    }
}

/// A receiving transceiver's place: whose feed it carries, and whether it is that member's
/// screen share.
struct Routed {
    mid: String,
    peer: PeerId,
    kind: MediaKind,
    is_share: bool,
}

/// Three layers, highest first as Janus numbers them from the `a=rid` order (h, m, l): full,
/// half and quarter resolution (`layers::scale_down`, which the receivers size tiles by).
fn simulcast_layers() -> Array {
    let layer = |rid: &str, bitrate: f64, scale: f64| {
        let e = Object::new();
        let _ = Reflect::set(&e, &"rid".into(), &rid.into());
        let _ = Reflect::set(&e, &"maxBitrate".into(), &bitrate.into());
        let _ = Reflect::set(&e, &"scaleResolutionDownBy".into(), &scale.into());
        e
    };
    let scale = |l: u8| f64::from(layers::scale_down(l));
    Array::of3(
        &layer("h", 1_200_000.0, scale(2)),
        &layer("m", 300_000.0, scale(1)),
        &layer("l", 100_000.0, scale(0)),
    )
}

/// The SFU's rooms take VP8: its packetizer headers are what Janus reads to switch layers,
/// and they stay in clear in our frames.
fn only_vp8(transceiver: &RtcRtpTransceiver) {
    let Some(capabilities) = RtcRtpSender::get_capabilities("video") else {
        return;
    };
    let keep = Array::new();
    for codec in capabilities.get_codecs().iter() {
        let mime = codec
            .unchecked_ref::<RtcRtpCodecCapability>()
            .get_mime_type()
            .to_ascii_lowercase();
        if mime == "video/vp8" || mime == "video/rtx" {
            keep.push(&codec);
        }
    }
    transceiver.set_codec_preferences(&keep);
}

/// Makes our offer (or, with `answer`, our answer), applies it, waits for our candidates, and
/// returns the description with them.
async fn describe(pc: &RtcPeerConnection, answer: Option<()>) -> Result<String, JsValue> {
    let made = match answer {
        Some(()) => JsFuture::from(pc.create_answer()).await?,
        None => JsFuture::from(pc.create_offer()).await?,
    };
    let made: RtcSessionDescriptionInit = made.unchecked_into();
    JsFuture::from(pc.set_local_description(&made)).await?;
    gathered(pc).await;
    pc.local_description()
        .map(|d| d.sdp())
        .ok_or_else(|| JsValue::from_str("no local description"))
}

/// Resolves once `pc` has gathered its candidates, or after [`GATHER_MS`].
async fn gathered(pc: &RtcPeerConnection) {
    if pc.ice_gathering_state() == RtcIceGatheringState::Complete {
        return;
    }
    let (tx, rx) = futures::channel::oneshot::channel::<()>();
    let tx = RefCell::new(Some(tx));
    let watched = pc.clone();
    let on_change = Closure::<dyn FnMut()>::new(move || {
        if watched.ice_gathering_state() == RtcIceGatheringState::Complete
            && let Some(tx) = tx.borrow_mut().take()
        {
            let _ = tx.send(());
        }
    });
    pc.set_onicegatheringstatechange(Some(on_change.as_ref().unchecked_ref()));
    let timeout = gloo_timers::future::TimeoutFuture::new(GATHER_MS);
    futures::select! {
        _ = rx.fuse() => {},
        _ = timeout.fuse() => {},
    }
    pc.set_onicegatheringstatechange(None);
    drop(on_change);
}

/// An exception in words for the console (never shown to people as is).
fn describe_error(err: &JsValue) -> String {
    err.as_string()
        .or_else(|| {
            Reflect::get(err, &"message".into())
                .ok()
                .and_then(|m| m.as_string())
        })
        .unwrap_or_else(|| "the browser refused".to_owned())
}
