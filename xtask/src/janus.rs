//! Debian's Janus (the SFU large calls go through), configured and run for one process's
//! lifetime: `cargo xtask serve --sfu-local` and the tests that need a real Janus.
//!
//! Standard library only, so that the tests can include this very file
//! (`#[path = ".../xtask/src/janus.rs"] mod janus;`) instead of a copy: `crates/server/tests`
//! and `tests/browser` start the Janus the same way `serve` does.
//!
//! What it runs: only the WebSocket transport (the Janus API and the Admin API, each on a
//! loopback port of its own) and only the VideoRoom plugin; every other transport, plugin,
//! logger and event handler Debian ships is disabled, so nothing else listens and start-up is
//! quick. Janus API requests need a token (`token_auth`) that the signaling server adds through
//! the Admin API, which needs `admin_secret`; creating rooms needs the VideoRoom `admin_key`.
//! Both secrets are made per run and written, with the rest, into `<dir>/sfu-secrets`, the file
//! the server reads (`--sfu-secret-file`).

#![allow(dead_code)] // Each includer uses a different part of this.

use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The Debian package that brings `janus`.
pub const PACKAGE: &str = "janus";

/// How long Janus may take to answer on its API port after being started.
const START_PATIENCE: Duration = Duration::from_secs(20);

/// What to run Janus with. [`Settings::local`] fits one machine; a real host's config is
/// `deploy/janus/`.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Port of the Janus API (WebSocket, `janus-protocol`) on 127.0.0.1.
    pub ws_port: u16,
    /// Port of the Admin API (WebSocket, `janus-admin-protocol`) on 127.0.0.1.
    pub admin_port: u16,
    /// UDP ports media may use, `(first, last)`.
    pub rtp_ports: (u16, u16),
    /// The public address to announce instead of the host's own (`nat_1_1_mapping`).
    pub public_ip: Option<String>,
    pub admin_secret: String,
    /// The VideoRoom plugin's `admin_key`: needed to create rooms.
    pub admin_key: String,
}

impl Settings {
    /// Free loopback ports for both APIs, a random media port range and fresh secrets.
    pub fn local() -> Result<Self, String> {
        let base = 20_000 + (random_u16()? % 400) * 100;
        Ok(Self {
            ws_port: free_port()?,
            admin_port: free_port()?,
            rtp_ports: (base, base + 99),
            public_ip: None,
            admin_secret: random_hex(24)?,
            admin_key: random_hex(24)?,
        })
    }

    pub fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.ws_port)
    }

    pub fn admin_url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.admin_port)
    }

    /// The file the signaling server reads the secrets from (`--sfu-secret-file`): one
    /// `key = value` a line.
    pub fn secrets_file(&self) -> String {
        format!(
            "# Janus secrets for conclave-server --sfu-secret-file; keep it 0600.\n\
             admin_secret = {}\nadmin_key = {}\n",
            self.admin_secret, self.admin_key
        )
    }
}

/// Every `.so` in one of Janus's module folders except `keep`, comma-separated: what the
/// `disable` setting of that folder's section gets.
fn disable_all_but(kind: &str, keep: &[&str]) -> String {
    let mut names: Vec<String> = module_dir(kind)
        .and_then(|dir| std::fs::read_dir(dir).ok())
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".so") && !keep.contains(&n.as_str()))
        .collect();
    if names.is_empty() {
        // Debian 12's janus 1.1.2, should the folder not be found.
        names = match kind {
            "plugins" => [
                "audiobridge",
                "duktape",
                "echotest",
                "lua",
                "nosip",
                "recordplay",
                "sip",
                "streaming",
                "textroom",
                "videocall",
                "voicemail",
            ]
            .iter()
            .map(|p| format!("libjanus_{p}.so"))
            .collect(),
            "transports" => ["http", "mqtt", "nanomsg", "pfunix", "rabbitmq"]
                .iter()
                .map(|p| format!("libjanus_{p}.so"))
                .collect(),
            "loggers" => vec!["libjanus_jsonlog.so".into()],
            _ => [
                "gelfevh",
                "mqttevh",
                "nanomsgevh",
                "rabbitmqevh",
                "sampleevh",
                "wsevh",
            ]
            .iter()
            .map(|p| format!("libjanus_{p}.so"))
            .collect(),
        };
    }
    names.sort();
    names.join(",")
}

/// `/usr/lib/<triplet>/janus/<kind>`, where Debian installs Janus's modules.
fn module_dir(kind: &str) -> Option<PathBuf> {
    std::fs::read_dir("/usr/lib")
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("janus").join(kind))
        .find(|p| p.is_dir())
}

