//! AES-256-GCM sealing of one message for one recipient, shared by the signaling key and the
//! pairwise keys.
//!
//! Wire format: `VERSION || nonce (12) || ciphertext || tag`. The AAD binds a label (which key
//! kind), the room, the sender and the recipient, each length-prefixed, so a relay that
//! re-addresses a message, moves it to another room or to another layer only gets it dropped.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use conclave_protocol::{PeerId, RoomId};

const VERSION: u8 = 1;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// Why a sealed message was dropped. None of these say anything about the content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    #[error("sealed message is too short or of an unknown version")]
    Malformed,
    /// Wrong key, or a message re-addressed, altered or sealed for another room.
    #[error("sealed message failed authentication")]
    Forged,
}

pub(crate) struct Sealer {
    cipher: Aes256Gcm,
    label: &'static [u8],
    room: RoomId,
}

impl Sealer {
    pub(crate) fn new(key: &[u8; 32], label: &'static [u8], room: &RoomId) -> Self {
        Self {
            cipher: Aes256Gcm::new(key.into()),
            label,
            room: room.clone(),
        }
    }

    pub(crate) fn seal(&self, from: &PeerId, to: &PeerId, plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        crate::random_bytes(&mut nonce);
        let ciphertext = self
            .cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad: &self.aad(from, to),
                },
            )
            .expect("AES-GCM encryption of a short message cannot fail");
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        out
    }

    pub(crate) fn open(
        &self,
        from: &PeerId,
        to: &PeerId,
        sealed: &[u8],
    ) -> Result<Vec<u8>, OpenError> {
        if sealed.len() < 1 + NONCE_LEN + TAG_LEN || sealed[0] != VERSION {
            return Err(OpenError::Malformed);
        }
        let (nonce, ciphertext) = sealed[1..].split_at(NONCE_LEN);
        let nonce = <[u8; NONCE_LEN]>::try_from(nonce).expect("split at NONCE_LEN");
        self.cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &self.aad(from, to),
                },
            )
            .map_err(|_| OpenError::Forged)
    }

    fn aad(&self, from: &PeerId, to: &PeerId) -> Vec<u8> {
        let mut aad = Vec::with_capacity(64);
        aad.extend_from_slice(self.label);
        aad.push(VERSION);
        for part in [self.room.as_str(), from.as_str(), to.as_str()] {
            aad.extend_from_slice(&(part.len() as u16).to_be_bytes());
            aad.extend_from_slice(part.as_bytes());
        }
        aad
    }
}
