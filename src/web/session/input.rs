//! What reaches the session: everything the browser reports and everything the person asks
//! for, each as one input in one queue. Callbacks hold an [`Inbox`] and only ever post.

use std::rc::Weak;

use conclave_call::devices::{Device, DeviceKind};
use conclave_protocol::PeerId;
use conclave_protocol::peer::PeerMessage;
use conclave_protocol::signaling::ServerMessage;
use web_sys::RtcPeerConnectionState;

use super::Actor;
use crate::web::frame_worker::FrameWorker;
use crate::web::media::Acquired;
use conclave_bridge::PeerStats;

/// What a person asks of the call page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Intent {
    Rename(String),
    ToggleMic,
    ToggleCamera,
    Join,
    Leave,
    /// Put the call's link on the clipboard.
    CopyLink,
    /// Close this notice.
    Dismiss(String),
    SendChat(String),
    ToggleChat,
    ToggleHand,
    React(String),
    ToggleShare,
    /// Use this camera, microphone or speaker (by the browser's id), here and next time.
    Choose(DeviceKind, String),
    /// Keep this member's tile in the big place (`None`: follow whoever speaks).
    Pin(Option<String>),
    /// Show or hide the list of keyboard shortcuts.
    ToggleHelp,
    /// Show or hide the call's link as a QR code.
    ToggleQr,
    /// Escape: close whatever is open on top (the shortcuts, the chat).
    Close,
    /// Close the reminder that the microphone is off.
    WaveAwayMutedTalk,
    /// Play a chime on the chosen speaker.
    TestSpeaker,
    /// Space held down (`true`) or let go: talk while it is held, with the microphone off.
    HoldToTalk(bool),
}

/// Something a peer connection reports about itself.
pub enum PeerEvent {
    /// Seal and send this to the member (a description or a candidate).
    Send(PeerMessage),
    /// Its incoming tracks changed.
    Tracks,
    State(RtcPeerConnectionState),
}

pub enum Input {
    Intent(Intent),
    /// The camera and microphone request was answered.
    Media(Acquired),
    /// The frame worker is up (or could not start).
    Worker(Result<std::rc::Rc<FrameWorker>, String>),
    /// Decrypt counts from the worker, once a second.
    Stats(Vec<PeerStats>),
    SocketOpen,
    Server(ServerMessage),
    SocketClosed {
        was_open: bool,
    },
    Peer(PeerId, PeerEvent),
    /// The browser went online or offline, or its network changed.
    Network,
    /// Whether putting the link on the clipboard worked.
    Copied(bool),
    /// The speaker's test chime has sounded.
    ChimeDone,
    /// The sound of someone coming or going has sounded.
    CueDone,
    /// The screen to share, or why there is none.
    Display(Result<web_sys::MediaStream, String>),
    /// The share stopped from outside the page (the browser's own "stop sharing").
    ShareEnded,
    /// What devices there are now (listed at start, and whenever one comes or goes).
    Devices(Vec<Device>),
    /// A device was plugged in or out.
    DevicesChanged,
    /// A device the person chose, or the next one after one stopped, is open (or why not).
    Opened(DeviceKind, Result<web_sys::MediaStreamTrack, String>),
    /// The browser's default device of a kind we had none of, opened (or why not).
    TurnedOn(DeviceKind, Result<web_sys::MediaStreamTrack, String>),
    /// Our camera or microphone stopped by itself (unplugged, or taken by the system).
    TrackEnded(DeviceKind),
    /// After a device stopped: the devices left, to pick the next from.
    Replace {
        kind: DeviceKind,
        lost: String,
        devices: Vec<Device>,
    },
    /// Time to read the microphone's level.
    Meter,
    /// What a connection measured.
    Sampled(PeerId, crate::web::stats::Report),
    /// The SFU's socket and connections (a large call).
    Sfu(crate::web::sfu::SfuInput),
    /// The page came into or went out of sight.
    Visibility,
    Tick,
}

/// Where callbacks post. Weak: what the session owns (its socket, its connections) holds
/// callbacks, and they must not keep the session alive.
#[derive(Clone)]
pub struct Inbox(pub(super) Weak<Actor>);

impl Inbox {
    pub fn post(&self, input: Input) {
        if let Some(actor) = self.0.upgrade() {
            actor.post(input);
        }
    }
}
