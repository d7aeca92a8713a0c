//! The STUN and TURN servers members connect through: their URLs, checked at start, and the
//! `iceServers` each member is welcomed with. Every join gets TURN credentials of its own
//! ([`crate::turn`]), handed to that member only, so nothing a member holds outlives its
//! `--turn-ttl`, and the shared secret itself never leaves this process.

use std::time::{Duration, SystemTime};

use conclave_protocol::signaling::IceServer;

use crate::turn::{self, Secret};

/// A `stun:`/`stuns:` or `turn:`/`turns:` URL (RFC 7064, RFC 7065), checked at start so that a
/// typo is an error on the command line rather than a call that silently never relays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IceUrl(String);

impl IceUrl {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn parse(s: &str, schemes: [&str; 2]) -> Result<Self, String> {
        let (scheme, rest) = s
            .split_once(':')
            .ok_or_else(|| format!("{s:?} has no scheme; expected {}:HOST[:PORT]", schemes[0]))?;
        if !schemes.contains(&scheme) {
            return Err(format!(
                "{s:?} should start with {} or {}",
                schemes[0], schemes[1]
            ));
        }
        let (authority, query) = match rest.split_once('?') {
            Some((a, q)) => (a, Some(q)),
            None => (rest, None),
        };
        check_host_port(authority).map_err(|why| format!("{s:?}: {why}"))?;
        if let Some(query) = query {
            if scheme.starts_with("stun") {
                return Err(format!("{s:?}: STUN URLs take no ?transport="));
            }
            if !matches!(query, "transport=udp" | "transport=tcp") {
                return Err(format!(
                    "{s:?}: the only query a TURN URL takes is ?transport=udp or ?transport=tcp"
                ));
            }
        }
        Ok(Self(s.to_owned()))
    }

    pub fn stun(s: &str) -> Result<Self, String> {
        Self::parse(s, ["stun", "stuns"])
    }

