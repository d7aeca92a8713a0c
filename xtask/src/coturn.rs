//! `cargo xtask serve --turn-local`: Debian's coturn next to the server, sharing a secret made
//! for this run, stopped when the server stops.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::janus::{random_hex, write_private};
use crate::{Result, root, tools};

/// coturn's own port when free; any free one otherwise (a system coturn may hold 3478).
const PREFERRED_PORT: u16 = 3478;

/// A running coturn, killed when dropped.
pub struct LocalTurn {
    child: Child,
    /// `--turn` URLs for the server.
    pub urls: Vec<String>,
    /// coturn's `static-auth-secret`; the server signs each member's credentials with it.
    pub secret: String,
}

impl Drop for LocalTurn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The address the server will listen on, from the flags passed through to it.
fn server_addr(args: &[String]) -> String {
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        if arg == "--addr" {
            if let Some(v) = it.next() {
                return v.clone();
            }
        } else if let Some(v) = arg.strip_prefix("--addr=") {
            return v.to_owned();
        }
    }
    std::env::var("CONCLAVE_ADDR").unwrap_or_else(|_| "127.0.0.1:8080".into())
}

/// Where coturn listens: the server's own IP, which browsers already reach.
fn turn_ip(addr: &str) -> Result<IpAddr> {
    let ip = addr
        .parse::<SocketAddr>()
        .map(|a| a.ip())
        .or_else(|_| {
            addr.rsplit_once(':')
                .filter(|(host, _)| *host == "localhost")
                .map(|_| IpAddr::V4(Ipv4Addr::LOCALHOST))
                .ok_or(())
        })
        .map_err(|()| format!("--turn-local: cannot read an IP address from --addr {addr}"))?;
    if ip.is_unspecified() {
        return Err(format!(
            "--turn-local: the server listens on every address ({addr}), but browsers must be \
             handed one address to reach the relay at. Give --addr the IP address the others \
             will open the link with (for example --addr 192.168.1.20:8443)."
        ));
    }
    Ok(ip)
}

fn free_port(ip: IpAddr) -> Result<u16> {
    let both_free =
        |port: u16| TcpListener::bind((ip, port)).is_ok() && UdpSocket::bind((ip, port)).is_ok();
    if both_free(PREFERRED_PORT) {
        return Ok(PREFERRED_PORT);
    }
    for _ in 0..50 {
        let port = TcpListener::bind((ip, 0))
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("--turn-local: no free port on {ip}: {e}"))?
            .port();
        if both_free(port) {
            return Ok(port);
        }
    }
    Err(format!(
        "--turn-local: no port free for both TCP and UDP on {ip}"
    ))
}

/// Starts coturn for the server that `server_args` describe, installing it if missing.
pub fn start(server_args: &[String]) -> Result<LocalTurn> {
    if tools::output("turnserver", &["--version"]).is_none() {
        tools::apt_install(&["coturn"])?;
    }
    let ip = turn_ip(&server_addr(server_args))?;
    let port = free_port(ip)?;
    let secret = random_hex(32)?;
    let dir: PathBuf = root().join("target").join("turn-local");
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let d = dir.display();
    // On loopback every relayed peer is a loopback address, which coturn refuses unless told;
    // anywhere else peers on loopback would be this machine's own services, refused as usual.
    let loopback = if ip.is_loopback() {
        "allow-loopback-peers\n"
    } else {
        ""
    };
    let config = format!(
        "listening-ip={ip}\nrelay-ip={ip}\nlistening-port={port}\n\
         use-auth-secret\nstatic-auth-secret={secret}\nrealm=conclave.local\n\
         fingerprint\nno-tls\nno-dtls\nno-cli\nno-multicast-peers\nno-software-attribute\n\
         {loopback}userdb={d}/turndb\npidfile={d}/turnserver.pid\n\
         log-file={d}/turn.log\nsimple-log\n"
    );
    let path = dir.join("turnserver.conf");
    write_private(&path, &config)?;
    let mut cmd = Command::new("turnserver");
    cmd.arg("-c")
        .arg(&path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    crate::stop_with_xtask(&mut cmd);
    let child = cmd
        .spawn()
        .map_err(|e| format!("cannot start turnserver: {e}"))?;
    let mut turn = LocalTurn {
        child,
        urls: vec![
            format!("turn:{}?transport=udp", SocketAddr::new(ip, port)),
            format!("turn:{}?transport=tcp", SocketAddr::new(ip, port)),
        ],
        secret,
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect_timeout(&SocketAddr::new(ip, port), Duration::from_millis(200))
        .is_err()
    {
        if let Ok(Some(status)) = turn.child.try_wait() {
            return Err(format!(
                "turnserver exited at start ({status}); its log is in {d}"
            ));
        }
        if Instant::now() > deadline {
            return Err(format!(
                "turnserver did not start listening; its log is in {d}"
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!(
        "xtask: coturn relays on {} (log: {d}/turn.log); stopped with the server",
        SocketAddr::new(ip, port)
    );
    Ok(turn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_relay_listens_where_the_server_does() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            server_addr(&args(&["--addr", "10.0.0.5:8443"])),
            "10.0.0.5:8443"
        );
        assert_eq!(server_addr(&args(&["--addr=10.0.0.6:1"])), "10.0.0.6:1");
        assert_eq!(
            turn_ip("10.0.0.5:8443").unwrap(),
            "10.0.0.5".parse::<IpAddr>().unwrap()
        );
        assert!(turn_ip("localhost:8080").unwrap().is_loopback());
        assert!(turn_ip("[::1]:8080").unwrap().is_loopback());
        let err = turn_ip("0.0.0.0:8443").unwrap_err();
        assert!(err.contains("--addr 192.168.1.20:8443"), "{err}");
        assert!(turn_ip("nonsense").is_err());
    }
}
