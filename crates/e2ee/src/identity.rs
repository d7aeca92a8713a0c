//! A member's X25519 key pair for one session: made when joining, never stored, gone when the
//! page closes.

use conclave_protocol::Bytes32;
use x25519_dalek::{PublicKey, StaticSecret};

pub struct Identity {
    secret: StaticSecret,
    public: Bytes32,
}

impl Identity {
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        crate::random_bytes(&mut bytes);
        let secret = StaticSecret::from(bytes);
        let public = Bytes32(PublicKey::from(&secret).to_bytes());
        Self { secret, public }
    }

    pub fn public(&self) -> &Bytes32 {
        &self.public
    }

    /// The Diffie-Hellman secret with `theirs`, or `None` for a low-order point that would make
    /// it predictable (a forged public key).
    pub(crate) fn agree(&self, theirs: &Bytes32) -> Option<[u8; 32]> {
        let shared = self.secret.diffie_hellman(&PublicKey::from(theirs.0));
        shared.was_contributory().then(|| shared.to_bytes())
    }
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Identity(..)")
    }
}