    pub fn turn(s: &str) -> Result<Self, String> {
        Self::parse(s, ["turn", "turns"])
    }
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`; no user info, no path.
fn check_host_port(authority: &str) -> Result<(), String> {
    let port = if let Some(rest) = authority.strip_prefix('[') {
        let (v6, after) = rest.split_once(']').ok_or("an unclosed [")?;
        v6.parse::<std::net::Ipv6Addr>()
            .map_err(|_| format!("{v6:?} is not an IPv6 address"))?;
        match after {
            "" => None,
            _ => Some(
                after
                    .strip_prefix(':')
                    .ok_or("junk after the IPv6 address")?,
            ),
        }
    } else {
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        };
        let valid = !host.is_empty()
            && host.len() <= 253
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
        if !valid {
            return Err(format!("{host:?} is not a host name or IPv4 address"));
        }
        port
    };
    match port {
        None => Ok(()),
        // Digits only: `u16::from_str` would also take "+80".
        Some(p) if p.bytes().all(|b| b.is_ascii_digit()) && matches!(p.parse::<u16>(), Ok(1..)) => {
            Ok(())
        }
        Some(p) => Err(format!("{p:?} is not a port (1 to 65535)")),
    }
}

/// What the server hands members to connect through.
#[derive(Debug, Clone, Default)]
pub struct IceConfig {
    pub stun: Vec<IceUrl>,
    pub turn: Vec<IceUrl>,
    /// Shared with coturn (`static-auth-secret`); required when `turn` is not empty.
    pub turn_secret: Option<Secret>,
    pub turn_ttl: Duration,
}

impl IceConfig {
    /// The `iceServers` for one member joining now: every STUN URL, and every TURN URL with
    /// credentials made for this member alone.
    pub fn for_member(&self, now: SystemTime) -> Vec<IceServer> {
        let mut servers = Vec::new();
        if !self.stun.is_empty() {
            servers.push(IceServer {
                urls: self.stun.iter().map(|u| u.0.clone()).collect(),
                username: None,
                credential: None,
            });
        }
        if let (false, Some(secret)) = (self.turn.is_empty(), &self.turn_secret) {
            let mine = turn::credentials(secret, now, self.turn_ttl, &turn::random_id());
            servers.push(IceServer {
                urls: self.turn.iter().map(|u| u.0.clone()).collect(),
                username: Some(mine.username),
                credential: Some(mine.password),
            });
        }
        servers
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn each_member_gets_its_own_credentials_expiring_after_the_ttl() {
        let config = IceConfig {
            stun: vec![IceUrl::stun("stun:stun.example.org").unwrap()],
            turn: vec![
                IceUrl::turn("turn:turn.example.org:3478?transport=udp").unwrap(),
                IceUrl::turn("turns:turn.example.org:5349?transport=tcp").unwrap(),
            ],
            turn_secret: Some("s3cret".parse().unwrap()),
            turn_ttl: Duration::from_secs(600),
        };
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let one = config.for_member(now);
        let two = config.for_member(now);
        assert_eq!(one.len(), 2);
        assert_eq!(one[0].urls, ["stun:stun.example.org"]);
        assert!(one[0].username.is_none() && one[0].credential.is_none());
        assert_eq!(one[1].urls.len(), 2);
        let user = one[1].username.as_deref().unwrap();
        let (expiry, id) = user.split_once(':').unwrap();
        assert_eq!(expiry, "1800000600");
        assert_eq!(id.len(), 16);
        assert_ne!(one[1].username, two[1].username, "fresh for every join");
        assert_ne!(one[1].credential, two[1].credential);
        let expected = turn::credentials(
            config.turn_secret.as_ref().unwrap(),
            now,
            config.turn_ttl,
            id,
        );
        assert_eq!(
            one[1].credential.as_deref(),
            Some(expected.password.as_str())
        );
    }

    #[test]
    fn without_servers_there_is_nothing_to_hand_out() {
        assert!(
            IceConfig::default()
                .for_member(SystemTime::now())
                .is_empty()
        );
    }

    #[test]
    fn urls_are_checked() {
        for good in [
            "stun:stun.example.org",
            "stun:192.0.2.1:3478",
            "stuns:stun.example.org:5349",
            "stun:[2001:db8::1]:3478",
            "stun:[2001:db8::1]",
        ] {
            IceUrl::stun(good).unwrap_or_else(|e| panic!("{good}: {e}"));
        }
        for good in [
            "turn:turn.example.org",
            "turn:turn.example.org:3478?transport=udp",
            "turns:turn.example.org:5349?transport=tcp",
            "turn:[2001:db8::1]:3478?transport=udp",
        ] {
            IceUrl::turn(good).unwrap_or_else(|e| panic!("{good}: {e}"));
        }
        for bad in [
            "",
            "turn.example.org",
            "http://turn.example.org",
            "turn:turn.example.org",
            "stun:",
            "stun:host:0",
            "stun:host:99999",
            "stun:host:+80",
            "stun:host:",
            "stun:host?transport=udp",
            "stun:us er@host",
            "stun:host/path",
            "stun:[::1",
        ] {
            assert!(IceUrl::stun(bad).is_err(), "{bad} accepted as STUN");
        }
        for bad in [
            "stun:turn.example.org",
            "turn:host?transport=sctp",
            "turn:host?foo=bar",
            "turn:host:3478?transport=udp&x=1",
        ] {
            assert!(IceUrl::turn(bad).is_err(), "{bad} accepted as TURN");
        }
        let err = IceUrl::turn("turn:host?transport=sctp").unwrap_err();
        assert!(err.contains("transport=udp"), "{err}");
    }

    #[test]
    fn the_secret_never_shows_in_debug_output() {
        let secret: Secret = "hunter2".parse().unwrap();
        let config = IceConfig {
            turn_secret: Some(secret),
            ..IceConfig::default()
        };
        let shown = format!("{config:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("[redacted]"));
    }
}
