//! What the call screen shows, as reactive signals. The session writes it; components read it.

use litemap::LiteMap;

use conclave_call::MediaState;
pub use conclave_call::ServerLink;
use conclave_call::devices::Device;
use conclave_call::quality::LinkSample;
use conclave_call::reach::Reach;
use leptos::prelude::*;
use web_sys::MediaStream;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// Preview and settings before joining.
    Lobby,
    Joining,
    InCall,
    /// Our link's key is not the call's.
    KeyMismatch,
    /// The server refused us (full room); the text says why.
    Refused(String),
    /// We could not start (no encryption worker); the text says why.
    Failed(String),
    Left,
}

/// One remote member's tile.
#[derive(Debug, Clone, PartialEq)]
pub struct Tile {
    pub peer: String,
    pub name: String,
    pub mic: bool,
    pub camera: bool,
    /// Whether this member has given us its key yet.
    pub has_key: bool,
    pub media: MediaState,
    /// Whether a network path to this member works, and if not, why.
    pub reach: Reach,
    /// Bumped whenever the member's incoming tracks change, so the tile re-attaches them.
    pub stream_rev: u32,
    /// It has raised its hand.
    pub hand: bool,
    pub speaking: bool,
    /// What our connection to it measured last.
    pub quality: Option<LinkSample>,
}

/// A member's screen share, shown large.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareTile {
    pub peer: String,
    pub name: String,
    pub media: MediaState,
    pub stream_rev: u32,
}

/// One chat line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatLine {
    pub id: usize,
    pub mine: bool,
    pub name: String,
    pub text: String,
    /// "14:05", on this device's clock.
    pub time: String,
}

/// A reaction on screen for a moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reaction {
    pub id: u64,
    /// The tile it shows on; `None`: ours.
    pub peer: Option<String>,
    pub emoji: String,
}

/// What the safety check shows.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Safety {
    /// Not in a call with anyone.
    #[default]
    None,
    /// Commitments and reveals are on their way.
    Checking,
    /// Six (emoji, word) pairs, the same for everyone in the call.
    Words(Vec<(&'static str, &'static str)>),
    /// Why there are no words, in words.
    Problem(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub id: u32,
    pub text: String,
}

#[derive(Clone, Copy)]
pub struct CallModel {
    pub phase: RwSignal<Phase>,
    pub server: RwSignal<ServerLink>,
    pub tiles: RwSignal<Vec<Tile>>,
    pub notices: RwSignal<Vec<Notice>>,
    pub name: RwSignal<String>,
    pub mic: RwSignal<bool>,
    pub camera: RwSignal<bool>,
    /// Whether we have a microphone / camera track at all (permission, hardware).
    pub has_mic: RwSignal<bool>,
    pub has_camera: RwSignal<bool>,
    /// Bumped when the local stream changes.
    pub local_rev: RwSignal<u32>,
    /// The camera and microphone request has been answered (granted or not), so joining will
    /// send whatever it got.
    pub media_ready: RwSignal<bool>,
    /// What everyone in the call should see alike (see `conclave_call::rounds`).
    pub safety: RwSignal<Safety>,
    /// Whether this browser draws emoji at all (many desktops lack a colour-emoji font);
    /// without, the safety check shows its words alone.
    pub emoji_render: RwSignal<bool>,
    /// Which frame cipher the worker runs, as it named it.
    pub cipher: RwSignal<String>,
    /// Our camera and microphone, for the preview (see `local_rev`).
    pub local: StoredValue<Option<MediaStream>, LocalStorage>,
    /// Each member's incoming media, by peer id, for its tile (see `Tile::stream_rev`).
    pub streams: StoredValue<LiteMap<String, MediaStream>, LocalStorage>,
    /// Screen shares of others, and their streams by peer id.
    pub shares: RwSignal<Vec<ShareTile>>,
    pub share_streams: StoredValue<LiteMap<String, MediaStream>, LocalStorage>,
    /// Whether we are sharing a screen, and what (for our own small preview).
    pub sharing: RwSignal<bool>,
    pub own_share: StoredValue<Option<MediaStream>, LocalStorage>,
    pub chat: RwSignal<Vec<ChatLine>>,
    pub chat_open: RwSignal<bool>,
    /// Chat lines that came while the panel was closed.
    pub unread: RwSignal<u32>,
    /// Why the last message was not sent, in words.
    pub chat_problem: RwSignal<Option<String>>,
    pub hand: RwSignal<bool>,
    pub reactions: RwSignal<Vec<Reaction>>,
    /// What a screen reader should say next: joins, leaves, raised hands.
    pub announcement: RwSignal<String>,
    /// Cameras, microphones and speakers this browser has.
    pub devices: RwSignal<Vec<Device>>,
    /// The ones in use (the browser's id); `None`: the browser's default or none.
    pub camera_id: RwSignal<Option<String>>,
    pub mic_id: RwSignal<Option<String>>,
    pub speaker_id: RwSignal<Option<String>>,
    /// How loud our microphone is, 0 to 1.
    pub mic_level: RwSignal<f64>,
    /// Whether we are speaking (our tile shows it like the others').
    pub speaking: RwSignal<bool>,
    /// We are talking with the microphone off: say so (`conclave_call::muted_talk`).
    pub muted_talk: RwSignal<bool>,
    /// The speaker's test chime is sounding.
    pub chime: RwSignal<bool>,
    /// The member the layout follows when nobody is pinned.
    pub active: RwSignal<Option<String>>,
    /// The tile the person pinned to the big place.
    pub pinned: RwSignal<Option<String>>,
    /// How our own sending fares.
    pub uplink: RwSignal<Option<LinkSample>>,
    /// The keyboard shortcuts are listed.
    pub help_open: RwSignal<bool>,
    /// The call's link as a QR code, while it is shown.
    pub qr: RwSignal<Option<super::qr::Qr>>,
}

