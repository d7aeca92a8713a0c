use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// The room secret: 32 random bytes, carried base64url-encoded in the link's fragment, which
/// browsers never send to a server.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct RoomSecret([u8; RoomSecret::LEN]);

/// Why a link's fragment is not a room secret. Never carries the fragment itself, so it is safe
/// to show and to log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("the link has no key after '#'")]
    Missing,
    #[error("the key after '#' in the link is damaged or incomplete")]
    Malformed,
}

impl RoomSecret {
    pub const LEN: usize = 32;

    pub fn generate() -> Self {
        let mut bytes = [0u8; Self::LEN];
        crate::random_bytes(&mut bytes);
        Self(bytes)
    }

    /// Parses the fragment of a call link, with or without its leading `#`.
    pub fn from_fragment(fragment: &str) -> Result<Self, SecretError> {
        let text = fragment.strip_prefix('#').unwrap_or(fragment).trim();
        if text.is_empty() {
            return Err(SecretError::Missing);
        }
        let mut decoded = URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| SecretError::Malformed)?;
        let result = <[u8; Self::LEN]>::try_from(decoded.as_slice())
            .map(Self)
            .map_err(|_| SecretError::Malformed);
        decoded.zeroize();
        result
    }

    /// The fragment for a call link, without the `#`.
    pub fn to_fragment(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }

    pub(crate) fn bytes(&self) -> &[u8; Self::LEN] {
        &self.0
    }
}

impl std::fmt::Debug for RoomSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RoomSecret(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragment_round_trip() {
        let secret = RoomSecret::generate();
        let fragment = secret.to_fragment();
        assert_eq!(fragment.len(), 43);
        assert!(
            fragment
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        let parsed = RoomSecret::from_fragment(&format!("#{fragment}")).unwrap();
        assert_eq!(parsed.bytes(), secret.bytes());
    }

    #[test]
    fn bad_fragments_are_refused_without_echoing_them() {
        assert_eq!(
            RoomSecret::from_fragment("").unwrap_err(),
            SecretError::Missing
        );
        assert_eq!(
            RoomSecret::from_fragment("#").unwrap_err(),
            SecretError::Missing
        );
        let short = &RoomSecret::generate().to_fragment()[..40];
        let err = RoomSecret::from_fragment(short).unwrap_err();
        assert_eq!(err, SecretError::Malformed);
        assert!(!err.to_string().contains(short));
        assert_eq!(
            RoomSecret::from_fragment("#not*base64").unwrap_err(),
            SecretError::Malformed
        );
    }

    #[test]
    fn debug_hides_the_secret() {
        let secret = RoomSecret::generate();
        assert_eq!(format!("{secret:?}"), "RoomSecret(..)");
    }
}
