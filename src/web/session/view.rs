//! The screen's model, written from the call's state: tiles, the safety check.

use litemap::LiteMap;

use conclave_call::{Call, Verification, notice};
use conclave_protocol::PeerId;
use leptos::prelude::*;

use crate::ui::model::{CallModel, ChatLine, Safety, ShareTile, Tile};

pub(super) fn show_tiles(model: &CallModel, call: &Call, stream_revs: &LiteMap<PeerId, u32>) {
    let tiles = call
        .tiles()
        .into_iter()
        .map(|t| Tile {
            stream_rev: stream_revs.get(&t.peer).copied().unwrap_or(0),
            peer: t.peer.to_string(),
            name: t.name,
            mic: t.mic,
            camera: t.camera,
            has_key: t.has_key,
            media: t.media,
            reach: t.reach,
            hand: t.hand,
            speaking: t.speaking,
            quality: t.quality,
        })
        .collect();
    model.tiles.set(tiles);
    show_speakers(model, call);
    model.uplink.set(call.uplink());
    let shares = call
        .tiles()
        .into_iter()
        .filter(|t| t.share.is_some())
        .map(|t| ShareTile {
            stream_rev: stream_revs.get(&t.peer).copied().unwrap_or(0),
            peer: t.peer.to_string(),
            name: t.name,
            media: t.media,
        })
        .collect();
    model.shares.set(shares);
    if call.own_network_blocked() {
        model.notify(notice::OWN_NETWORK_BLOCKED);
    } else {
        model.dismiss(notice::OWN_NETWORK_BLOCKED);
    }
}

/// Who speaks, and whom the layout follows.
fn show_speakers(model: &CallModel, call: &Call) {
    let active = call.active_speaker().map(|p| p.to_string());
    if model.active.get_untracked() != active {
        model.active.set(active);
    }
    if model.speaking.get_untracked() != call.speaking() {
        model.speaking.set(call.speaking());
    }
}

/// The safety check, with names for the members it talks about.
pub(super) fn show_safety(model: &CallModel, call: &Call) {
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
    model.safety.set(safety);
}

/// The chat as the panel shows it, times in this device's clock.
pub(super) fn show_chat(model: &CallModel, call: &Call) {
    let lines = call
        .chat()
        .enumerate()
        .map(|(id, line)| {
            let at = js_sys::Date::new(&(line.at_ms as f64).into());
            ChatLine {
                id,
                mine: line.from.is_none(),
                name: line.name.clone(),
                text: line.text.clone(),
                time: format!("{:02}:{:02}", at.get_hours(), at.get_minutes()),
            }
        })
        .collect();
    model.chat.set(lines);
}
