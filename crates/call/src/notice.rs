//! Everything that can go wrong, in words a person understands. Never includes a secret.

use conclave_protocol::signaling::ErrorCode;

use crate::reach::Unreachable;

/// What the server refused, said for the person in the call.
pub fn server_error(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::RoomFull => {
            "This call is full. Only a few people fit in one call so that everyone's video stays smooth; try again when someone leaves."
        }
        ErrorCode::IdleTimeout => {
            "The connection to the server went quiet for too long and was closed."
        }
        ErrorCode::ShuttingDown => "The server is restarting.",
        ErrorCode::RateLimited => {
            "This page sent messages too quickly and the server dropped some. The call goes on."
        }
        ErrorCode::TooLarge | ErrorCode::BadMessage => {
            "The server refused a message from this page. The call goes on; if something looks stuck, leave and join again."
        }
        ErrorCode::SfuUnavailable => {
            "The server for large calls is not answering, so video from this call may not reach everyone."
        }
        ErrorCode::NotJoined | ErrorCode::AlreadyJoined | ErrorCode::UnknownPeer => {
            "The server and this page disagreed about who is in the call. If something looks stuck, leave and join again."
        }
    }
}

pub const KEY_MISMATCH: &str = "This link's key does not match the call, so nothing from the others can be decrypted and nothing of yours reaches them. The link was probably cut off or changed when it was copied: ask for it again.";

pub const SERVER_UNREACHABLE: &str = "Can't reach the server. The call goes on with the people already in it, but nobody new can join until it's back. Check your internet connection; we keep trying.";

pub const PEER_CONNECTION_FAILED: &str =
    "Could not connect to one of the others. Leave and join again to retry.";

pub const MEDIA_NOT_SENT: &str = "Could not send your camera and microphone to one of the others, so they can't see or hear you. Leave and join again to retry.";

pub const SFU_LOST: &str =
    "Lost the connection to the video server of this large call. Trying again in a moment.";

pub const LINK_COPIED: &str = "Link copied. Anyone with it can join this call, so share it only with the people you want here.";

pub const TEST_SOUND_FAILED: &str =
    "Could not play a test sound in this browser. The call's sound is not affected.";

pub const MUTED_TALK: &str = "You're talking with your microphone off: nobody can hear you.";

pub const LINK_NOT_COPIED: &str = "Couldn't copy automatically. Copy the address from the address bar instead: it is the call link.";

pub const BAD_ROOM: &str = "This link is damaged: the call's name after '/r/' is not one Conclave makes. Ask for the link again, or copy it whole.";

pub const BAD_LINK: &str = "This link is incomplete: the part after '#' that holds the call's key is missing or damaged. Ask for the link again.";

pub const NO_WEBRTC: &str = "This browser can't encrypt video calls end to end (it lacks WebRTC encoded transforms). Use a current Chrome, Edge, Firefox or Safari.";

pub const RETRYING_PATH: &str = "Connection lost, trying again…";

pub const RECONNECTING_PATH: &str = "Reconnecting…";

pub const OWN_NETWORK_BLOCKED: &str = "Your network is blocking this call: neither a direct connection nor the relay server gets through, so some people can't be reached. Try another network (a phone's hotspot often works), or ask whoever runs this network to allow video calls (WebRTC over UDP).";

/// Why `name`'s tile stays dark, for the person looking at it.
pub fn unreachable(why: Unreachable, name: &str) -> String {
    match why {
        Unreachable::NoRelay => format!(
            "Can't reach {name}. A firewall or home router on your side or theirs blocks direct connections, and this Conclave server has no relay (TURN) server to get around that. Whoever runs the server can add one."
        ),
        Unreachable::OurNetwork => format!(
            "Can't reach {name}: your network blocks the relay server this call uses to get around firewalls. Try another network, such as a phone's hotspot."
        ),
        Unreachable::TheirNetwork => format!(
            "Can't reach {name}: their network blocks both direct connections and the relay server. It may work if they switch to another network."
        ),
        Unreachable::Unknown => format!(
            "Can't reach {name}, not even through the relay server. Leave and join again; if it keeps happening, one of your networks blocks video calls."
        ),
    }
}

