//! Call links: `https://HOST/r/ROOM#SECRET`. The secret lives only in the fragment, which
//! browsers never send to a server; it is read once, here, and never written anywhere else.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use conclave_e2ee::{RoomSecret, SecretError};
use conclave_protocol::{Page, RoomId};

use super::window;

/// A fresh, unguessable room id: 72 random bits, 12 URL-safe characters.
pub fn new_room_id() -> RoomId {
    let mut bytes = [0u8; 9];
    conclave_e2ee::random_bytes(&mut bytes);
    RoomId::new(URL_SAFE_NO_PAD.encode(bytes)).expect("12 base64url characters are a valid room id")
}

/// The path and fragment of a brand-new call.
pub fn new_call_path() -> String {
    call_path(&new_room_id(), &RoomSecret::generate())
}

pub fn call_path(room: &RoomId, secret: &RoomSecret) -> String {
    format!("{}#{}", Page::Room(room.as_str()), secret.to_fragment())
}

/// The current page's path, which names the page to show.
pub fn path() -> String {
    window().location().pathname().unwrap_or_default()
}

/// Opens a brand-new call. A full navigation: the call page reads its key from the fragment
/// when it loads.
pub fn open_new_call() {
    let _ = window().location().assign(&new_call_path());
}

/// Loads this page again (to rejoin, or to try again).
pub fn reload() {
    let _ = window().location().reload();
}

/// The full link to share, for the copy button.
pub fn share_link(room: &RoomId, secret: &RoomSecret) -> String {
    let origin = window().location().origin().unwrap_or_default();
    format!("{origin}{}", call_path(room, secret))
}

/// The secret in the current page's fragment.
pub fn secret_from_location() -> Result<RoomSecret, SecretError> {
    let hash = window()
        .location()
        .hash()
        .map_err(|_| SecretError::Missing)?;
    RoomSecret::from_fragment(&hash)
}
