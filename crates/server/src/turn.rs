//! TURN credentials in coturn's `use-auth-secret` scheme (the "TURN REST API" draft,
//! draft-uberti-behave-turn-rest-00): the username is `<expiry unix time>:<id>` and the password
//! is base64(HMAC-SHA1(shared secret, username)). coturn recomputes the password from the
//! username and the secret it shares with us, and refuses it once the expiry has passed, so the
//! two services need nothing but that secret in common.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use hmac::{Hmac, KeyInit as _, Mac as _};
use sha1::Sha1;

/// The secret shared with the TURN server. It never shows in a log, a panic, `--help` or a
/// Debug output, and never leaves this process: members get credentials derived from it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl FromStr for Secret {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if s.is_empty() {
            return Err("the TURN secret is empty".into());
        }
        Ok(Self(s.to_owned()))
    }
}

/// One member's TURN username and password, good until the expiry in the username.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"[redacted]")
            .finish()
    }
}

/// The credentials for a member given `id` at `now`, valid for `ttl`. Pure: the caller brings
/// the clock and the randomness ([`random_id`]), so tests can pin both.
pub fn credentials(secret: &Secret, now: SystemTime, ttl: Duration, id: &str) -> Credentials {
    // A clock before 1970 is broken beyond what we can fix; the credentials then simply fail.
    let expiry = now
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .saturating_add(ttl)
        .as_secs();
    let username = format!("{expiry}:{id}");
    let mut mac =
        Hmac::<Sha1>::new_from_slice(secret.0.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(username.as_bytes());
    let password = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    Credentials { username, password }
}

/// 64 random bits as 16 hex characters: tells one member's allocations from another's in
/// coturn's logs, and says nothing about who the member is.
pub fn random_id() -> String {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).expect("the OS random number generator failed");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_match_an_independent_computation() {
        // Computed once with OpenSSL, not with this code:
        // printf '%s' '1700000000:0123456789abcdef' \
        //   | openssl dgst -sha1 -hmac 'north-wind-7' -binary | base64
        let secret: Secret = "north-wind-7".parse().unwrap();
        let now = UNIX_EPOCH + Duration::from_secs(1_699_999_400);
        let got = credentials(&secret, now, Duration::from_secs(600), "0123456789abcdef");
        assert_eq!(got.username, "1700000000:0123456789abcdef");
        assert_eq!(got.password, "kZbIflOHouO4E4scELXfoXzyUmk=");
    }

    #[test]
    fn ids_are_16_hex_characters_and_differ() {
        let (a, b) = (random_id(), random_id());
        for id in [&a, &b] {
            assert_eq!(id.len(), 16);
            assert!(
                id.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')),
                "{id}"
            );
        }
        assert_ne!(a, b);
    }

    #[test]
    fn nothing_secret_shows_in_debug_output() {
        let secret: Secret = "hunter2".parse().unwrap();
        assert_eq!(format!("{secret:?}"), "[redacted]");
        let creds = credentials(&secret, SystemTime::now(), Duration::from_secs(60), "ab");
        let shown = format!("{creds:?}");
        assert!(!shown.contains(&creds.password), "{shown}");
        assert!(shown.contains(&creds.username), "{shown}");
        assert!("".parse::<Secret>().is_err());
    }
}
