//! The session's devices: which camera, microphone and speaker are in use, switching them
//! mid-call on the same senders, the next one when one stops, the microphone meter, and what
//! each connection measures.

use conclave_call::budget;
use conclave_call::devices::{self, Device, DeviceKind};
use conclave_call::notice;
use conclave_call::quality::worst_of;
use conclave_protocol::PeerId;
use gloo_timers::callback::Interval;
use leptos::prelude::*;
use wasm_bindgen_futures::spawn_local;
use web_sys::MediaStreamTrack;

use super::{Input, METER_MS, QUALITY_MS, SAMPLE_MS, Session};
use crate::ui::model::Phase;
use crate::web::devices as browser;
use crate::web::level::MicMeter;
use crate::web::stats::Report;
use crate::web::{drop_later, events, media, now_ms, storage};

fn track_of(stream: &web_sys::MediaStream, kind: DeviceKind) -> Option<MediaStreamTrack> {
    match kind {
        DeviceKind::Camera => media::video_track(stream),
        DeviceKind::Microphone => media::audio_track(stream),
        DeviceKind::Speaker => None,
    }
}

impl Session {
    pub(super) fn list_devices(&self) {
        let inbox = self.inbox.clone();
        spawn_local(async move { inbox.post(Input::Devices(browser::list().await)) });
    }

    pub(super) fn on_devices(&mut self, list: Vec<Device>) {
        // A chosen speaker that went away: sound falls back to the default by itself.
        if let Some(id) = self.model.speaker_id.get_untracked()
            && !list
                .iter()
                .any(|d| d.kind == DeviceKind::Speaker && d.id == id)
        {
            let lost = self
                .devices
                .iter()
                .find(|d| d.kind == DeviceKind::Speaker && d.id == id)
                .map(Device::name)
                .unwrap_or_else(|| "speaker".to_owned());
            self.model
                .notify(notice::device_lost(DeviceKind::Speaker, &lost, None));
            self.model.speaker_id.set(None);
        }
        if self.model.speaker_id.get_untracked().is_none() {
            // The remembered speaker while it is plugged in; else none chosen (the default).
            let saved = storage::saved_device(DeviceKind::Speaker)
                .filter(|id| devices::of_kind(&list, DeviceKind::Speaker).any(|d| d.id == *id));
            self.model.speaker_id.set(saved);
        }
        self.devices = list.clone();
        self.model.devices.set(list);
        self.show_devices_in_use();
    }

    /// The pickers show the devices the tracks actually come from.
    pub(super) fn show_devices_in_use(&self) {
        for (kind, signal) in [
            (DeviceKind::Camera, self.model.camera_id),
            (DeviceKind::Microphone, self.model.mic_id),
        ] {
            let id = track_of(&self.local, kind).and_then(|t| browser::device_of(&t));
            // Chromium lists the default microphone twice: as "default" and as itself.
            let listed = id.filter(|id| self.devices.iter().any(|d| d.kind == kind && d.id == *id));
            signal.set(listed);
        }
    }

    pub(super) fn choose(&mut self, kind: DeviceKind, id: String) {
        storage::save_device(kind, &id);
        if kind == DeviceKind::Speaker {
            self.model.speaker_id.set(Some(id));
            return;
        }
        let current = track_of(&self.local, kind).and_then(|t| browser::device_of(&t));
        if current.as_deref() == Some(id.as_str()) {
            return;
        }
        let inbox = self.inbox.clone();
        spawn_local(async move {
            let opened = media::open(kind == DeviceKind::Camera, &id).await;
            inbox.post(Input::Opened(kind, opened));
        });
    }

    /// Whether the browser has answered for camera and microphone and gave none of `kind`.
    pub(super) fn lacks(&self, kind: DeviceKind) -> bool {
        self.model.media_ready.get_untracked() && track_of(&self.local, kind).is_none()
    }

    /// The camera or microphone switch, turned on where we have no such device yet (none
    /// when the call began, or none left): the browser's default of the kind is opened. A
    /// browser that did not name the device yet asks the person now.
    pub(super) fn turn_on(&mut self, kind: DeviceKind) {
        let inbox = self.inbox.clone();
        spawn_local(async move {
            let opened = media::open_default(kind == DeviceKind::Camera).await;
            inbox.post(Input::TurnedOn(kind, opened));
        });
    }

    /// Puts `track` where the old one of its kind was: in our stream (so connections opened
    /// later send it) and on every sender that sent the old one, or on every connection if
    /// there was none.
    pub(super) fn use_track(&mut self, kind: DeviceKind, track: MediaStreamTrack) {
        if self.left {
            track.stop();
            return;
        }
        let old = track_of(&self.local, kind);
        if let Some(old) = &old {
            for link in self.peers.values() {
                link.replace_track(old, &track);
            }
            self.local.remove_track(old);
            old.stop();
        }
        self.local.add_track(&track);
        if old.is_none() {
            // A kind we had none of (no camera at first): the connections get a sender for it,
            // and the browser may name the device now.
            self.send_local();
            self.list_devices();
        } else if let Some(link) = &self.sfu_link {
            // The SFU's publisher has a sender of each kind, which follows our stream.
            link.send(&self.local);
        }
        match kind {
            DeviceKind::Camera => self.model.has_camera.set(true),
            _ => self.model.has_mic.set(true),
        }
        self.apply_switches();
        self.model.local_rev.update(|r| *r += 1);
        self.watch_tracks();
        if kind == DeviceKind::Microphone {
            self.start_meter();
        }
        self.show_devices_in_use();
        self.presence_changed();
    }

