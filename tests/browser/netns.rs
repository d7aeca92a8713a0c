//! Networks for one test, made of Linux network namespaces: hosts, home routers that
//! masquerade, and a "public" network between them. Everything is removed when the test ends,
//! on failure too; leftovers of a test that was killed are removed by the next one.
//!
//! Addresses come from the ranges reserved for documentation (RFC 5737) and private use, and
//! live only inside the namespaces: nothing here touches the machine's own network.

use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream, UdpSocket};
use std::process::{Command, Stdio};
use std::time::Duration;

use nix::sched::CloneFlags;

/// Where the server and the TURN relay live, on the public network.
pub const PUBLIC_HOST: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);

/// Every namespace of ours starts with this, then the pid of the test process that made it.
const PREFIX: &str = "cvt";

/// One network namespace, deleted (with every process still inside) when dropped.
pub struct Namespace {
    pub name: String,
}

fn run(cmd: &mut Command) {
    let shown = format!("{cmd:?}");
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {shown}: {e} (is iproute2 installed?)"));
    assert!(
        out.status.success(),
        "{shown} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Namespace {
    fn add(role: &str) -> Self {
        let name = format!("{PREFIX}{}-{role}", std::process::id());
        // A namespace of that name is a leftover of a run with our pid that was killed.
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        run(Command::new("ip").args(["netns", "add", &name]));
        let ns = Self { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// `ip -n <this> <args>`.
    pub fn ip(&self, args: &[&str]) {
        run(Command::new("ip").arg("-n").arg(&self.name).args(args));
    }

    fn sysctl(&self, setting: &str) {
        run(self.exec("sysctl").args(["-qw", setting]));
    }

    fn nft(&self, rules: &str) {
        let path = std::env::temp_dir().join(format!("{}.nft", self.name));
        std::fs::write(&path, rules).unwrap();
        run(self.exec("nft").arg("-f").arg(&path));
        let _ = std::fs::remove_file(path);
    }

    /// A command that runs `program` inside this namespace.
    pub fn exec(&self, program: &str) -> Command {
        self.handle().exec(program)
    }

    /// A way in that can move to other threads and tasks (it does not own the namespace).
    pub fn handle(&self) -> Entry {
        Entry(self.name.clone())
    }

    pub fn inside<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        self.handle().inside(f)
    }

    pub fn connect(&self, addr: SocketAddr) -> std::io::Result<TcpStream> {
        self.handle().connect(addr)
    }

    pub fn udp(&self, addr: SocketAddrV4) -> UdpSocket {
        let socket = self
            .inside(move || UdpSocket::bind(addr))
            .expect("bind UDP");
        socket
            .set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        socket
    }
}

/// The name of a namespace, to make sockets inside it from anywhere.
#[derive(Clone)]
pub struct Entry(String);

impl Entry {
    /// Runs `f` on a thread that has entered the namespace: the sockets it makes belong to
    /// the namespace, wherever they are used afterwards.
    pub fn inside<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/run/netns/{}", self.0);
        std::thread::spawn(move || {
            let ns = File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
            nix::sched::setns(&ns, CloneFlags::CLONE_NEWNET)
                .unwrap_or_else(|e| panic!("enter {path}: {e}"));
            f()
        })
        .join()
        .expect("a thread inside a namespace panicked")
    }

    /// A command that runs `program` inside the namespace.
    pub fn exec(&self, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.0, program]);
        cmd
    }

    /// A TCP connection from inside the namespace.
    pub fn connect(&self, addr: SocketAddr) -> std::io::Result<TcpStream> {
        self.inside(move || TcpStream::connect_timeout(&addr, Duration::from_secs(2)))
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        // Whatever a test started in here and did not stop (it panicked), so that the
        // namespace really goes and no browser keeps running.
        if let Ok(out) = Command::new("ip")
            .args(["netns", "pids", &self.name])
            .output()
        {
            for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = Command::new("kill").args(["-KILL", pid]).status();
            }
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// Removes namespaces left by test processes that no longer exist (killed mid-test).
fn remove_leftovers() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or_default();
        let Some(pid) = name
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = Command::new("ip").args(["netns", "pids", name]).output();
            let _ = Command::new("ip").args(["netns", "del", name]).status();
        }
    }
}

/// A veth pair: `a_if` inside `a`, `b_if` inside `b`.
fn cable(a: &Namespace, a_if: &str, b: &Namespace, b_if: &str) {
    run(Command::new("ip").args([
        "link", "add", a_if, "netns", &a.name, "type", "veth", "peer", "name", b_if, "netns",
        &b.name,
    ]));
    a.ip(&["link", "set", a_if, "up"]);
    b.ip(&["link", "set", b_if, "up"]);
}