/// Writes a complete Janus configuration into `dir` (made if missing): `janus.jcfg`, the
/// WebSocket transport's and the VideoRoom plugin's files, and `sfu-secrets` for the server.
/// Janus logs to `dir/janus.log`.
pub fn write_config(dir: &Path, s: &Settings) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let d = dir.display();
    let nat = match &s.public_ip {
        // A host behind a 1:1 NAT (most clouds): announce the public address only.
        Some(ip) => format!("\tnat_1_1_mapping = \"{ip}\"\n\tkeep_private_host = false\n"),
        None => String::new(),
    };
    let janus = format!(
        "# Written by conclave's xtask/src/janus.rs for one run.\n\
         general: {{\n\
         \tconfigs_folder = \"{d}\"\n\
         \tlog_to_file = \"{d}/janus.log\"\n\
         \tdebug_level = 4\n\
         \tdebug_timestamps = true\n\
         \tdebug_colors = false\n\
         \tserver_name = \"conclave-sfu\"\n\
         \thide_dependencies = true\n\
         \tsession_timeout = 60\n\
         \treclaim_session_timeout = 0\n\
         \t# Janus API requests need a token the signaling server adds through the Admin API.\n\
         \ttoken_auth = true\n\
         \tadmin_secret = \"{admin_secret}\"\n\
         \tprotected_folders = [\"/bin\", \"/boot\", \"/dev\", \"/etc\", \"/lib\", \"/proc\", \"/sbin\", \"/sys\", \"/usr\", \"/var\"]\n\
         }}\n\
         certificates: {{\n\
         }}\n\
         media: {{\n\
         \tipv6 = false\n\
         \trtp_port_range = \"{rtp_lo}-{rtp_hi}\"\n\
         \tnack_optimizations = true\n\
         }}\n\
         nat: {{\n\
         \tnice_debug = false\n\
         \tice_ignore_list = \"vmnet,docker,veth\"\n\
         {nat}\
         }}\n\
         plugins: {{\n\
         \tdisable = \"{plugins}\"\n\
         }}\n\
         transports: {{\n\
         \tdisable = \"{transports}\"\n\
         }}\n\
         loggers: {{\n\
         \tdisable = \"{loggers}\"\n\
         }}\n\
         events: {{\n\
         \tbroadcast = false\n\
         \tdisable = \"{events}\"\n\
         }}\n",
        admin_secret = s.admin_secret,
        rtp_lo = s.rtp_ports.0,
        rtp_hi = s.rtp_ports.1,
        plugins = disable_all_but("plugins", &["libjanus_videoroom.so"]),
        transports = disable_all_but("transports", &["libjanus_websockets.so"]),
        loggers = disable_all_but("loggers", &[]),
        events = disable_all_but("events", &[]),
    );
    let websockets = format!(
        "general: {{\n\
         \tjson = \"compact\"\n\
         \tws = true\n\
         \tws_port = {ws}\n\
         \tws_ip = \"127.0.0.1\"\n\
         \tws_acl = \"127.\"\n\
         \twss = false\n\
         \tws_logging = \"err,warn\"\n\
         }}\n\
         admin: {{\n\
         \tadmin_ws = true\n\
         \tadmin_ws_port = {admin}\n\
         \tadmin_ws_ip = \"127.0.0.1\"\n\
         \tadmin_ws_acl = \"127.\"\n\
         \tadmin_wss = false\n\
         }}\n\
         cors: {{\n\
         }}\n\
         certificates: {{\n\
         }}\n",
        ws = s.ws_port,
        admin = s.admin_port,
    );
    // No rooms here: the signaling server creates each one when its call first needs it.
    let videoroom = format!(
        "general: {{\n\
         \tadmin_key = \"{key}\"\n\
         \tlock_rtp_forward = true\n\
         \tstring_ids = false\n\
         \tevents = false\n\
         }}\n",
        key = s.admin_key,
    );
    write_private(&dir.join("janus.jcfg"), &janus)?;
    write_private(&dir.join("janus.transport.websockets.jcfg"), &websockets)?;
    write_private(&dir.join("janus.plugin.videoroom.jcfg"), &videoroom)?;
    write_private(&dir.join("sfu-secrets"), &s.secrets_file())?;
    Ok(())
}

/// A running Janus, killed when dropped.
pub struct Janus {
    child: Child,
    pub settings: Settings,
    pub dir: PathBuf,
}

