//! The session's side of a call through the SFU: when the call moves there
//! ([`Event::UseSfu`]), the peer connections to members close; with access from the server a
//! [`SfuLink`] opens, and `conclave_call::sfu::Sfu` says what to tell Janus. Both belong to the
//! session like everything else, and reach it only through its inbox.

use std::rc::Rc;

use litemap::LiteMap;

use conclave_call::layers::{self, Layers};
use conclave_call::notice;
use conclave_call::sfu::{Sfu, SfuAccess, SfuEvent};
use conclave_protocol::PeerId;
use leptos::prelude::*;

use super::Session;
use crate::web::media::video_track;
use crate::web::sfu::{SfuInput, SfuLink};
use crate::web::{layout, now_ms};

/// How often the downlink's loss and the tiles' sizes are read to choose the layers we receive.
const SAMPLE_MS: u64 = 1_000;

/// Every temporal layer (full frame rate) of the chosen spatial one.
const TEMPORAL: u8 = 2;

/// What Janus calls us: random, so it never learns a name.
fn display() -> String {
    let mut bytes = [0u8; 8];
    conclave_e2ee::random_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The layer every feed may take at most: what the downlink carries, and the lowest while
/// nobody sees the page.
fn downlink_layer(measured: &Layers) -> u8 {
    if layout::page_hidden() {
        layers::LOWEST
    } else {
        measured.layer()
    }
}

impl Session {
    /// The call goes through the SFU from now on: its members' media will come from there.
    pub(super) fn use_sfu(&mut self) {
        for peer in self.peers.keys().cloned().collect::<Vec<_>>() {
            self.close_peer(&peer);
        }
        self.refresh_tiles();
    }

    /// Fresh access from the server: connect with it, or use its token from now on.
    pub(super) fn sfu_access(&mut self, url: String, token: String, room: u64) {
        if let Some(sfu) = self.sfu.as_mut() {
            sfu.set_token(token);
            return;
        }
        // Every sender and receiver of the SFU link goes through the frame worker: it waits
        // for it. Not for camera and microphone: the others' feeds come at once, and ours are
        // published when the browser opens them (`SfuLink::send`).
        if self.worker.is_none() {
            self.sfu_waiting = Some((url, token, room));
            return;
        }
        let (Some(worker), Some(call)) = (self.worker.clone(), self.call.as_ref()) else {
            return;
        };
        match SfuLink::open(
            &url,
            call.ice_servers(),
            &self.local,
            worker,
            self.inbox.clone(),
        ) {
            Ok(link) => {
                // A screen shared before the call moved here goes out with our first offer.
                if let Some(screen) = self.sharing.as_ref().and_then(|(s, _)| video_track(s)) {
                    link.share(Some(&screen));
                }
                self.sfu_link = Some(Rc::new(link));
                self.sfu_layers = Layers::default();
                self.sfu = Some(Sfu::new(SfuAccess { token, room }, display(), now_ms()));
            }
            Err(err) => {
                web_sys::console::warn_2(&"could not reach the video server".into(), &err);
                self.sfu_lost();
            }
        }
    }

    /// Access that waited for the worker: tried again now.
    pub(super) fn sfu_access_waiting(&mut self) {
        if let Some((url, token, room)) = self.sfu_waiting.take() {
            self.sfu_access(url, token, room);
        }
    }

    pub(super) fn on_sfu(&mut self, input: SfuInput) {
        let now = now_ms();
        let events = match (input, self.sfu.as_mut()) {
            (_, None) => return,
            (SfuInput::Open, Some(sfu)) => sfu.start(now),
            (SfuInput::Text(text), Some(sfu)) => sfu.handle(&text, now),
            (SfuInput::Closed, Some(_)) => {
                self.sfu_trouble(notice::SFU_LOST);
                return self.sfu_lost();
            }
            (SfuInput::PublisherOffer(Ok(sdp)), Some(sfu)) => sfu.publisher_offer(sdp, now),
            (SfuInput::SubscriberAnswer(Ok(sdp)), Some(sfu)) => sfu.subscriber_answer(sdp, now),
            (SfuInput::PublisherOffer(Err(why)) | SfuInput::SubscriberAnswer(Err(why)), _) => {
                web_sys::console::warn_1(&format!("SFU connection: {why}").into());
                self.model.notify(notice::PEER_CONNECTION_FAILED);
                return;
            }
            (
                SfuInput::Sampled {
                    downlink: (lost, received),
                    reports,
                },
                Some(_),
            ) => {
                let members = self
                    .sfu_link
                    .as_ref()
                    .map(|l| l.members())
                    .unwrap_or_default();
                for (peer, report) in reports {
                    if members.contains(&peer) {
                        self.observe_sample(peer, report);
                    }
                }
                self.sfu_layers.sample(lost, received, now);
                self.sfu_layer_per_feed(now)
            }
            (SfuInput::Tracks, Some(_)) => {
                if let Some(link) = &self.sfu_link {
                    for peer in link.members() {
                        *self.stream_revs.entry(peer).or_default() += 1;
                    }
                }
                return self.refresh_tiles();
            }
        };
        self.run_sfu(events);
    }

    pub(super) fn run_sfu(&mut self, events: Vec<SfuEvent>) {
        for event in events {
            let Some(link) = self.sfu_link.clone() else {
                return;
            };
            match event {
                SfuEvent::Send(text) => link.to_janus(&text),
                SfuEvent::MakePublisherOffer => {
                    // In the room again: whatever went wrong is over.
                    if let Some(trouble) = self.sfu_trouble.take() {
                        self.model.dismiss(trouble);
                    }
                    link.make_publisher_offer();
                }
                SfuEvent::PublisherAnswer { sdp } => link.publisher_answer(sdp),
                SfuEvent::Published { feed } => {
                    if let Some(call) = self.call.as_mut() {
                        let events = call.published(feed, link.share_mid());
                        self.run(events);
                    }
                }
                SfuEvent::SubscriberOffer { sdp, streams } => {
                    // Inserted one by one: `collect` would compile a sort for the map's type.
                    let mut owners: LiteMap<u64, (PeerId, Option<String>)> = LiteMap::new();
                    if let Some(call) = self.call.as_ref() {
                        for s in &streams {
                            if let Some(owner) = call.member_of_feed(s.feed) {
                                let share = call.share_of_feed(s.feed).map(str::to_owned);
                                owners.insert(s.feed, (owner.clone(), share));
                            }
                        }
                    }
                    link.subscriber_offer(sdp, streams, move |feed| owners.get(&feed).cloned());
                }
                // Who left is the server's to say; Janus renegotiates the subscription itself.
                SfuEvent::FeedGone { .. } => {}
                SfuEvent::Failed { why } => {
                    web_sys::console::warn_1(&format!("SFU: {why:?}").into());
                    self.sfu_trouble(notice::sfu_failure(&why));
                    return self.sfu_lost();
                }
            }
        }
    }

    /// Says what went wrong with the SFU, in place of what was said before.
    fn sfu_trouble(&mut self, trouble: &'static str) {
        if let Some(before) = self.sfu_trouble.replace(trouble) {
            self.model.dismiss(before);
        }
        self.model.notify(trouble);
    }

    /// The page came into or went out of sight: its layers follow at once.
    pub(super) fn sfu_layers_now(&mut self) {
        let events = self.sfu_layer_per_feed(now_ms());
        self.run_sfu(events);
    }

    /// Each feed at the layer the downlink takes, and no more than its tile shows: the lowest
    /// while nobody sees the page (its sound plays on, and a smaller picture is ready to show
    /// while the full one comes back).
    fn sfu_layer_per_feed(&mut self, now: u64) -> Vec<SfuEvent> {
        let (Some(call), Some(sfu)) = (self.call.as_ref(), self.sfu.as_mut()) else {
            return Vec::new();
        };
        let downlink = downlink_layer(&self.sfu_layers);
        let (pictures, ratio) = (layout::shown_pictures(), layout::pixel_ratio());
        let mut events = Vec::new();
        for feed in call.sfu_feeds() {
            let shown = call
                .member_of_feed(feed)
                .and_then(|peer| pictures.iter().find(|(p, ..)| p == peer.as_str()));
            // A feed without a tile yet (just subscribed) is not capped.
            let layer = shown.map_or(downlink, |(_, w, h)| {
                downlink.min(layers::for_view(*w, *h, ratio))
            });
            events.extend(sfu.prefer_layer(feed, layer, TEMPORAL, now));
        }
        events
    }

    /// The feeds to receive changed.
    pub(super) fn sfu_feeds(&mut self) {
        let (Some(call), Some(sfu)) = (self.call.as_ref(), self.sfu.as_mut()) else {
            return;
        };
        let (feeds, now) = (call.sfu_feeds(), now_ms());
        // Feeds new to us come in at the layer our downlink takes now (the lowest while the
        // page is out of sight); each is capped by its tile from the next look on.
        let layer = downlink_layer(&self.sfu_layers);
        let mut events = Vec::new();
        if layer != layers::TOP {
            for &feed in &feeds {
                events.extend(sfu.prefer_layer(feed, layer, TEMPORAL, now));
            }
        }
        events.extend(sfu.subscribe(&feeds, now));
        self.run_sfu(events);
    }

    pub(super) fn sfu_tick(&mut self) {
        let now = now_ms();
        if let Some(sfu) = self.sfu.as_mut() {
            let events = sfu.tick(now);
            self.run_sfu(events);
        }
        if let Some(link) = &self.sfu_link
            && now >= self.sfu_sampled_ms + SAMPLE_MS
        {
            self.sfu_sampled_ms = now;
            link.sample();
        }
    }

    /// Drops the SFU connection; the call asks the server for access again in a while.
    pub(super) fn sfu_lost(&mut self) {
        self.close_sfu();
        if let Some(call) = self.call.as_mut() {
            call.sfu_lost(now_ms());
        }
    }

    pub(super) fn close_sfu(&mut self) {
        if let (Some(sfu), Some(link)) = (self.sfu.as_mut(), self.sfu_link.as_ref()) {
            for event in sfu.leave() {
                if let SfuEvent::Send(text) = event {
                    link.to_janus(&text);
                }
            }
        }
        self.sfu = None;
        if let Some(link) = self.sfu_link.take() {
            link.close();
            for peer in link.members() {
                self.model.streams.update_value(|s| {
                    s.remove(peer.as_str());
                });
            }
        }
    }
}