pub const REJOINED_AFTER_PAUSE: &str = "This tab was paused for a while (the computer slept, or the browser held the tab back), so you joined the call again.";

pub const CHECKING_MEMBERS: &str = "Checking who is in the call…";

pub const SAFETY_HINT: &str = "Everyone in the call sees these words. Read the words out to each other: if they are the same for all of you, nobody is secretly in between. They change whenever someone joins or leaves.";

pub const WORDS_DIFFER: &str = "If anyone sees different words, someone may be sitting between you, able to see and hear this call. Leave now and start a new call, and share its link another way than this one (in person, or in a messenger you trust): whoever is in between may have got this link.";

/// The round of commitments is waiting for these members' messages (`names`: those we know a
/// name for; the rest are counted).
pub fn verification_stalled(names: &[String], unnamed: usize) -> String {
    let mut who: Vec<String> = names.to_vec();
    match unnamed {
        0 => {}
        1 if who.is_empty() => who.push("someone".into()),
        1 => who.push("one more person".into()),
        n => who.push(format!("{n} more people")),
    }
    let who = match who.as_slice() {
        [] => "some of the others".to_owned(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    };
    format!(
        "Can't check who is in the call: messages from {who} haven't arrived. If this doesn't clear up in a moment, the server may be holding them back. Leave and open the link again."
    )
}

/// A member revealed something other than what it committed to.
pub fn tampered(name: Option<&str>) -> String {
    let who = name.map_or_else(|| "someone".to_owned(), str::to_owned);
    format!(
        "A message from {who} didn't match what it had promised a moment before, so someone may be tampering with this call. Don't trust it: leave, start a new call and share its link another way."
    )
}

/// Why a chat message was not sent; `None` when there is nothing worth saying (it was empty).
pub fn chat_refused(why: crate::conversation::ChatRefusal) -> Option<String> {
    use crate::conversation::ChatRefusal;
    match why {
        ChatRefusal::Empty => None,
        ChatRefusal::TooLong => Some(format!(
            "That message is too long: a message holds at most {} characters. Send it in parts.",
            conclave_protocol::peer::MAX_CHAT_CHARS
        )),
        ChatRefusal::Alone => Some("Nobody else is here yet to read it.".to_owned()),
    }
}

/// What a screen reader says when someone comes, goes, or raises a hand.
pub fn joined(name: &str) -> String {
    format!("{name} joined the call.")
}

pub fn left(name: &str) -> String {
    format!("{name} left the call.")
}

pub fn hand(name: &str, raised: bool) -> String {
    if raised {
        format!("{name} raised their hand.")
    } else {
        format!("{name} lowered their hand.")
    }
}

/// Why a screen could not be shared, from the `DOMException` name the browser gave.
pub fn share_error(dom_exception_name: &str) -> &'static str {
    match dom_exception_name {
        "NotAllowedError" | "AbortError" => "Screen sharing was cancelled.",
        "NotSupportedError" | "TypeError" => "This browser can't share a screen.",
        "NotReadableError" => {
            "Your screen could not be captured: another app may be using it, or the system does not allow it."
        }
        _ => "Your screen could not be shared.",
    }
}

/// The tab's title before joining, after leaving, and when the call cannot be had; in a call,
/// [`title_in_call`]. Never a name or the room: titles go into the browser's history.
pub const TITLE_LOBBY: &str = "Join the call · Conclave";
pub const TITLE_LEFT: &str = "Left the call · Conclave";
pub const TITLE_PROBLEM: &str = "Can't join the call · Conclave";

/// The tab's title in a call of `people` (ourselves included) with `unread` chat lines: a
/// person in another tab sees the call's tab, who is there and that someone wrote.
pub fn title_in_call(people: usize, unread: u32) -> String {
    let unread = if unread > 0 {
        format!("({unread}) ")
    } else {
        String::new()
    };
    if people > 1 {
        format!("{unread}In call · {people} people · Conclave")
    } else {
        format!("{unread}In call · just you · Conclave")
    }
}

pub const SHARING: &str = "You are sharing your screen with everyone in the call.";

/// Which devices a person asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Devices {
    Camera,
    Microphone,
    Both,
}

impl Devices {
    fn words(self) -> &'static str {
        match self {
            Devices::Camera => "camera",
            Devices::Microphone => "microphone",
            Devices::Both => "camera and microphone",
        }
    }
}