/// One home network: a host behind a router that masquerades onto the public network.
pub struct Home {
    /// Dropped before its router: fields drop in order.
    pub host: Namespace,
    pub router: Namespace,
    pub host_ip: Ipv4Addr,
    pub router_wan_ip: Ipv4Addr,
}

/// How each home router treats traffic, in nftables.
///
/// * `masquerade random`: every new flow leaving the home gets a fresh, random public port,
///   even from the same private socket. The mapping depends on the destination (RFC 4787
///   "endpoint-dependent mapping", a symmetric NAT): the address a STUN or TURN server sees
///   is not the one a peer would see, so the other side cannot aim at it.
/// * Inbound, only replies to a flow the inside opened (conntrack: same addresses, same
///   ports) get through: "address and port-dependent filtering". Nothing unsolicited reaches
///   the host, and the router itself accepts nothing from outside.
///
/// Two such NATs leave no direct path between their hosts: each side's packets arrive at the
/// other router from a port the other side never sent to, and are dropped. Only a relay both
/// sides open flows to (TURN) connects them.
const HOME_ROUTER_RULES: &str = r#"
table ip nat {
  chain postrouting {
    type nat hook postrouting priority srcnat;
    oifname "wan" masquerade random
  }
}
table ip filter {
  chain forward {
    type filter hook forward priority filter; policy drop;
    iifname "lan" oifname "wan" accept
    ct state established,related accept
  }
  chain input {
    type filter hook input priority filter; policy drop;
    iifname "lo" accept
    ct state established,related accept
  }
}
"#;

/// Two homes, each behind its own NAT, and the public network between them, which routes
/// between the two routers as the internet would.
pub struct TwoHomes {
    pub a: Home,
    pub b: Home,
    pub public: Namespace,
}

impl TwoHomes {
    pub fn build() -> Self {
        remove_leftovers();
        let public = Namespace::add("pub");
        public.ip(&["addr", "add", &format!("{PUBLIC_HOST}/32"), "dev", "lo"]);
        public.sysctl("net.ipv4.ip_forward=1");
        let a = Self::home(&public, "a", 1);
        let b = Self::home(&public, "b", 2);
        Self { a, b, public }
    }

    /// Home `n`: 10.n.0.2 behind 10.n.0.1, whose public side is the `n`-th /30 of
    /// 203.0.113.0/24.
    fn home(public: &Namespace, tag: &str, n: u8) -> Home {
        let router = Namespace::add(&format!("nat-{tag}"));
        let host = Namespace::add(&format!("home-{tag}"));
        let isp_ip = Ipv4Addr::new(203, 0, 113, 4 * n + 1);
        let wan_ip = Ipv4Addr::new(203, 0, 113, 4 * n + 2);
        let isp_if = format!("to-{tag}");
        cable(public, &isp_if, &router, "wan");
        public.ip(&["addr", "add", &format!("{isp_ip}/30"), "dev", &isp_if]);
        router.ip(&["addr", "add", &format!("{wan_ip}/30"), "dev", "wan"]);
        router.ip(&["route", "add", "default", "via", &isp_ip.to_string()]);

        cable(&router, "lan", &host, "eth0");
        let gateway = Ipv4Addr::new(10, n, 0, 1);
        let host_ip = Ipv4Addr::new(10, n, 0, 2);
        router.ip(&["addr", "add", &format!("{gateway}/24"), "dev", "lan"]);
        host.ip(&["addr", "add", &format!("{host_ip}/24"), "dev", "eth0"]);
        host.ip(&["route", "add", "default", "via", &gateway.to_string()]);
        router.sysctl("net.ipv4.ip_forward=1");
        router.nft(HOME_ROUTER_RULES);
        Home {
            host,
            router,
            host_ip,
            router_wan_ip: wan_ip,
        }
    }

