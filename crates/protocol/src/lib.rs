//! The two conversations Conclave has on the wire, and the app's paths.
//!
//! * [`signaling`]: JSON text frames between a browser and the signaling server over `/ws`. The
//!   server sees these, so they hold nothing but routing: room id, peer ids, opaque blobs.
//! * [`peer`]: what one member says to another (names, SDP, ICE). Always sealed by
//!   `conclave-e2ee` before it becomes a [`Blob`]; the server only ever relays the ciphertext.
//! * [`Page`]: the paths the server answers with the app, and what the page shows for each.

mod blob;
mod bytes32;
mod ids;
mod page;
pub mod peer;
pub mod signaling;

pub use blob::{Blob, BlobError};
pub use bytes32::Bytes32;
pub use ids::{IdError, PeerId, ResumeToken, RoomId};
pub use page::Page;