/// Why `getUserMedia` failed, from the `DOMException` name the browser gave, and what still
/// works: the person can always join and see and hear the others.
pub fn media_error(dom_exception_name: &str, devices: Devices) -> String {
    let what = devices.words();
    let cause = match dom_exception_name {
        "NotAllowedError" | "SecurityError" | "PermissionDeniedError" => format!(
            "This site isn't allowed to use your {what}. To turn it on, allow it in the browser's site settings (the icon next to the address) and reload."
        ),
        "NotFoundError" | "DevicesNotFoundError" | "OverconstrainedError" => {
            format!("No {what} was found on this device.")
        }
        "NotReadableError" | "TrackStartError" | "AbortError" => format!(
            "Your {what} is in use by another app or could not be started. Close the other app and try again."
        ),
        _ => format!("Your {what} could not be started."),
    };
    format!("{cause} You can still join: the others will see and hear what works.")
}

/// A device stopped mid-call (unplugged, or taken by the system), and what we use now.
pub fn device_lost(kind: crate::devices::DeviceKind, lost: &str, now: Option<&str>) -> String {
    use crate::devices::DeviceKind;
    let what = kind.word();
    match (kind, now) {
        (_, Some(next)) => {
            format!("Your {what} \"{lost}\" stopped, perhaps unplugged. Now using \"{next}\".")
        }
        (DeviceKind::Camera, None) => format!(
            "Your {what} \"{lost}\" stopped, perhaps unplugged, and there is no other: the others see your initials until you plug one in."
        ),
        (DeviceKind::Microphone, None) => format!(
            "Your {what} \"{lost}\" stopped, perhaps unplugged, and there is no other: the others can't hear you until you plug one in."
        ),
        (DeviceKind::Speaker, None) => {
            format!("Your {what} \"{lost}\" stopped. Sound now plays on this device's default.")
        }
    }
}

/// Why a camera or microphone we had none of could not be turned on.
pub fn device_not_turned_on(kind: crate::devices::DeviceKind, dom_exception_name: &str) -> String {
    let what = kind.word();
    match dom_exception_name {
        "NotAllowedError" | "SecurityError" => format!(
            "This site isn't allowed to use the {what}. Allow it in the browser's site settings, then try again."
        ),
        "NotFoundError" | "OverconstrainedError" => format!("No {what} was found."),
        "NotReadableError" | "AbortError" => {
            format!("The {what} is in use by another app or could not be started.")
        }
        _ => format!("The {what} could not be started."),
    }
}

/// A device the person picked could not be started.
pub fn device_not_switched(kind: crate::devices::DeviceKind, dom_exception_name: &str) -> String {
    let what = kind.word();
    let cause = match dom_exception_name {
        "NotAllowedError" | "SecurityError" => {
            format!("This site isn't allowed to use that {what}.")
        }
        "NotFoundError" | "OverconstrainedError" => format!("That {what} is no longer there."),
        "NotReadableError" | "AbortError" => {
            format!("That {what} is in use by another app or could not be started.")
        }
        _ => format!("That {what} could not be started."),
    };
    format!("{cause} You are still using the one you had.")
}

