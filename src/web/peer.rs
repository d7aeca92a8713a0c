//! One `RTCPeerConnection` per remote member, negotiated with the perfect-negotiation pattern
//! (decisions in `conclave_call::Negotiation`), every sender and receiver routed through the
//! frame worker.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use conclave_call::budget::SendCap;
use conclave_call::codecs::{self, Capability};
use conclave_call::{Negotiation, Verdict};
use conclave_protocol::PeerId;
use conclave_protocol::peer::{PeerMessage, SdpKind};
use conclave_protocol::signaling::IceServer;
use futures::StreamExt as _;
use futures::channel::mpsc;
use js_sys::{Array, Function, Promise, Reflect};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{JsFuture, spawn_local};
use web_sys::{
    MediaStream, MediaStreamTrack, RtcConfiguration, RtcIceCandidateInit, RtcPeerConnection,
    RtcPeerConnectionIceEvent, RtcRtpCodecCapability, RtcRtpReceiver, RtcRtpSender,
    RtcRtpTransceiver, RtcRtpTransceiverDirection, RtcRtpTransceiverInit, RtcSdpType,
    RtcSessionDescriptionInit, RtcSignalingState, RtcTrackEvent,
};

use super::frame_worker::FrameWorker;
use super::session::{Inbox, Input, PeerEvent};
use super::stats::{Report, Sampler, Sources, Stats};
use conclave_bridge::MediaKind;

#[wasm_bindgen]
extern "C" {
    /// The two `RTCPeerConnection` methods web-sys lacks.
    #[wasm_bindgen(extends = RtcPeerConnection)]
    type PeerConnectionExt;

    /// `setLocalDescription()` without arguments creates the right offer or answer for the
    /// current state, which perfect negotiation relies on.
    #[wasm_bindgen(method, js_name = setLocalDescription)]
    fn set_local_description_implicit(this: &PeerConnectionExt) -> Promise;

    #[wasm_bindgen(method, js_name = restartIce)]
    fn restart_ice(this: &PeerConnectionExt);
}

fn ext(pc: &RtcPeerConnection) -> &PeerConnectionExt {
    pc.unchecked_ref()
}

/// Whether `addTrack` may put a track on a transceiver already there. Only before the
/// connection's first offer and answer: Chromium runs a track through the sender's transform
/// when it comes onto a transceiver that is new or was made by the first offer, but sends it
/// in clear (transform set or not) on one that was negotiated receive-only before.
#[derive(Clone, Copy)]
enum Reuse {
    Yes,
    No,
}

pub struct PeerLink {
    id: PeerId,
    pc: RtcPeerConnection,
    /// Our camera and microphone: empty until the browser opened them (a person may join
    /// before it has), then the session's stream.
    local: RefCell<MediaStream>,
    /// Whether our tracks are on this connection yet (the polite side waits for the first
    /// offer, see [`PeerLink::open`]).
    sending: Cell<bool>,
    negotiation: RefCell<Negotiation>,
    /// The member's camera and microphone as they arrive.
    remote: MediaStream,
    /// The stream id the member's screen share comes in (from its presence), and the share.
    share_id: RefCell<Option<String>>,
    remote_share: MediaStream,
    /// Our screen share's transceiver on this connection, while we share.
    our_share: RefCell<Option<RtcRtpTransceiver>>,
    inbox: mpsc::UnboundedSender<PeerMessage>,
    /// The session's: every event of this connection goes there.
    session: Inbox,
    worker: Rc<FrameWorker>,
    closures: RefCell<Vec<Box<dyn std::any::Any>>>,
    sampler: Sampler,
}

fn kind_of(track: &MediaStreamTrack) -> MediaKind {
    if track.kind() == "video" {
        MediaKind::Video
    } else {
        MediaKind::Audio
    }
}

