//! Resume tokens: how a member whose socket dropped (or whose server restarted) comes back as
//! itself, so the others' peer connections and keys to it stay as they are.
//!
//! A token is HMAC-SHA256(key, room ‖ peer id): the server keeps nothing per member and can
//! still check one after a restart, as long as the key survives it (`--resume-key-file`).
//! Only the member holds its token (it comes in its own `welcome`, over TLS), so nobody else can
//! claim its id; and a member whose connection still answers keeps its id even against its own
//! token (see `connection`), so a copied token cannot take over a live member.

use std::io;
use std::path::Path;

use base64::Engine as _;
use conclave_protocol::{PeerId, ResumeToken, RoomId};
use hmac::{Hmac, KeyInit as _, Mac as _};
use sha2::Sha256;
use tracing::info;

const KEY_LEN: usize = 32;

pub(crate) struct ResumeKey([u8; KEY_LEN]);

impl ResumeKey {
    /// A key for this process only: resuming works across dropped connections, not restarts.
    pub(crate) fn random() -> Self {
        let mut key = [0u8; KEY_LEN];
        getrandom::fill(&mut key).expect("the OS random number generator failed");
        Self(key)
    }

    /// The key in `path`, made (readable by the owner only) if the file does not exist yet.
    pub(crate) fn load_or_create(path: &Path) -> io::Result<Self> {
        let context = |what: &str, err: io::Error| {
            io::Error::new(
                err.kind(),
                format!("cannot {what} the resume key {}: {err}", path.display()),
            )
        };
        match std::fs::read(path) {
            Ok(bytes) => {
                let key: [u8; KEY_LEN] = bytes.get(..KEY_LEN).and_then(|b| b.try_into().ok()).ok_or_else(|| {
                    io::Error::other(format!(
                        "the resume key {} is shorter than {KEY_LEN} bytes; delete it to make a new one",
                        path.display()
                    ))
                })?;
                Ok(Self(key))
            }
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                let key = Self::random();
                write_private(path, &key.0).map_err(|e| context("write", e))?;
                info!(path = %path.display(), "made a new resume key");
                Ok(key)
            }
            Err(err) => Err(context("read", err)),
        }
    }

    /// A key for another purpose, derived from this one: every server sharing the resume key
    /// derives the same.
    pub(crate) fn derive(&self, purpose: &[u8]) -> [u8; KEY_LEN] {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(purpose);
        mac.finalize().into_bytes().into()
    }

    fn mac(&self, room: &RoomId, peer: &PeerId) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(b"conclave/v1 resume");
        for part in [room.as_str(), peer.as_str()] {
            mac.update(&(part.len() as u16).to_be_bytes());
            mac.update(part.as_bytes());
        }
        mac
    }

    pub(crate) fn token(&self, room: &RoomId, peer: &PeerId) -> ResumeToken {
        let tag = self.mac(room, peer).finalize().into_bytes();
        ResumeToken::new(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tag))
            .expect("43 base64url characters are a valid token")
    }

    /// Whether `token` is the one this key gave `peer` in `room`; compared in constant time.
    pub(crate) fn verify(&self, room: &RoomId, peer: &PeerId, token: &ResumeToken) -> bool {
        let Ok(tag) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token.as_str())
        else {
            return false;
        };
        self.mac(room, peer).verify_slice(&tag).is_ok()
    }
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?
        .write_all(bytes)
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    std::fs::write(path, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room() -> RoomId {
        RoomId::new("room-resume-1").unwrap()
    }

    #[test]
    fn a_token_is_good_for_its_own_member_and_room_only() {
        let key = ResumeKey::random();
        let (a, b) = (PeerId::new("aaaa").unwrap(), PeerId::new("bbbb").unwrap());
        let token = key.token(&room(), &a);
        assert!(key.verify(&room(), &a, &token));
        assert!(!key.verify(&room(), &b, &token));
        assert!(!key.verify(&RoomId::new("room-resume-2").unwrap(), &a, &token));
        assert!(!ResumeKey::random().verify(&room(), &a, &token));
        let garbage = ResumeToken::new("not-base64-but-valid-chars!".replace('!', "_")).unwrap();
        assert!(!key.verify(&room(), &a, &garbage));
    }

    #[test]
    fn the_key_file_survives_a_restart_and_is_private() {
        let dir = std::env::temp_dir().join(format!("conclave-resume-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("state").join("resume.key");
        let first = ResumeKey::load_or_create(&path).unwrap();
        let again = ResumeKey::load_or_create(&path).unwrap();
        let a = PeerId::new("aaaa").unwrap();
        assert!(again.verify(&room(), &a, &first.token(&room(), &a)));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(&path, b"short").unwrap();
        let err = ResumeKey::load_or_create(&path).err().unwrap().to_string();
        assert!(err.contains("shorter"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
