use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a room or peer id was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("must be {min} to {max} characters long")]
    Length { min: usize, max: usize },
    #[error("may only hold letters, digits, '-' and '_'")]
    Charset,
}

fn check(s: &str, min: usize, max: usize) -> Result<(), IdError> {
    if !(min..=max).contains(&s.len()) {
        return Err(IdError::Length { min, max });
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(IdError::Charset);
    }
    Ok(())
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $min:expr, $max:expr) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub const MIN_LEN: usize = $min;
            pub const MAX_LEN: usize = $max;

            pub fn new(s: impl Into<String>) -> Result<Self, IdError> {
                let s = s.into();
                check(&s, Self::MIN_LEN, Self::MAX_LEN)?;
                Ok(Self(s))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                Self::new(s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::new(s)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }
    };
}

id_type!(
    /// The path part of a call link (`/r/ROOM`). It routes the WebSocket and carries no key; the
    /// minimum length keeps made-up room ids from being short enough to guess.
    RoomId,
    8,
    64
);

id_type!(
    /// An opaque member id the server hands out on join; a member keeps it across reconnects
    /// by presenting its [`ResumeToken`].
    PeerId,
    1,
    32
);

/// Proof that a connection may take over a member id again (after a dropped socket or a
/// server restart): the server hands it out in `welcome`, to that member only. A credential,
/// so its `Debug` hides it.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ResumeToken(String);

impl ResumeToken {
    pub fn new(s: impl Into<String>) -> Result<Self, IdError> {
        let s = s.into();
        check(&s, 16, 64)?;
        Ok(Self(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ResumeToken {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, IdError> {
        Self::new(s)
    }
}

impl From<ResumeToken> for String {
    fn from(token: ResumeToken) -> String {
        token.0
    }
}

impl fmt::Debug for ResumeToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ResumeToken([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_ids_are_url_safe_and_long_enough() {
        assert!(RoomId::new("abcdEFGH_-12").is_ok());
        assert_eq!(
            RoomId::new("short"),
            Err(IdError::Length { min: 8, max: 64 })
        );
        assert_eq!(RoomId::new("has/slash1"), Err(IdError::Charset));
        assert_eq!(RoomId::new("has#hash12"), Err(IdError::Charset));
        assert!(RoomId::new("x".repeat(65)).is_err());
    }

    #[test]
    fn ids_refuse_bad_input_when_deserialized() {
        assert!(serde_json::from_str::<RoomId>("\"abcdefgh\"").is_ok());
        assert!(serde_json::from_str::<RoomId>("\"a b c d e\"").is_err());
        assert!(serde_json::from_str::<PeerId>("\"\"").is_err());
    }

    #[test]
    fn resume_tokens_are_url_safe_and_never_shown() {
        let t = ResumeToken::new("AbCdEfGhIjKlMnOpQrStUv_-12").unwrap();
        assert_eq!(format!("{t:?}"), "ResumeToken([redacted])");
        assert!(ResumeToken::new("short").is_err());
        assert!(ResumeToken::new("has spaces in it, quite long").is_err());
    }
}