/// Why the call's video server (Janus) connection ended, for the person in the call. Never
/// quotes Janus's own words (they are for logs).
pub fn sfu_failure(why: &crate::sfu::SfuFailure) -> &'static str {
    use crate::sfu::SfuFailure;
    match why {
        SfuFailure::Unauthorized { .. } => {
            "The video server refused this page's pass, which may have expired. Trying again with a fresh one."
        }
        SfuFailure::NoSuchRoom | SfuFailure::RoomDestroyed => {
            "The video server lost this call's room. Reconnecting…"
        }
        SfuFailure::PublishersFull => {
            "The video server has no room for another camera in this call. Try again when someone leaves."
        }
        SfuFailure::Kicked => "The video server removed this page from the call.",
        SfuFailure::Hangup { .. } => {
            "The connection to the video server broke (often a network change). Reconnecting…"
        }
        SfuFailure::SessionGone | SfuFailure::Timeout { .. } => {
            "The video server stopped answering. Reconnecting…"
        }
        SfuFailure::NoSuchFeed | SfuFailure::BadReply | SfuFailure::Janus { .. } => {
            "The video server and this page disagreed. Reconnecting…"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::DeviceKind;

    #[test]
    fn the_title_in_a_call_counts_people_and_unread_lines() {
        assert_eq!(title_in_call(1, 0), "In call · just you · Conclave");
        assert_eq!(title_in_call(3, 0), "In call · 3 people · Conclave");
        assert_eq!(title_in_call(2, 4), "(4) In call · 2 people · Conclave");
    }

    #[test]
    fn sfu_failures_are_said_without_janus_words() {
        use crate::sfu::SfuFailure;
        let text = sfu_failure(&SfuFailure::Janus {
            code: 490,
            reason: "internal detail".into(),
        });
        assert!(!text.contains("internal detail"));
        assert!(sfu_failure(&SfuFailure::Unauthorized { code: 403 }).contains("fresh"));
        assert!(sfu_failure(&SfuFailure::PublishersFull).contains("no room"));
    }

    #[test]
    fn a_lost_device_is_named_with_what_replaces_it() {
        let text = device_lost(DeviceKind::Camera, "USB cam", Some("Built-in"));
        assert!(text.contains("\"USB cam\" stopped") && text.contains("Now using \"Built-in\""));
        assert!(device_lost(DeviceKind::Microphone, "Headset", None).contains("can't hear you"));
        assert!(device_not_switched(DeviceKind::Camera, "NotReadableError").contains("in use"));
    }

    #[test]
    fn a_device_that_cannot_be_turned_on_says_what_to_do() {
        let denied = device_not_turned_on(DeviceKind::Camera, "NotAllowedError");
        assert!(denied.contains("camera") && denied.contains("site settings"));
        assert_eq!(
            device_not_turned_on(DeviceKind::Microphone, "NotFoundError"),
            "No microphone was found."
        );
        // Never the browser's words.
        assert!(!device_not_turned_on(DeviceKind::Camera, "WeirdError").contains("Weird"));
    }

    #[test]
    fn permission_denied_says_so_and_offers_a_way_in() {
        let text = media_error("NotAllowedError", Devices::Camera);
        assert!(text.contains("isn't allowed to use your camera"));
        assert!(text.contains("You can still join"));
        let text = media_error("NotFoundError", Devices::Both);
        assert!(text.contains("No camera and microphone was found"));
        assert!(media_error("WeirdError", Devices::Microphone).contains("microphone"));
    }

    #[test]
    fn an_unreachable_member_is_named_and_the_reason_given() {
        let text = unreachable(Unreachable::NoRelay, "Bob");
        assert!(text.contains("Can't reach Bob"), "{text}");
        assert!(text.contains("no relay"), "{text}");
        assert!(unreachable(Unreachable::OurNetwork, "Bob").contains("your network"));
        assert!(unreachable(Unreachable::TheirNetwork, "Bob").contains("their network"));
        assert!(unreachable(Unreachable::Unknown, "Bob").contains("Leave and join again"));
    }

    #[test]
    fn a_stalled_check_names_who_is_missing() {
        let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(verification_stalled(&names(&["Bob"]), 0).contains("from Bob haven't"));
        assert!(verification_stalled(&names(&["Bob", "Cyd"]), 0).contains("from Bob and Cyd"));
        assert!(verification_stalled(&names(&["Bob"]), 2).contains("Bob and 2 more people"));
        assert!(verification_stalled(&[], 1).contains("from someone"));
        assert!(tampered(Some("Eve")).contains("from Eve didn't match"));
        assert!(tampered(None).contains("from someone"));
    }

    #[test]
    fn every_server_error_has_words() {
        for code in [
            ErrorCode::BadMessage,
            ErrorCode::TooLarge,
            ErrorCode::RateLimited,
            ErrorCode::RoomFull,
            ErrorCode::NotJoined,
            ErrorCode::AlreadyJoined,
            ErrorCode::UnknownPeer,
            ErrorCode::IdleTimeout,
            ErrorCode::ShuttingDown,
            ErrorCode::SfuUnavailable,
        ] {
            assert!(server_error(code).len() > 10);
        }
        assert!(server_error(ErrorCode::RoomFull).contains("full"));
    }
}