    /// Listens for our camera and microphone stopping by themselves.
    pub(super) fn watch_tracks(&mut self) {
        for old in self.track_ends.drain(..) {
            drop_later(old);
        }
        for kind in [DeviceKind::Camera, DeviceKind::Microphone] {
            if let Some(track) = track_of(&self.local, kind) {
                let inbox = self.inbox.clone();
                self.track_ends
                    .push(events::on(track.into(), "ended", move || {
                        inbox.post(Input::TrackEnded(kind))
                    }));
            }
        }
    }

    pub(super) fn on_track_ended(&mut self, kind: DeviceKind) {
        let Some(track) = track_of(&self.local, kind) else {
            return;
        };
        let lost = browser::device_of(&track)
            .and_then(|id| {
                self.devices
                    .iter()
                    .find(|d| d.kind == kind && d.id == id)
                    .map(Device::name)
            })
            .unwrap_or_else(|| track.label());
        let inbox = self.inbox.clone();
        spawn_local(async move {
            let devices = browser::list().await;
            inbox.post(Input::Replace {
                kind,
                lost,
                devices,
            });
        });
    }

    /// After a device stopped: the next one, or, with none left, the others are told by our
    /// presence that this device is off.
    pub(super) fn replace_device(&mut self, kind: DeviceKind, lost: &str, list: Vec<Device>) {
        let saved = storage::saved_device(kind);
        let next = devices::pick(&list, kind, saved.as_deref()).cloned();
        self.model.notify(notice::device_lost(
            kind,
            lost,
            next.as_ref().map(|d| d.name()).as_deref(),
        ));
        self.on_devices(list);
        match next {
            Some(next) => {
                let inbox = self.inbox.clone();
                spawn_local(async move {
                    let opened = media::open(kind == DeviceKind::Camera, &next.id).await;
                    inbox.post(Input::Opened(kind, opened));
                });
            }
            None => {
                if let Some(track) = track_of(&self.local, kind) {
                    self.local.remove_track(&track);
                }
                match kind {
                    DeviceKind::Camera => self.model.has_camera.set(false),
                    _ => self.model.has_mic.set(false),
                }
                self.presence_changed();
            }
        }
    }

    pub(super) fn start_meter(&mut self) {
        self.meter = track_of(&self.local, DeviceKind::Microphone)
            .and_then(|track| MicMeter::new(&track).ok());
        if self.meter.is_some() && self.meter_ticker.is_none() {
            let inbox = self.inbox.clone();
            self.meter_ticker = Some(Interval::new(METER_MS, move || inbox.post(Input::Meter)));
        }
    }

    pub(super) fn read_meter(&mut self) {
        let Some(meter) = self.meter.as_mut() else {
            return;
        };
        let heard = meter.level();
        let on = self.model.mic.get_untracked();
        let level = if on { heard } else { 0.0 };
        self.model.mic_level.set(level);
        let remind = if on {
            self.muted_talk.unmuted();
            false
        } else {
            self.model.phase.get_untracked() == Phase::InCall
                && self.muted_talk.observe(heard, now_ms())
        };
        if self.model.muted_talk.get_untracked() != remind {
            self.model.muted_talk.set(remind);
        }
        // Observing any level lets everyone's voice fall quiet, not only ours: the tiles too.
        if let Some(call) = self.call.as_mut()
            && call.observe_level(None, level, now_ms())
        {
            self.refresh_tiles();
        }
    }

    /// Someone touched the page: a meter the browser held back may start now.
    pub(super) fn wake_meter(&self) {
        if let Some(meter) = &self.meter {
            meter.wake();
        }
    }

    pub(super) fn stop_devices(&mut self) {
        self.meter = None;
        if let Some(ticker) = self.meter_ticker.take() {
            drop_later(ticker);
        }
        for old in self.track_ends.drain(..) {
            drop_later(old);
        }
    }

    /// Asks every connection what it measures, every [`SAMPLE_MS`].
    pub(super) fn sample_links(&mut self) {
        let now = now_ms();
        if now.saturating_sub(self.last_sample_ms) < SAMPLE_MS {
            return;
        }
        self.last_sample_ms = now;
        // Our camera's share of the uplink on each connection, as many as there are now.
        let cap = budget::per_connection(self.peers.len());
        for (peer, link) in &self.peers {
            link.cap_camera(cap);
            let (peer, link, inbox) = (peer.clone(), link.clone(), self.inbox.clone());
            spawn_local(async move {
                if let Some(report) = link.sample().await {
                    inbox.post(Input::Sampled(peer, report));
                }
            });
        }
        if now.saturating_sub(self.last_quality_ms) >= QUALITY_MS {
            self.last_quality_ms = now;
            self.refresh_tiles();
        }
    }

    pub(super) fn on_sample(&mut self, peer: PeerId, report: Report) {
        if self.peers.contains_key(&peer) {
            self.observe_sample(peer, report);
        }
    }

    /// What was measured of a member's media and of our sending to it, in a mesh or through
    /// the SFU.
    pub(super) fn observe_sample(&mut self, peer: PeerId, report: Report) {
        let Some(call) = self.call.as_mut() else {
            return;
        };
        call.observe_link(&peer, report.link);
        self.uplinks.insert(peer.clone(), report.uplink);
        if let Some(uplink) = worst_of(self.uplinks.values().copied()) {
            call.observe_uplink(uplink);
        }
        if let Some(level) = report.level
            && call.observe_level(Some(&peer), level, now_ms())
        {
            self.refresh_tiles();
        }
    }
}