    /// Checks, with plain UDP, that each home router behaves as [`HOME_ROUTER_RULES`] says:
    /// one private socket appears from a different public port to each destination, and a
    /// packet from anywhere but the exact address and port it wrote to is not let in.
    pub fn check_nat_behaviour(&self) {
        for home in [&self.a, &self.b] {
            let inside = home.host.udp(SocketAddrV4::new(home.host_ip, 0));
            let there =
                [40001, 40002].map(|port| self.public.udp(SocketAddrV4::new(PUBLIC_HOST, port)));
            let mut seen = Vec::new();
            for server in &there {
                inside
                    .send_to(b"out", server.local_addr().unwrap())
                    .unwrap();
                let mut buf = [0u8; 16];
                let (_, from) = server
                    .recv_from(&mut buf)
                    .expect("a packet from the home reaches the public network");
                assert_eq!(
                    from.ip(),
                    std::net::IpAddr::V4(home.router_wan_ip),
                    "not masqueraded"
                );
                seen.push(from);
            }
            assert_ne!(
                seen[0].port(),
                seen[1].port(),
                "{}: the mapping does not depend on the destination, so a peer could use the \
                 address a STUN server saw",
                home.router.name
            );
            // The first server answers: a reply to a flow the inside opened gets in.
            there[0].send_to(b"reply", seen[0]).unwrap();
            let mut buf = [0u8; 16];
            inside.recv_from(&mut buf).expect("a reply gets in");
            // The second server writes to the first one's mapping: another port, so no.
            there[1].send_to(b"intruder", seen[0]).unwrap();
            assert!(
                inside.recv_from(&mut buf).is_err(),
                "{}: let in a packet from a port the inside never wrote to",
                home.router.name
            );
        }
        // And the other home's host is not reachable at all, not even by its private address.
        let probe = self.a.host.udp(SocketAddrV4::new(self.a.host_ip, 0));
        let target = self.b.host.udp(SocketAddrV4::new(self.b.host_ip, 40003));
        let _ = probe.send_to(b"direct", target.local_addr().unwrap());
        let _ = probe.send_to(b"direct", SocketAddrV4::new(self.b.router_wan_ip, 40003));
        let mut buf = [0u8; 16];
        assert!(
            target.recv_from(&mut buf).is_err(),
            "one home reached the other directly"
        );
    }
}

/// Hosts on one routed network with the server, no NAT in between: every path is direct. Any
/// host's cable can be cut and mended, which is a real outage to its browser.
pub struct Lan {
    pub hosts: Vec<Namespace>,
    pub public: Namespace,
}

impl Lan {
    pub fn build(hosts: u8) -> Self {
        remove_leftovers();
        let public = Namespace::add("lan");
        public.ip(&["addr", "add", &format!("{PUBLIC_HOST}/32"), "dev", "lo"]);
        public.sysctl("net.ipv4.ip_forward=1");
        let hosts = (1..=hosts)
            .map(|n| {
                let host = Namespace::add(&format!("host-{n}"));
                let port = format!("to-{n}");
                cable(&public, &port, &host, "eth0");
                public.ip(&["addr", "add", &format!("10.20.{n}.1/24"), "dev", &port]);
                host.ip(&["addr", "add", &format!("10.20.{n}.2/24"), "dev", "eth0"]);
                host.ip(&["route", "add", "default", "via", &format!("10.20.{n}.1")]);
                host
            })
            .collect();
        Self { hosts, public }
    }

    /// Drops everything to and from host `n` (1-based) where its cable meets the network.
    pub fn cut(&self, n: usize) {
        self.public.nft(&format!(
            r#"
table inet cut{n} {{
  chain forward {{
    type filter hook forward priority -10;
    iifname "to-{n}" drop
    oifname "to-{n}" drop
  }}
  chain input {{
    type filter hook input priority -10;
    iifname "to-{n}" drop
  }}
  chain output {{
    type filter hook output priority -10;
    oifname "to-{n}" drop
  }}
}}
"#
        ));
    }

    pub fn mend(&self, n: usize) {
        run(self
            .public
            .exec("nft")
            .args(["delete", "table", "inet", &format!("cut{n}")]));
    }

    /// Drops `percent` % of the UDP packets (media) sent to host `n` from the public network,
    /// at random: a weak downlink.
    pub fn lossy(&self, n: usize, percent: u8) {
        self.public.nft(&format!(
            r#"
table inet lossy{n} {{
  chain forward {{
    type filter hook forward priority -10;
    oifname "to-{n}" meta l4proto udp numgen random mod 100 < {percent} drop
  }}
  chain output {{
    type filter hook output priority -10;
    oifname "to-{n}" meta l4proto udp numgen random mod 100 < {percent} drop
  }}
}}
"#
        ));
    }

    pub fn clean(&self, n: usize) {
        run(self
            .public
            .exec("nft")
            .args(["delete", "table", "inet", &format!("lossy{n}")]));
    }
}
