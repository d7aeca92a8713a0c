//! HTTPS and WSS: the certificate (from PEM files, renewed in place, or made at start) and a
//! listener that runs TLS handshakes side by side, so a slow or silent client holds up nobody.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use axum::serve::Listener;
use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject as _};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use sha2::{Digest as _, Sha256};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tracing::{debug, info, warn};

use crate::Config;

/// A client that has not finished its handshake by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Handshakes in progress at once; beyond this, accepting waits for one to finish, so a flood
/// of half-open connections costs a bounded amount of memory.
const MAX_HANDSHAKES: usize = 1024;

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The server's TLS set-up.
pub(crate) struct Tls {
    acceptor: TlsAcceptor,
    certificate: Arc<Certificate>,
}

impl Tls {
    /// Loads (or makes) the certificate `config` asks for; `None` for plain HTTP.
    pub(crate) fn setup(config: &Config, bound: SocketAddr) -> io::Result<Option<Self>> {
        let certificate = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => Certificate::from_files(cert.clone(), key.clone())?,
            _ if config.tls_self_signed => Certificate::self_signed(bound, &config.tls_names)?,
            _ => return Ok(None),
        };
        let certificate = Arc::new(certificate);
        let mut server = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(io::Error::other)?
            .with_no_client_auth()
            .with_cert_resolver(certificate.clone());
        // HTTP/2 first: the page, its files and its WebSockets (RFC 8441) share one TLS
        // connection, so the signaling socket costs no TCP and TLS handshake of its own.
        server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Some(Self {
            acceptor: TlsAcceptor::from(Arc::new(server)),
            certificate,
        }))
    }

    pub(crate) fn listener(&self, tcp: TcpListener) -> TlsListener {
        TlsListener {
            tcp,
            acceptor: self.acceptor.clone(),
            handshakes: JoinSet::new(),
        }
    }

    /// Looks for renewed certificate files every `every` and on SIGHUP, until `shutdown`.
    pub(crate) fn watch_for_renewal(&self, every: Duration, mut shutdown: watch::Receiver<bool>) {
        let certificate = self.certificate.clone();
        if certificate.files.is_none() {
            return;
        }
        tokio::spawn(async move {
            let mut hangup = hangup_signal();
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = shutdown.wait_for(|stopping| *stopping) => return,
                    _ = tick.tick() => {}
                    Some(()) = async { match hangup.as_mut() {
                        Some(signal) => signal.recv().await,
                        None => std::future::pending().await,
                    } } => info!("SIGHUP: checking the certificate files"),
                }
                certificate.reload_if_changed().await;
            }
        });
    }
}

#[cfg(unix)]
fn hangup_signal() -> Option<tokio::signal::unix::Signal> {
    use tokio::signal::unix::{SignalKind, signal};
    signal(SignalKind::hangup())
        .inspect_err(|err| warn!(%err, "cannot listen for SIGHUP"))
        .ok()
}

#[cfg(not(unix))]
fn hangup_signal() -> Option<std::future::Pending<Option<()>>> {
    None
}

/// The certificate every handshake presents, swapped in place when the files change.
struct Certificate {
    current: RwLock<Arc<CertifiedKey>>,
    files: Option<Files>,
}

struct Files {
    cert: PathBuf,
    key: PathBuf,
    /// What the two files held when last read, to notice a change. Contents rather than
    /// modification times: certbot switches symlinks, and a copied file may keep its mtime.
    seen: tokio::sync::Mutex<(Vec<u8>, Vec<u8>)>,
    /// Whether the last attempt could not read them, so that is logged once.
    unreadable: AtomicBool,
}

impl std::fmt::Debug for Certificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Certificate")
    }
}

impl ResolvesServerCert for Certificate {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        )
    }
}

fn read(path: &Path, what: &str) -> io::Result<Vec<u8>> {
    std::fs::read(path).map_err(|err| {
        io::Error::new(
            err.kind(),
            format!("cannot read the TLS {what} {}: {err}", path.display()),
        )
    })
}

/// What is wrong with a PEM file, in words that quote none of it: the certificate file may be
/// a combined one that holds the key too, and rustls-pki-types' own messages include lines and
/// characters of the file.
fn pem_problem(err: &pem::Error) -> &'static str {
    match err {
        pem::Error::MissingSectionEnd { .. } => "a section has no END line",
        pem::Error::IllegalSectionStart { .. } => "a BEGIN line is malformed",
        pem::Error::Base64Decode(_) => "a section is not valid base64",
        pem::Error::SectionTooLarge => "a section is too large",
        _ => "it cannot be read as PEM",
    }
}

/// A certificate chain and its key, both PEM. Errors never quote the key file.
fn parse(cert_pem: &[u8], key_pem: &[u8], cert: &Path, key: &Path) -> Result<CertifiedKey, String> {
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| {
            format!(
                "{} is not a PEM certificate chain: {}",
                cert.display(),
                pem_problem(&err)
            )
        })?;
    if chain.is_empty() {
        return Err(format!("{} holds no certificate", cert.display()));
    }
    let private = PrivateKeyDer::from_pem_slice(key_pem).map_err(|_| {
        format!(
            "{} holds no private key (expected PEM: PKCS#8, PKCS#1 or SEC1)",
            key.display()
        )
    })?;
    CertifiedKey::from_der(chain, private, &provider()).map_err(|err| {
        format!(
            "the key in {} cannot serve the certificate in {}: {err}",
            key.display(),
            cert.display()
        )
    })
}

