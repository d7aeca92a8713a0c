use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// 32 bytes on the wire as base64url: public keys and (only ever inside a pairwise seal) key
/// material. Debug output never shows the bytes.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bytes32(pub [u8; 32]);

impl Serialize for Bytes32 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&URL_SAFE_NO_PAD.encode(self.0))
    }
}

impl<'de> Deserialize<'de> for Bytes32 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let bytes = URL_SAFE_NO_PAD
            .decode(text.as_bytes())
            .map_err(serde::de::Error::custom)?;
        <[u8; 32]>::try_from(bytes.as_slice())
            .map(Bytes32)
            .map_err(|_| serde::de::Error::custom("expected 32 bytes"))
    }
}

impl std::fmt::Debug for Bytes32 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Bytes32(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_wrong_lengths() {
        let b = Bytes32([7; 32]);
        let json = serde_json::to_string(&b).unwrap();
        assert_eq!(serde_json::from_str::<Bytes32>(&json).unwrap(), b);
        assert!(serde_json::from_str::<Bytes32>("\"AAAA\"").is_err());
        assert!(serde_json::from_str::<Bytes32>("\"!!\"").is_err());
        assert_eq!(format!("{b:?}"), "Bytes32(..)");
    }
}
