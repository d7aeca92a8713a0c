use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

/// Sealed bytes on their way through the server, base64 in JSON. The server checks nothing in
/// here but the size: it cannot read it, and it must not try.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Blob(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a sealed message was not valid base64")]
pub struct BlobError;

impl Blob {
    pub fn from_bytes(bytes: &[u8]) -> Self {
        Self(STANDARD.encode(bytes))
    }

    pub fn to_bytes(&self) -> Result<Vec<u8>, BlobError> {
        STANDARD.decode(&self.0).map_err(|_| BlobError)
    }

    /// Size on the wire, which is what the server limits.
    pub fn encoded_len(&self) -> usize {
        self.0.len()
    }
}

impl std::fmt::Debug for Blob {
    // Ciphertext is harmless, but logging blobs is how a plaintext one would leak one day.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Blob({} bytes)", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_bytes() {
        let bytes: Vec<u8> = (0..=255).collect();
        assert_eq!(Blob::from_bytes(&bytes).to_bytes().unwrap(), bytes);
    }

    #[test]
    fn refuses_non_base64() {
        let blob: Blob = serde_json::from_str("\"not base64!\"").unwrap();
        assert_eq!(blob.to_bytes(), Err(BlobError));
    }

    #[test]
    fn debug_never_shows_content() {
        let blob = Blob::from_bytes(b"secret-looking");
        assert!(!format!("{blob:?}").contains(&blob.0));
    }
}
