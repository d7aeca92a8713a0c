//! Command-line and environment configuration.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use clap::builder::RangedU64ValueParser;
use conclave_protocol::signaling::DEFAULT_MAX_PEERS;

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

    /// Most members one room may hold.
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
}

impl Config {
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_secs)
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
        for flag in [
            "--max-peers",
            "--idle-timeout-secs",
            "--rate-per-sec",
            "--rate-burst",
        ] {
            assert!(Config::try_parse_from(["conclave-server", flag, "0"]).is_err());
        }
    }
}