impl Certificate {
    fn from_files(cert: PathBuf, key: PathBuf) -> io::Result<Self> {
        let cert_pem = read(&cert, "certificate")?;
        let key_pem = read(&key, "key")?;
        let current = parse(&cert_pem, &key_pem, &cert, &key).map_err(io::Error::other)?;
        Ok(Self {
            current: RwLock::new(Arc::new(current)),
            files: Some(Files {
                cert,
                key,
                seen: tokio::sync::Mutex::new((cert_pem, key_pem)),
                unreadable: AtomicBool::new(false),
            }),
        })
    }

    /// Certbot replaces both files (through symlinks) one after the other, so a check may see
    /// the new certificate with the old key: that pair is refused and the next check, which
    /// sees both new files, takes them. Connections already open keep their session.
    async fn reload_if_changed(&self) {
        let Some(files) = &self.files else { return };
        let read = async {
            let cert = tokio::fs::read(&files.cert)
                .await
                .map_err(|e| (&files.cert, e))?;
            let key = tokio::fs::read(&files.key)
                .await
                .map_err(|e| (&files.key, e))?;
            Ok::<_, (&PathBuf, io::Error)>((cert, key))
        };
        let (cert_pem, key_pem) = match read.await {
            Ok(both) => {
                files.unreadable.store(false, Ordering::Relaxed);
                both
            }
            Err((path, err)) => {
                // Said once, not at every poll, while the files stay missing.
                if !files.unreadable.swap(true, Ordering::Relaxed) {
                    warn!(
                        "cannot read {}: {err}; keeping the current certificate",
                        path.display()
                    );
                }
                return;
            }
        };
        let mut seen = files.seen.lock().await;
        if seen.0 == cert_pem && seen.1 == key_pem {
            return;
        }
        match parse(&cert_pem, &key_pem, &files.cert, &files.key) {
            Ok(renewed) => {
                *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(renewed);
                info!(cert = %files.cert.display(), "serving the renewed certificate");
            }
            Err(why) => warn!("{why}; keeping the current certificate"),
        }
        *seen = (cert_pem, key_pem);
    }

    /// A certificate nobody vouches for, covering every name this server is likely to be
    /// reached by, with a warning for the person who started it.
    fn self_signed(bound: SocketAddr, extra: &[String]) -> io::Result<Self> {
        let mut names: Vec<String> = vec!["localhost".into()];
        let mut ips: Vec<IpAddr> = vec![IpAddr::from([127, 0, 0, 1]), "::1".parse().unwrap()];
        if bound.ip().is_unspecified() {
            match if_addrs::get_if_addrs() {
                Ok(interfaces) => ips.extend(interfaces.iter().map(|i| i.ip())),
                Err(err) => warn!(%err, "cannot list this machine's addresses for the certificate"),
            }
        } else {
            ips.push(bound.ip());
        }
        names.extend(ips.iter().map(IpAddr::to_string));
        names.extend(extra.iter().cloned());
        names.sort();
        names.dedup();
        let made = rcgen::generate_simple_self_signed(names.clone()).map_err(|err| {
            io::Error::other(format!("cannot make a self-signed certificate: {err}"))
        })?;
        let der = made.cert.der().clone();
        let fingerprint = Sha256::digest(der.as_ref())
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":");
        let key =
            PrivateKeyDer::try_from(made.signing_key.serialize_der()).map_err(io::Error::other)?;
        let current =
            CertifiedKey::from_der(vec![der], key, &provider()).map_err(io::Error::other)?;
        eprintln!(
            "\nWARNING: serving HTTPS with a self-signed certificate, made just now and signed \
             by nobody.\n\
             - Every browser will warn everyone that the connection is not private, and each \
             person has to click through that warning.\n\
             - Clicking through keeps out only people who merely listen on the network. Anyone \
             who can intercept traffic (the Wi-Fi, a router) can present a certificate of their \
             own, serve a page that steals the call's key, and listen in. Only people who check \
             that their browser shows this SHA-256 fingerprint are safe from that:\n      \
             {fingerprint}\n\
             - It is a different certificate at every start, so the fingerprint changes too.\n\
             - For anything beyond trying Conclave on a network you trust, use a real \
             certificate: see \"Deploy on your own host\" in the README.\n\
             It covers: {}\n",
            names.join(", ")
        );
        Ok(Self {
            current: RwLock::new(Arc::new(current)),
            files: None,
        })
    }
}

/// Accepts TCP connections and hands axum only those whose TLS handshake completed.
pub(crate) struct TlsListener {
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    handshakes: JoinSet<Option<(TlsStream<TcpStream>, SocketAddr)>>,
}

impl Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let room = self.handshakes.len() < MAX_HANDSHAKES;
            tokio::select! {
                accepted = self.tcp.accept(), if room => match accepted {
                    Ok((mut stream, addr)) => {
                        crate::no_delay(&mut stream);
                        let acceptor = self.acceptor.clone();
                        self.handshakes.spawn(async move {
                            let shake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream));
                            match shake.await {
                                Ok(Ok(tls)) => Some((tls, addr)),
                                // Scanners, plain HTTP on the TLS port, browsers that refuse
                                // the certificate: routine, and only the client is affected.
                                Ok(Err(err)) => {
                                    debug!(%err, "TLS handshake failed");
                                    None
                                }
                                Err(_) => {
                                    debug!("TLS handshake timed out");
                                    None
                                }
                            }
                        });
                    }
                    // Out of file descriptors and the like: axum's own listener waits too.
                    Err(err) => {
                        warn!(%err, "cannot accept a connection");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                },
                Some(done) = self.handshakes.join_next(), if !self.handshakes.is_empty() => {
                    if let Ok(Some(connection)) = done {
                        return connection;
                    }
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}