impl Janus {
    /// Writes the configuration for `settings` into `dir`, starts `janus` on it and waits
    /// until both API ports answer.
    pub fn start(dir: &Path, settings: Settings) -> Result<Self, String> {
        Self::start_via(dir, settings, Command::new("janus"), &|addr| {
            TcpStream::connect_timeout(&addr, Duration::from_millis(200))
        })
    }

    /// [`Janus::start`] with `janus` run as `program` (say, `ip netns exec NS janus` to run it
    /// in a test's network namespace), its ports reached through `connect`.
    pub fn start_via(
        dir: &Path,
        settings: Settings,
        program: Command,
        connect: &dyn Fn(SocketAddr) -> std::io::Result<TcpStream>,
    ) -> Result<Self, String> {
        if Command::new("janus")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_err()
        {
            return Err(format!(
                "`janus` is not installed: apt-get install {PACKAGE} (cargo xtask test does)"
            ));
        }
        write_config(dir, &settings)?;
        let mut cmd = program;
        cmd.arg("-F")
            .arg(dir)
            .arg("-C")
            .arg(dir.join("janus.jcfg"))
            .arg("--disable-stdout")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        stop_with_parent(&mut cmd);
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start janus: {e}"))?;
        let mut janus = Janus {
            child,
            settings,
            dir: dir.to_path_buf(),
        };
        janus.wait_until_listening(connect)?;
        Ok(janus)
    }

    /// Configured by [`Settings::local`] in `dir`.
    pub fn start_local(dir: &Path) -> Result<Self, String> {
        Self::start(dir, Settings::local()?)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn secrets_path(&self) -> PathBuf {
        self.dir.join("sfu-secrets")
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join("janus.log")
    }

    /// The server flags that point it at this Janus.
    pub fn server_args(&self) -> Vec<String> {
        vec![
            "--sfu-url".into(),
            self.settings.ws_url(),
            "--sfu-admin-url".into(),
            self.settings.admin_url(),
            "--sfu-secret-file".into(),
            self.secrets_path().display().to_string(),
        ]
    }

    fn wait_until_listening(
        &mut self,
        connect: &dyn Fn(SocketAddr) -> std::io::Result<TcpStream>,
    ) -> Result<(), String> {
        let deadline = Instant::now() + START_PATIENCE;
        for port in [self.settings.ws_port, self.settings.admin_port] {
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
            while !answers_http(connect, addr) {
                if let Ok(Some(status)) = self.child.try_wait() {
                    return Err(format!(
                        "janus exited at start ({status}); its log is {}",
                        self.log_path().display()
                    ));
                }
                if Instant::now() > deadline {
                    return Err(format!(
                        "janus did not answer on {addr} within {} s; its log is {}",
                        START_PATIENCE.as_secs(),
                        self.log_path().display()
                    ));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        Ok(())
    }
}

impl Drop for Janus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether something speaking HTTP (libwebsockets answers a plain GET) listens at `addr`.
fn answers_http(
    connect: &dyn Fn(SocketAddr) -> std::io::Result<TcpStream>,
    addr: SocketAddr,
) -> bool {
    let Ok(mut stream) = connect(addr) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    if stream
        .write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut buf = [0u8; 12];
    matches!(stream.read(&mut buf), Ok(n) if n >= 5 && buf.starts_with(b"HTTP/"))
}

/// Makes `cmd` receive SIGKILL when the process that started it dies, however it dies: a
/// Janus must not outlive its test or `serve`.
fn stop_with_parent(cmd: &mut Command) {
    use std::os::unix::process::CommandExt as _;
    const PR_SET_PDEATHSIG: i32 = 1;
    const SIGKILL: u64 = 9;
    unsafe extern "C" {
        fn prctl(option: i32, arg2: u64, arg3: u64, arg4: u64, arg5: u64) -> i32;
    }
    // SAFETY: prctl is async-signal-safe and touches nothing of the parent's.
    unsafe {
        cmd.pre_exec(|| {
            if prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

fn free_port() -> Result<u16, String> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port on 127.0.0.1: {e}"))
}

fn random_bytes(n: usize) -> Result<Vec<u8>, String> {
    let mut buf = vec![0u8; n];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .map_err(|e| format!("cannot read /dev/urandom: {e}"))?;
    Ok(buf)
}

fn random_u16() -> Result<u16, String> {
    let b = random_bytes(2)?;
    Ok(u16::from_le_bytes([b[0], b[1]]))
}

pub fn random_hex(bytes: usize) -> Result<String, String> {
    Ok(random_bytes(bytes)?
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// Writes a file only its owner can read: it holds secrets.
pub fn write_private(path: &Path, contents: &str) -> Result<(), String> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let _ = std::fs::remove_file(path);
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(contents.as_bytes()))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}