impl CallModel {
    pub fn new() -> Self {
        Self {
            phase: RwSignal::new(Phase::Lobby),
            server: RwSignal::new(ServerLink::Connecting),
            tiles: RwSignal::new(Vec::new()),
            notices: RwSignal::new(Vec::new()),
            name: RwSignal::new(String::new()),
            mic: RwSignal::new(true),
            camera: RwSignal::new(true),
            has_mic: RwSignal::new(false),
            has_camera: RwSignal::new(false),
            local_rev: RwSignal::new(0),
            media_ready: RwSignal::new(false),
            safety: RwSignal::new(Safety::None),
            emoji_render: RwSignal::new(true),
            cipher: RwSignal::new(String::new()),
            local: StoredValue::new_local(None),
            streams: StoredValue::new_local(LiteMap::new()),
            shares: RwSignal::new(Vec::new()),
            share_streams: StoredValue::new_local(LiteMap::new()),
            sharing: RwSignal::new(false),
            own_share: StoredValue::new_local(None),
            chat: RwSignal::new(Vec::new()),
            chat_open: RwSignal::new(false),
            unread: RwSignal::new(0),
            chat_problem: RwSignal::new(None),
            hand: RwSignal::new(false),
            reactions: RwSignal::new(Vec::new()),
            announcement: RwSignal::new(String::new()),
            devices: RwSignal::new(Vec::new()),
            camera_id: RwSignal::new(None),
            mic_id: RwSignal::new(None),
            speaker_id: RwSignal::new(None),
            mic_level: RwSignal::new(0.0),
            speaking: RwSignal::new(false),
            muted_talk: RwSignal::new(false),
            chime: RwSignal::new(false),
            active: RwSignal::new(None),
            pinned: RwSignal::new(None),
            uplink: RwSignal::new(None),
            help_open: RwSignal::new(false),
            qr: RwSignal::new(None),
        }
    }

    /// Shows a notice until dismissed; the same text is never shown twice at once.
    pub fn notify(&self, text: impl Into<String>) {
        let text = text.into();
        self.notices.update(|notices| {
            if notices.iter().all(|n| n.text != text) {
                let id = notices.iter().map(|n| n.id + 1).max().unwrap_or(0);
                notices.push(Notice { id, text });
            }
        });
    }

    /// The member in the big place: the pinned one, or else, from three people on, whoever
    /// speaks; `None`: an even grid.
    pub fn focus(&self) -> Option<String> {
        let present = |p: &String| self.tiles.with(|ts| ts.iter().any(|t| &t.peer == p));
        if let Some(pinned) = self.pinned.get().filter(present) {
            return Some(pinned);
        }
        if self.tiles.with(Vec::len) >= 2 {
            self.active.get().filter(present)
        } else {
            None
        }
    }

    /// The incoming media of a member, for its tile.
    pub fn stream(&self, peer: &str) -> Option<MediaStream> {
        self.streams.with_value(|s| s.get(peer).cloned())
    }

    pub fn dismiss(&self, text: &str) {
        self.notices
            .update(|notices| notices.retain(|n| n.text != text));
    }
}

impl Default for CallModel {
    fn default() -> Self {
        Self::new()
    }
}