/// Offers the video codecs our frame transform frames that this browser both encodes and
/// decodes, best first (`conclave_call::codecs`); a test build's `?debug=codec=NAME` offers
/// only that one.
fn prefer_codecs(transceiver: &RtcRtpTransceiver) {
    let (Some(receiving), Some(sending)) = (
        RtcRtpReceiver::get_capabilities("video"),
        RtcRtpSender::get_capabilities("video"),
    ) else {
        return;
    };
    let listed = |codecs: Array| -> Vec<(String, Option<String>)> {
        codecs
            .iter()
            .map(|codec| {
                let codec: RtcRtpCodecCapability = codec.unchecked_into();
                (codec.get_mime_type(), codec.get_sdp_fmtp_line())
            })
            .collect()
    };
    let decodable_codecs = receiving.get_codecs();
    let (decodable, encodable) = (
        listed(decodable_codecs.clone()),
        listed(sending.get_codecs()),
    );
    fn view(list: &[(String, Option<String>)]) -> Vec<Capability<'_>> {
        list.iter()
            .map(|(mime, fmtp)| Capability {
                mime,
                fmtp: fmtp.as_deref(),
            })
            .collect()
    }
    #[cfg(feature = "test-hooks")]
    let forced = super::debug::forced_codec();
    #[cfg(not(feature = "test-hooks"))]
    let forced: Option<String> = None;
    let order = codecs::preferences(&view(&decodable), &view(&encodable), forced.as_deref());
    if order.is_empty() {
        return;
    }
    let keep = Array::new();
    for i in order {
        keep.push(&decodable_codecs.get(i as u32));
    }
    transceiver.set_codec_preferences(&keep);
}

/// The clear audio-level header extension (`sdp::AUDIO_LEVEL`): a relay or an SFU on the path
/// would read from it who speaks when. We never negotiate it; who speaks is measured from the
/// decrypted audio instead (`web::stats`). Where the browser cannot stop it (Safari), the
/// other side's repair of its description (`sdp::repair`) keeps it out.
pub(super) fn no_audio_level(transceiver: &RtcRtpTransceiver) {
    // Not in web-sys: `getHeaderExtensionsToNegotiate` and `setHeaderExtensionsToNegotiate`.
    let method = |name: &str| {
        Reflect::get(transceiver, &name.into())
            .ok()
            .and_then(|f| f.dyn_into::<Function>().ok())
    };
    let (Some(get), Some(set)) = (
        method("getHeaderExtensionsToNegotiate"),
        method("setHeaderExtensionsToNegotiate"),
    ) else {
        return;
    };
    let Ok(list) = get.call0(transceiver) else {
        return;
    };
    let list = Array::from(&list);
    for extension in list.iter() {
        let uri = Reflect::get(&extension, &"uri".into())
            .ok()
            .and_then(|u| u.as_string());
        if uri.as_deref() == Some(conclave_call::sdp::AUDIO_LEVEL) {
            let _ = Reflect::set(&extension, &"direction".into(), &"stopped".into());
        }
    }
    if let Err(err) = set.call1(transceiver, &list) {
        web_sys::console::warn_2(&"could not leave out the audio level".into(), &err);
    }
}

/// What every transceiver gets before it is negotiated: our video codecs, best first; no
/// clear audio level.
fn fit(transceiver: &RtcRtpTransceiver, kind: MediaKind) {
    match kind {
        MediaKind::Video => prefer_codecs(transceiver),
        MediaKind::Audio => no_audio_level(transceiver),
    }
}

