//! Command-line and environment configuration.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use clap::builder::RangedU64ValueParser;
use conclave_protocol::signaling::{DEFAULT_MAX_PEERS, DEFAULT_SFU_ABOVE, DEFAULT_SFU_MAX_PEERS};

use crate::ice::{IceConfig, IceUrl};
use crate::origin;
use crate::turn::Secret;

/// Conclave's signaling server: relays sealed blobs between the members of a room and serves
/// the web app.
#[derive(Debug, Clone, Parser)]
#[command(name = "conclave-server", version, about)]
pub struct Config {
    /// Address to listen on, HOST:PORT. Port 0 picks a free port; the line printed on start
    /// says which.
    #[arg(long, env = "CONCLAVE_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: String,

    /// Directory holding the built web app (`cargo xtask serve` builds it).
    #[arg(long, env = "CONCLAVE_STATIC_DIR", default_value = "dist")]
    pub static_dir: PathBuf,

    /// Most members one room may hold without an SFU (with one: --sfu-max-peers).
    #[arg(long, default_value_t = DEFAULT_MAX_PEERS,
          value_parser = RangedU64ValueParser::<usize>::new().range(1..))]
    pub max_peers: usize,

    /// Seconds without any message from a client before its connection is closed.
    #[arg(long, default_value_t = 30, value_parser = RangedU64ValueParser::<u64>::new().range(1..))]
    pub idle_timeout_secs: u64,

    /// Sustained messages per second one connection may send.
    #[arg(long, default_value_t = 20, value_parser = RangedU64ValueParser::<u32>::new().range(1..))]
    pub rate_per_sec: u32,

    /// Messages one connection may send in a burst above the sustained rate.
    #[arg(long, default_value_t = 200, value_parser = RangedU64ValueParser::<u32>::new().range(1..))]
    pub rate_burst: u32,

    /// Serve HTTPS and WSS with this certificate chain (PEM, e.g. certbot's fullchain.pem).
    /// Replaced files are picked up within seconds (or at once on SIGHUP), without a restart.
    #[arg(
        long,
        env = "CONCLAVE_TLS_CERT",
        value_name = "PATH",
        requires = "tls_key",
        help_heading = "HTTPS"
    )]
    pub tls_cert: Option<PathBuf>,

    /// The certificate's private key (PEM: PKCS#8, PKCS#1 or SEC1, e.g. certbot's
    /// privkey.pem). Given together with --tls-cert, never alone.
    #[arg(
        long,
        env = "CONCLAVE_TLS_KEY",
        value_name = "PATH",
        requires = "tls_cert",
        help_heading = "HTTPS"
    )]
    pub tls_key: Option<PathBuf>,

    /// Serve HTTPS with a certificate made at start and signed by nobody, to try Conclave on
    /// a LAN. Every browser warns about it; see the warning printed at start.
    #[arg(long, conflicts_with_all = ["tls_cert", "tls_key"], help_heading = "HTTPS")]
    pub tls_self_signed: bool,

    /// Another name (DNS name or IP address) the self-signed certificate should cover;
    /// repeatable. It already covers localhost and this machine's addresses.
    #[arg(
        long = "tls-name",
        value_name = "NAME",
        requires = "tls_self_signed",
        help_heading = "HTTPS"
    )]
    pub tls_names: Vec<String>,

    /// How often to look for a renewed certificate, in seconds.
    #[arg(long, default_value_t = 5, hide = true,
          value_parser = RangedU64ValueParser::<u64>::new().range(1..))]
    pub tls_reload_secs: u64,

    /// A browser origin besides our own that may open the WebSocket, e.g. the public
    /// https://call.example.org when a reverse proxy rewrites the Host header; repeatable.
    #[arg(long = "allowed-origin", value_name = "ORIGIN", value_parser = origin::parse,
          help_heading = "HTTPS")]
    pub allowed_origins: Vec<String>,

    /// How long a member whose connection dropped (not one who left) keeps its place for a
    /// resume before the others are told it left, in milliseconds.
    #[arg(long, default_value_t = 5_000, hide = true)]
    pub resume_grace_ms: u64,

    /// Where the key for resume tokens lives (made on first start, readable by the owner
    /// only). With it, members whose connection drops come back as themselves even after this
    /// server restarts; without, only while it keeps running.
    #[arg(long, env = "CONCLAVE_RESUME_KEY_FILE", value_name = "PATH")]
    pub resume_key_file: Option<PathBuf>,

    /// Share rooms with other instances through this Redis (redis:// URL), so
    /// members connected to different instances are in one call. Every instance behind one
    /// Redis needs the same --resume-key-file. Without it, rooms live in this process only.
    /// Prefer the environment variable when the URL holds a password.
    #[arg(
        long,
        env = "CONCLAVE_REDIS",
        hide_env_values = true,
        value_name = "URL",
        value_parser = parse_redis_url
    )]
    pub redis: Option<RedisUrl>,

    /// A STUN server members use to learn their public address (stun: or stuns: URL);
    /// repeatable.
    #[arg(long = "stun", value_name = "URL", value_parser = IceUrl::stun, help_heading = "Network traversal")]
    pub stun: Vec<IceUrl>,

    /// A TURN server that relays media between members who cannot reach each other directly
    /// (turn: or turns: URL, optionally with ?transport=udp or ?transport=tcp); repeatable.
    /// Needs --turn-secret.
    #[arg(long = "turn", value_name = "URL", value_parser = IceUrl::turn,
          requires = "turn_secret", help_heading = "Network traversal")]
    pub turn: Vec<IceUrl>,

    /// The secret shared with the TURN server (coturn's static-auth-secret with
    /// use-auth-secret). Members get credentials derived from it, never the secret itself.
    /// Prefer the environment variable: a command line is visible to every user of the machine.
    #[arg(
        long,
        env = "CONCLAVE_TURN_SECRET",
        hide_env_values = true,
        value_name = "SECRET",
        help_heading = "Network traversal"
    )]
    pub turn_secret: Option<Secret>,

    /// How long a member's TURN credentials stay valid, in seconds. A call that outlives them
    /// keeps its relay until the relay's own allocation lifetime ends.
    #[arg(long, default_value_t = 86_400, value_name = "SECONDS",
          value_parser = RangedU64ValueParser::<u64>::new().range(60..),
          help_heading = "Network traversal")]
    pub turn_ttl: u64,

    /// The Janus API (WebSocket transport) of the SFU that calls above --sfu-above members go
    /// through, e.g. ws://127.0.0.1:8188. Browsers reach it through this server's /sfu, so it
    /// should listen on loopback only. Needs --sfu-admin-url and --sfu-secret-file.
    #[arg(long, env = "CONCLAVE_SFU_URL", value_name = "URL", value_parser = crate::sfu::parse_ws_url,
          requires_all = ["sfu_admin_url", "sfu_secret_file"], help_heading = "SFU (Janus)")]
    pub sfu_url: Option<String>,

    /// Janus's Admin API (WebSocket transport, admin_ws), e.g. ws://127.0.0.1:7188: where
    /// member tokens are added and removed and rooms made.
    #[arg(long, env = "CONCLAVE_SFU_ADMIN_URL", value_name = "URL", value_parser = crate::sfu::parse_ws_url,
          requires = "sfu_url", help_heading = "SFU (Janus)")]
    pub sfu_admin_url: Option<String>,

    /// A file (readable by this server only) with Janus's secrets, one `key = value` a line:
    /// `admin_secret` (janus.jcfg) and `admin_key` (the VideoRoom plugin's).
    #[arg(
        long,
        env = "CONCLAVE_SFU_SECRET_FILE",
        value_name = "PATH",
        requires = "sfu_url",
        help_heading = "SFU (Janus)"
    )]
    pub sfu_secret_file: Option<PathBuf>,

    /// With an SFU: calls with more members than this go through it; smaller ones stay peer
    /// to peer.
    #[arg(long, default_value_t = DEFAULT_SFU_ABOVE, value_name = "MEMBERS",
          value_parser = RangedU64ValueParser::<usize>::new().range(1..),
          help_heading = "SFU (Janus)")]
    pub sfu_above: usize,

    /// With an SFU: most members one room may hold (instead of --max-peers).
    #[arg(long, default_value_t = DEFAULT_SFU_MAX_PEERS, value_name = "MEMBERS",
          value_parser = RangedU64ValueParser::<usize>::new().range(1..),
          help_heading = "SFU (Janus)")]
    pub sfu_max_peers: usize,

    /// How long a member's SFU token works, in seconds; members ask for a new one before.
    #[arg(long, default_value_t = 600, hide = true,
          value_parser = RangedU64ValueParser::<u64>::new().range(1..))]
    pub sfu_token_ttl: u64,
}

