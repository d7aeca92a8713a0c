//! A certificate for one test's server, and what a browser needs to trust it.

use base64::Engine as _;
use rcgen::PublicKeyData as _;
use sha2::{Digest as _, Sha256};

use crate::harness::TempDir;

pub struct TestCert {
    /// Holds the two files; removed with them.
    _dir: TempDir,
    pub cert: std::path::PathBuf,
    pub key: std::path::PathBuf,
    /// base64 SHA-256 of the certificate's SubjectPublicKeyInfo: what Chromium's
    /// `--ignore-certificate-errors-spki-list` takes.
    pub spki: String,
}

impl TestCert {
    /// A self-signed certificate for `names` (DNS names or IP addresses), written as PEM.
    pub fn new(names: &[&str]) -> Self {
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let certified = rcgen::generate_simple_self_signed(names).expect("make a certificate");
        let dir = TempDir::new("tls");
        let cert = dir.0.join("cert.pem");
        let key = dir.0.join("key.pem");
        std::fs::write(&cert, certified.cert.pem()).unwrap();
        std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
        let spki = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(
            certified.signing_key.subject_public_key_info(),
        ));
        Self {
            _dir: dir,
            cert,
            key,
            spki,
        }
    }

    /// The server flags that serve HTTPS with it.
    pub fn server_args(&self) -> Vec<String> {
        vec![
            "--tls-cert".into(),
            self.cert.display().to_string(),
            "--tls-key".into(),
            self.key.display().to_string(),
        ]
    }
}