impl PeerLink {
    /// Opens a connection to `id` through `ice_servers` (STUN/TURN from the server's welcome),
    /// sending `local`'s tracks through the frame worker.
    ///
    /// Only the impolite side makes the first offer (with an audio and a video section even
    /// where it has no track, so the other side can always send both); the polite side puts
    /// its tracks on the transceivers that offer creates. Perfect negotiation resolves any
    /// later collision, but avoiding the first one matters: Chromium stops gathering ICE
    /// candidates when an offer in flight is rolled back, and the call never connects.
    pub fn open(
        me: &PeerId,
        id: PeerId,
        local: &MediaStream,
        ice_servers: &[IceServer],
        worker: Rc<FrameWorker>,
        session: Inbox,
    ) -> Result<Rc<Self>, JsValue> {
        let config = RtcConfiguration::new();
        // `IceServer` is `RTCIceServer` field for field.
        config.set_ice_servers(&serde_wasm_bindgen::to_value(ice_servers)?);
        let pc = RtcPeerConnection::new_with_configuration(&config)?;
        let (inbox, rx) = mpsc::unbounded();
        let link = Rc::new(Self {
            negotiation: RefCell::new(Negotiation::new(me, &id)),
            id,
            pc,
            // `Clone::clone`: web-sys's `MediaStream::clone` is JavaScript's, which copies the
            // tracks, and a copy would not follow the mute switches.
            local: RefCell::new(Clone::clone(local)),
            sending: Cell::new(false),
            remote: MediaStream::new()?,
            share_id: RefCell::new(None),
            remote_share: MediaStream::new()?,
            our_share: RefCell::new(None),
            inbox,
            session,
            worker,
            closures: RefCell::new(Vec::new()),
            sampler: Sampler::default(),
        });
        link.install_handlers();
        if !link.negotiation.borrow().is_polite() {
            link.start_sending()?;
            for kind in [MediaKind::Audio, MediaKind::Video] {
                if !link.has_transceiver(kind) {
                    link.add_receive_only(kind)?;
                }
            }
        }
        let weak = Rc::downgrade(&link);
        spawn_local(async move {
            let mut rx = rx;
            while let Some(msg) = rx.next().await {
                let Some(link) = weak.upgrade() else { break };
                if let Err(err) = link.apply(msg).await {
                    web_sys::console::warn_2(&"negotiation step failed".into(), &err);
                }
            }
        });
        Ok(link)
    }

    /// Puts our tracks on the connection, each with its encrypting transform attached before
    /// it can send a frame. On the polite side this runs after the first offer was applied, and
    /// `addTrack` then reuses the transceiver that offer created (its answer carries our
    /// tracks); `replaceTrack` onto a transformed sender is avoided on purpose: Chromium's video
    /// transform stops after the first frame when the track arrives that way.
    fn start_sending(&self) -> Result<(), JsValue> {
        if self.sending.replace(true) {
            return Ok(());
        }
        self.add_tracks(Reuse::Yes)
    }

    /// Our camera and microphone, opened after this connection was (the person joined before
    /// the browser had opened them), or a camera or microphone we had none of: they go on the
    /// connection now, which renegotiates (the polite side's waits for its first offer).
    pub fn send(&self, local: &MediaStream) -> Result<(), JsValue> {
        *self.local.borrow_mut() = Clone::clone(local);
        if self.sending.get() {
            self.add_tracks(Reuse::No)?;
        }
        Ok(())
    }

    /// Each of our tracks not on the connection yet, each with its encrypting transform
    /// attached before it can send a frame.
    fn add_tracks(&self, reuse: Reuse) -> Result<(), JsValue> {
        // `Clone::clone`, as in `open`: not JavaScript's `clone()`, which copies the tracks.
        let local = Clone::clone(&*self.local.borrow());
        let sent: Vec<MediaStreamTrack> = self
            .transceivers()
            .filter_map(|t| t.sender().track())
            .collect();
        for track in local.get_tracks().iter() {
            let track: MediaStreamTrack = track.unchecked_into();
            if sent.contains(&track) {
                continue;
            }
            let kind = kind_of(&track);
            let transform = self.worker.transform(kind, None)?;
            let transceiver = match reuse {
                Reuse::Yes => {
                    let sender = self.pc.add_track_0(&track, &local);
                    self.transceivers()
                        .find(|t| t.sender() == sender)
                        .ok_or_else(|| JsValue::from_str("addTrack made no transceiver"))?
                }
                Reuse::No => {
                    let init = RtcRtpTransceiverInit::new();
                    init.set_direction(RtcRtpTransceiverDirection::Sendrecv);
                    init.set_streams(&Array::of1(&local));
                    self.pc
                        .add_transceiver_with_media_stream_track_and_init(&track, &init)
                }
            };
            transceiver
                .sender()
                .set_transform_opt_rtc_rtp_script_transform(Some(&transform));
            // The same transceiver carries the member's media of this kind back to us: give
            // its receiver the decrypting transform now, before any frame can arrive.
            self.attach_receive_transform(&transceiver.receiver(), kind)?;
            fit(&transceiver, kind);
        }
        Ok(())
    }

    fn transceivers(&self) -> impl Iterator<Item = RtcRtpTransceiver> {
        self.pc
            .get_transceivers()
            .into_iter()
            .map(|t| t.unchecked_into::<RtcRtpTransceiver>())
            .filter(|t| !t.stopped())
    }

