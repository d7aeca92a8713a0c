//! Debian's coturn, the TURN relay, run for one test with `deploy/turnserver.conf` (the file a
//! real host uses) and a shared secret of its own.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::harness::{Proc, TempDir};
use crate::netns::Namespace;

const PORT: u16 = 3478;

pub struct Coturn {
    _proc: Proc,
    dir: TempDir,
    /// The `--turn` URL for our server.
    pub url: String,
    /// coturn's `static-auth-secret`, which our server signs credentials with.
    pub secret: String,
}

/// `deploy/turnserver.conf` for one test: its secret, its addresses, no TLS listener (the
/// test has no certificate for coturn) and its files in `dir`. Everything else, the denied
/// peer ranges above all, is what a real host runs.
fn config(ip: Ipv4Addr, secret: &str, dir: &std::path::Path) -> String {
    let deployed = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/turnserver.conf"),
    )
    .expect("deploy/turnserver.conf");
    let mut lines: Vec<String> = deployed
        .lines()
        .filter(|l| {
            ![
                "cert=",
                "pkey=",
                "log-file=",
                "tls-listening-port=",
                "realm=",
            ]
            .iter()
            .any(|k| l.starts_with(k))
        })
        .map(|l| {
            if l.starts_with("static-auth-secret=") {
                format!("static-auth-secret={secret}")
            } else {
                l.to_owned()
            }
        })
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l == &format!("static-auth-secret={secret}")),
        "deploy/turnserver.conf has no static-auth-secret line"
    );
    let d = dir.display();
    lines.extend([
        format!("listening-ip={ip}"),
        format!("relay-ip={ip}"),
        "realm=conclave.test".into(),
        "no-tls".into(),
        "no-dtls".into(),
        format!("userdb={d}/turndb"),
        format!("pidfile={d}/turnserver.pid"),
        format!("log-file={d}/turn.log"),
        "simple-log".into(),
    ]);
    lines.join("\n") + "\n"
}

impl Coturn {
    /// Starts coturn inside `ns`, listening and relaying on `ip`, and waits until it answers.
    pub async fn start_in(ns: &Namespace, ip: Ipv4Addr) -> Self {
        let dir = TempDir::new("coturn");
        let mut bytes = [0u8; 24];
        getrandom::fill(&mut bytes).unwrap();
        let secret: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        // The secret goes in a file only we can read, not on a command line anyone can list.
        let path = dir.0.join("turnserver.conf");
        std::fs::write(&path, config(ip, &secret, &dir.0)).unwrap();
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let proc = Proc(
            ns.exec("turnserver")
                .arg("-c")
                .arg(&path)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("coturn is installed (cargo xtask test installs it)"),
        );
        let listening = SocketAddr::from((ip, PORT));
        let deadline = Instant::now() + Duration::from_secs(20);
        while ns.connect(listening).is_err() {
            assert!(Instant::now() < deadline, "coturn did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let coturn = Self {
            _proc: proc,
            dir,
            url: format!("turn:{ip}:{PORT}?transport=udp"),
            secret,
        };
        let log = coturn.log();
        assert!(
            !log.contains("Bad configuration format"),
            "coturn does not understand deploy/turnserver.conf:\n{log}"
        );
        coturn
    }

    /// What coturn logged (allocations, permissions, refusals), for a failure's report.
    pub fn log(&self) -> String {
        std::fs::read_dir(&self.dir.0)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.starts_with("turn") && name.ends_with(".log")
            })
            .filter_map(|e| std::fs::read_to_string(e.path()).ok())
            .collect()
    }
}