/// A Redis URL, as the `redis` crate reads it. It may hold a password, so its `Debug` does not
/// show it (clap does repeat a value it refuses, to whoever typed it).
#[derive(Clone, PartialEq, Eq)]
pub struct RedisUrl(String);

impl RedisUrl {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedisUrl(..)")
    }
}

fn parse_redis_url(url: &str) -> Result<RedisUrl, String> {
    if !(url.starts_with("redis://") || url.starts_with("unix://")) {
        return Err("should start with redis:// (or unix:// for a socket)".into());
    }
    redis::Client::open(url)
        .map(|_| RedisUrl(url.to_owned()))
        .map_err(|_| "not a Redis URL the server can use".into())
}

impl Config {
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_secs)
    }

    pub fn resume_grace(&self) -> Duration {
        Duration::from_millis(self.resume_grace_ms)
    }

    pub fn ice(&self) -> IceConfig {
        IceConfig {
            stun: self.stun.clone(),
            turn: self.turn.clone(),
            turn_secret: self.turn_secret.clone(),
            turn_ttl: Duration::from_secs(self.turn_ttl),
        }
    }

    /// The most members a room holds: the SFU's limit when there is one.
    pub fn room_limit(&self) -> usize {
        if self.sfu_url.is_some() {
            self.sfu_max_peers
        } else {
            self.max_peers
        }
    }

    /// Whether the server speaks TLS itself.
    pub fn tls(&self) -> bool {
        self.tls_cert.is_some() || self.tls_self_signed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let c = Config::try_parse_from(["conclave-server"]).unwrap();
        assert_eq!(c.max_peers, DEFAULT_MAX_PEERS);
        assert_eq!(c.idle_timeout_secs, 30);
        assert_eq!((c.rate_per_sec, c.rate_burst), (20, 200));
        // The env vars may be set in a developer's shell; only check the fallbacks when not.
        if std::env::var_os("CONCLAVE_ADDR").is_none() {
            assert_eq!(c.addr, "127.0.0.1:8080");
        }
        if std::env::var_os("CONCLAVE_STATIC_DIR").is_none() {
            assert_eq!(c.static_dir, PathBuf::from("dist"));
        }
    }

    #[test]
    fn flags_override_and_zero_limits_are_refused() {
        let c = Config::try_parse_from([
            "conclave-server",
            "--addr",
            "127.0.0.1:0",
            "--max-peers",
            "3",
            "--idle-timeout-secs",
            "2",
            "--rate-per-sec",
            "5",
            "--rate-burst",
            "10",
        ])
        .unwrap();
        assert_eq!(c.addr, "127.0.0.1:0");
        assert_eq!(c.max_peers, 3);
        assert_eq!(c.idle_timeout(), Duration::from_secs(2));
        assert_eq!((c.rate_per_sec, c.rate_burst), (5, 10));
        assert!(!c.tls());
        for flag in [
            "--max-peers",
            "--idle-timeout-secs",
            "--rate-per-sec",
            "--rate-burst",
        ] {
            assert!(Config::try_parse_from(["conclave-server", flag, "0"]).is_err());
        }
    }

    #[test]
    fn tls_flags_come_in_pairs() {
        let parse = |args: &[&str]| {
            Config::try_parse_from(std::iter::once("conclave-server").chain(args.iter().copied()))
        };
        if std::env::var_os("CONCLAVE_TLS_CERT").is_none()
            && std::env::var_os("CONCLAVE_TLS_KEY").is_none()
        {
            assert!(parse(&["--tls-cert", "c.pem"]).is_err());
            assert!(parse(&["--tls-key", "k.pem"]).is_err());
        }
        let c = parse(&["--tls-cert", "c.pem", "--tls-key", "k.pem"]).unwrap();
        assert!(c.tls());
        assert!(
            parse(&[
                "--tls-self-signed",
                "--tls-cert",
                "c.pem",
                "--tls-key",
                "k.pem"
            ])
            .is_err()
        );
        assert!(parse(&["--tls-name", "x.local"]).is_err());
        let c = parse(&["--tls-self-signed", "--tls-name", "x.local"]).unwrap();
        assert!(c.tls());
        assert_eq!(c.tls_names, ["x.local"]);
    }

    #[test]
    fn redis_is_off_by_default_and_its_url_never_shows() {
        let parse = |args: &[&str]| {
            Config::try_parse_from(std::iter::once("conclave-server").chain(args.iter().copied()))
        };
        if std::env::var_os("CONCLAVE_REDIS").is_none() {
            assert!(parse(&[]).unwrap().redis.is_none());
        }
        let c = parse(&["--redis", "redis://:hunter2@127.0.0.1:6379/0"]).unwrap();
        assert_eq!(
            c.redis.as_ref().map(RedisUrl::as_str),
            Some("redis://:hunter2@127.0.0.1:6379/0")
        );
        assert!(
            !format!("{c:?}").contains("hunter2"),
            "the password shows in {c:?}"
        );
        let err = parse(&["--redis", "http://:hunter2@x"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("should start with redis://"), "{err}");
    }

    #[test]
    fn sfu_flags_come_together_and_change_the_room_limit() {
        let parse = |args: &[&str]| {
            Config::try_parse_from(std::iter::once("conclave-server").chain(args.iter().copied()))
        };
        let sfu_env = [
            "CONCLAVE_SFU_URL",
            "CONCLAVE_SFU_ADMIN_URL",
            "CONCLAVE_SFU_SECRET_FILE",
        ];
        if sfu_env.iter().all(|k| std::env::var_os(k).is_none()) {
            let c = parse(&[]).unwrap();
            assert_eq!(c.sfu_url, None);
            assert_eq!(c.room_limit(), DEFAULT_MAX_PEERS);
            assert!(parse(&["--sfu-url", "ws://127.0.0.1:8188"]).is_err());
            assert!(parse(&["--sfu-admin-url", "ws://127.0.0.1:7188"]).is_err());
            assert!(parse(&["--sfu-secret-file", "s"]).is_err());
        }
        let full = [
            "--sfu-url",
            "ws://127.0.0.1:8188",
            "--sfu-admin-url",
            "ws://127.0.0.1:7188",
            "--sfu-secret-file",
            "/etc/conclave/sfu-secrets",
        ];
        let c = parse(&full).unwrap();
        assert_eq!(c.sfu_above, DEFAULT_SFU_ABOVE);
        assert_eq!(c.room_limit(), DEFAULT_SFU_MAX_PEERS);
        assert_eq!(c.sfu_token_ttl, 600);
        let mut more = full.to_vec();
        more.extend(["--sfu-above", "3", "--sfu-max-peers", "20"]);
        let c = parse(&more).unwrap();
        assert_eq!((c.sfu_above, c.room_limit()), (3, 20));
        for bad in ["http://127.0.0.1:8188", "127.0.0.1:8188", "ws://"] {
            let mut args = full.to_vec();
            args[1] = bad;
            assert!(parse(&args).is_err(), "{bad} was accepted");
        }
        assert!(parse(&["--sfu-above", "0"]).is_err());
    }

    #[test]
    fn turn_needs_its_secret_and_good_urls() {
        let parse = |args: &[&str]| {
            Config::try_parse_from(std::iter::once("conclave-server").chain(args.iter().copied()))
        };
        if std::env::var_os("CONCLAVE_TURN_SECRET").is_none() {
            let err = parse(&["--turn", "turn:t.example.org"])
                .unwrap_err()
                .to_string();
            assert!(err.contains("--turn-secret"), "{err}");
        }
        let c = parse(&[
            "--stun",
            "stun:s.example.org",
            "--turn",
            "turn:t.example.org:3478?transport=udp",
            "--turn",
            "turns:t.example.org:5349?transport=tcp",
            "--turn-secret",
            "xyz",
        ])
        .unwrap();
        assert_eq!(c.turn.len(), 2);
        assert_eq!(c.turn_ttl, 86_400);
        assert!(
            !format!("{c:?}").contains("xyz"),
            "the secret shows in {c:?}"
        );
        let err = parse(&["--turn", "http://x", "--turn-secret", "s"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("should start with turn"), "{err}");
        assert!(parse(&["--turn-ttl", "59"]).is_err());
    }
}