    fn has_transceiver(&self, kind: MediaKind) -> bool {
        self.transceivers()
            .any(|t| kind_of(&t.receiver().track()) == kind)
    }

    fn add_receive_only(&self, kind: MediaKind) -> Result<(), JsValue> {
        let init = RtcRtpTransceiverInit::new();
        init.set_direction(RtcRtpTransceiverDirection::Recvonly);
        let name = if kind == MediaKind::Video {
            "video"
        } else {
            "audio"
        };
        let transceiver = self.pc.add_transceiver_with_str_and_init(name, &init);
        self.attach_receive_transform(&transceiver.receiver(), kind)?;
        fit(&transceiver, kind);
        Ok(())
    }

    fn attach_receive_transform(
        &self,
        receiver: &RtcRtpReceiver,
        kind: MediaKind,
    ) -> Result<(), JsValue> {
        if receiver.transform().is_none() {
            let transform = self.worker.transform(kind, Some(self.id.as_str()))?;
            receiver.set_transform_opt_rtc_rtp_script_transform(Some(&transform));
        }
        Ok(())
    }

    fn keep<T: 'static>(&self, closure: T) {
        self.closures.borrow_mut().push(Box::new(closure));
    }

    fn install_handlers(self: &Rc<Self>) {
        let weak = Rc::downgrade(self);
        let on_negotiation_needed = Closure::<dyn FnMut()>::new(move || {
            if let Some(link) = weak.upgrade() {
                spawn_local(async move {
                    if let Err(err) = link.offer().await {
                        web_sys::console::warn_2(&"could not make an offer".into(), &err);
                    }
                });
            }
        });
        self.pc
            .set_onnegotiationneeded(Some(on_negotiation_needed.as_ref().unchecked_ref()));
        self.keep(on_negotiation_needed);

        let weak = Rc::downgrade(self);
        let on_ice = Closure::<dyn FnMut(RtcPeerConnectionIceEvent)>::new(
            move |event: RtcPeerConnectionIceEvent| {
                let (Some(link), Some(candidate)) = (weak.upgrade(), event.candidate()) else {
                    return;
                };
                link.tell(PeerEvent::Send(PeerMessage::Candidate {
                    candidate: candidate.candidate(),
                    sdp_mid: candidate.sdp_mid(),
                    sdp_m_line_index: candidate.sdp_m_line_index(),
                }));
            },
        );
        self.pc
            .set_onicecandidate(Some(on_ice.as_ref().unchecked_ref()));
        self.keep(on_ice);

        let weak = Rc::downgrade(self);
        let on_track = Closure::<dyn FnMut(RtcTrackEvent)>::new(move |event: RtcTrackEvent| {
            if let Some(link) = weak.upgrade() {
                link.on_track(&event);
            }
        });
        self.pc.set_ontrack(Some(on_track.as_ref().unchecked_ref()));
        self.keep(on_track);

        let weak = Rc::downgrade(self);
        let on_state = Closure::<dyn FnMut()>::new(move || {
            if let Some(link) = weak.upgrade() {
                link.tell(PeerEvent::State(link.pc.connection_state()));
            }
        });
        self.pc
            .set_onconnectionstatechange(Some(on_state.as_ref().unchecked_ref()));
        self.keep(on_state);
    }

    fn on_track(&self, event: &RtcTrackEvent) {
        let track = event.track();
        let kind = kind_of(&track);
        match self.attach_receive_transform(&event.receiver(), kind) {
            Ok(()) => {}
            Err(_) => {
                // Without its decrypting transform the track would only feed noise to the
                // decoder; stop it instead.
                event.transceiver().stop();
                return;
            }
        }
        fit(&event.transceiver(), kind);
        let stream_id = event
            .streams()
            .get(0)
            .dyn_into::<MediaStream>()
            .ok()
            .map(|s| s.id());
        let is_share = stream_id.is_some() && *self.share_id.borrow() == stream_id;
        if is_share {
            for old in self.remote_share.get_tracks().iter() {
                self.remote_share.remove_track(&old.unchecked_into());
            }
            self.remote_share.add_track(&track);
        } else {
            self.remote.add_track(&track);
        }
        self.tell(PeerEvent::Tracks);
    }

    /// The member says its screen share comes in stream `id` (or that it stopped sharing).
    pub fn set_share_id(&self, id: Option<String>) {
        if id.is_none() {
            for old in self.remote_share.get_tracks().iter() {
                self.remote_share.remove_track(&old.unchecked_into());
            }
        }
        *self.share_id.borrow_mut() = id;
    }

    pub fn remote_share(&self) -> &MediaStream {
        &self.remote_share
    }

    /// Sends our screen share on this connection: a transceiver of its own, whose encrypting
    /// transform is attached here, in the same turn as the track, before negotiation lets a
    /// single frame out. (Jitsi and LiveKit have both shipped shares that left unencrypted.)
    pub fn start_share(
        &self,
        track: &MediaStreamTrack,
        stream: &MediaStream,
    ) -> Result<(), JsValue> {
        self.stop_share();
        let init = RtcRtpTransceiverInit::new();
        init.set_direction(RtcRtpTransceiverDirection::Sendonly);
        init.set_streams(&Array::of1(stream));
        let transceiver = self
            .pc
            .add_transceiver_with_media_stream_track_and_init(track, &init);
        let transform = self.worker.transform(MediaKind::Video, None)?;
        transceiver
            .sender()
            .set_transform_opt_rtc_rtp_script_transform(Some(&transform));
        prefer_codecs(&transceiver);
        *self.our_share.borrow_mut() = Some(transceiver);
        Ok(())
    }

    /// Sends `new` wherever `old` was sent (another camera or microphone), on the same sender:
    /// no renegotiation, and the sender's encrypting transform stays attached.
    pub fn replace_track(&self, old: &MediaStreamTrack, new: &MediaStreamTrack) {
        for transceiver in self.transceivers() {
            let sender = transceiver.sender();
            if sender.track().is_some_and(|t| t.id() == old.id()) {
                let promise = sender.replace_track(Some(new));
                spawn_local(async move {
                    if let Err(err) = JsFuture::from(promise).await {
                        web_sys::console::warn_2(&"could not switch a device".into(), &err);
                    }
                });
            }
        }
    }

    /// What the connection measures now: the member's voice level, the path's quality and our
    /// sending's.
    pub async fn sample(&self) -> Option<Report> {
        let camera = super::media::video_track(&self.local.borrow()).map(|t| t.id());
        let theirs = super::media::video_track(&self.remote).map(|t| t.id());
        let stats = Stats::of(&self.pc).await?;
        Some(self.sampler.read(&Sources {
            inbound: &stats,
            tracks: None,
            outbound: &stats,
            camera: camera.as_deref(),
            their_camera: theirs.as_deref(),
        }))
    }

    /// Keeps our camera's sender on this connection within `cap` (`None`: as the browser
    /// likes). Its encoding exists only once negotiated, so the session asks again each look,
    /// and only a change reaches the sender.
    pub fn cap_camera(&self, cap: Option<SendCap>) {
        let share = self.our_share.borrow().clone();
        for transceiver in self.transceivers() {
            let sender = transceiver.sender();
            if share.as_ref() == Some(&transceiver)
                || sender.track().is_none_or(|t| t.kind() != "video")
            {
                continue;
            }
            let params = sender.get_parameters();
            let Some(encoding) = Reflect::get(&params, &"encodings".into())
                .ok()
                .and_then(|e| e.dyn_into::<Array>().ok())
                .map(|e| e.get(0))
                .filter(|e| e.is_object())
            else {
                continue;
            };
            let (bitrate, scale) = match cap {
                Some(cap) => (Some(f64::from(cap.max_bitrate)), f64::from(cap.scale_down)),
                None => (None, 1.0),
            };
            let now = |key: &str| Reflect::get(&encoding, &key.into()).ok()?.as_f64();
            if now("maxBitrate") == bitrate && now("scaleResolutionDownBy").unwrap_or(1.0) == scale
            {
                continue;
            }
            let _ = match bitrate {
                Some(b) => Reflect::set(&encoding, &"maxBitrate".into(), &b.into()),
                None => Reflect::delete_property(
                    encoding.unchecked_ref::<js_sys::Object>(),
                    &"maxBitrate".into(),
                ),
            };
            let _ = Reflect::set(&encoding, &"scaleResolutionDownBy".into(), &scale.into());
            let promise = sender.set_parameters_with_parameters(&params);
            spawn_local(async move {
                if let Err(err) = JsFuture::from(promise).await {
                    web_sys::console::warn_2(&"could not cap the camera".into(), &err);
                }
            });
        }
    }

    /// Stops sending our share on this connection (renegotiated away).
    pub fn stop_share(&self) {
        if let Some(transceiver) = self.our_share.borrow_mut().take() {
            transceiver.stop();
        }
    }

    /// Everything this connection has to say goes to the session, as one input.
    fn tell(&self, event: PeerEvent) {
        self.session.post(Input::Peer(self.id.clone(), event));
    }

    async fn offer(&self) -> Result<(), JsValue> {
        self.negotiation.borrow_mut().set_making_offer(true);
        let result = JsFuture::from(ext(&self.pc).set_local_description_implicit()).await;
        self.negotiation.borrow_mut().set_making_offer(false);
        result?;
        self.send_local_description();
        Ok(())
    }

    fn send_local_description(&self) {
        if let Some(desc) = self.pc.local_description() {
            let kind = match desc.type_() {
                RtcSdpType::Offer => SdpKind::Offer,
                _ => SdpKind::Answer,
            };
            self.tell(PeerEvent::Send(PeerMessage::Description {
                kind,
                sdp: desc.sdp(),
            }));
        }
    }

    /// Queues a description or candidate from this member; they are applied strictly in order.
    pub fn deliver(&self, msg: PeerMessage) {
        let _ = self.inbox.unbounded_send(msg);
    }

    async fn apply(&self, msg: PeerMessage) -> Result<(), JsValue> {
        match msg {
            PeerMessage::Description { kind, sdp } => {
                let stable = self.pc.signaling_state() == RtcSignalingState::Stable;
                if self.negotiation.borrow_mut().on_description(kind, stable) == Verdict::Ignore {
                    return Ok(());
                }
                let init = RtcSessionDescriptionInit::new(match kind {
                    SdpKind::Offer => RtcSdpType::Offer,
                    SdpKind::Answer => RtcSdpType::Answer,
                });
                init.set_sdp(&conclave_call::sdp::repair(&sdp));
                JsFuture::from(self.pc.set_remote_description(&init)).await?;
                if kind == SdpKind::Offer {
                    // The polite side's tracks go onto the transceivers this offer made, so
                    // the answer already carries them.
                    self.start_sending()?;
                    JsFuture::from(ext(&self.pc).set_local_description_implicit()).await?;
                    self.send_local_description();
                }
            }
            PeerMessage::Candidate {
                candidate,
                sdp_mid,
                sdp_m_line_index,
            } => {
                let init = RtcIceCandidateInit::new(&candidate);
                init.set_sdp_mid(sdp_mid.as_deref());
                init.set_sdp_m_line_index(sdp_m_line_index);
                let added = JsFuture::from(
                    self.pc
                        .add_ice_candidate_with_opt_rtc_ice_candidate_init(Some(&init)),
                )
                .await;
                if let Err(err) = added
                    && !self.negotiation.borrow().candidate_error_expected()
                {
                    return Err(err);
                }
            }
            // Not for the connection; the call handles these.
            PeerMessage::Presence(_)
            | PeerMessage::Keys { .. }
            | PeerMessage::Commit { .. }
            | PeerMessage::Reveal { .. }
            | PeerMessage::Heartbeat
            | PeerMessage::Private { .. }
            | PeerMessage::Feed { .. } => {}
        }
        Ok(())
    }

    pub fn remote_stream(&self) -> &MediaStream {
        &self.remote
    }

    pub fn connection(&self) -> &RtcPeerConnection {
        &self.pc
    }

    /// Gathers fresh candidates and renegotiates (the offer goes out through
    /// `negotiationneeded`), for a connection whose every candidate pair failed.
    pub fn restart_ice(&self) {
        ext(&self.pc).restart_ice();
    }

    pub fn close(&self) {
        self.pc.set_onnegotiationneeded(None);
        self.pc.set_onicecandidate(None);
        self.pc.set_ontrack(None);
        self.pc.set_onconnectionstatechange(None);
        self.pc.close();
        self.inbox.close_channel();
    }
}
