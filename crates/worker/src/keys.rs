//! The keys and counters the worker holds, shared by all its transforms.

use conclave_e2ee::MediaKey;
use conclave_e2ee::frame::FrameEncryptor;
use litemap::LiteMap;

#[cfg(feature = "test-hooks")]
use super::hooks::Hooks;
use super::pipe::Fate;
use conclave_bridge::{PeerStats, ToWorker};

/// A member's current receive keys; `version` lets each receiver notice a change.
pub struct PeerKeys {
    pub keys: Vec<(u64, MediaKey)>,
    pub version: u32,
}

#[derive(Default)]
struct Counts {
    decrypted: u64,
    failed: u64,
    missing_key: u64,
}

#[derive(Default)]
pub struct Keys {
    /// One encryptor for all our senders, so the SFrame counter never repeats under a key.
    pub encryptor: FrameEncryptor,
    /// Sorted Vecs rather than hash maps: a call has a handful of members, and the worker
    /// already links `litemap` for its key ring, where `HashMap` added 4 KB of hashbrown.
    pub peers: LiteMap<String, PeerKeys>,
    stats: LiteMap<String, Counts>,
    version: u32,
    /// What the page's `?debug=` asked for (test builds only).
    #[cfg(feature = "test-hooks")]
    pub hooks: Hooks,
}

fn media_key(bytes: Vec<u8>) -> Option<MediaKey> {
    <[u8; 32]>::try_from(bytes.as_slice())
        .ok()
        .map(MediaKey::from_bytes)
}

impl Keys {
    pub fn apply(&mut self, msg: ToWorker) {
        match msg {
            ToWorker::SendKey { key_id, key } => {
                let Some(key) = media_key(key) else { return };
                #[cfg(feature = "test-hooks")]
                let key = self.hooks.send_key(key);
                self.encryptor.set_key(key_id, &key);
            }
            ToWorker::ReceiveKeys { peer, keys } => {
                self.version += 1;
                let keys = keys
                    .into_iter()
                    .filter_map(|(kid, key)| Some((kid, media_key(key)?)))
                    .collect();
                self.peers.insert(
                    peer,
                    PeerKeys {
                        keys,
                        version: self.version,
                    },
                );
            }
            // Carried out by the worker, which holds the senders.
            ToWorker::KeyFrame => {}
            ToWorker::ForgetPeer { peer } => {
                self.peers.remove(&peer);
                self.stats.remove(&peer);
            }
            #[cfg(feature = "test-hooks")]
            ToWorker::Debug(flags) => self.hooks.set(flags),
        }
    }

    /// Counts a received frame's fate for the page; frames passed as they came or dropped
    /// quietly are not counted.
    pub fn count(&mut self, peer: &str, fate: &Fate) {
        let (decrypted, failed, missing_key) = match fate {
            Fate::Passed(_) => (1, 0, 0),
            Fate::Undecryptable { missing_key } => (0, 1, u64::from(*missing_key)),
            _ => return,
        };
        // Looked up by `&str` first: `entry` would allocate the key for every frame.
        if self.stats.get(peer).is_none() {
            self.stats.insert(peer.to_owned(), Counts::default());
        }
        let Some(entry) = self.stats.get_mut(peer) else {
            return;
        };
        entry.decrypted += decrypted;
        entry.failed += failed;
        entry.missing_key += missing_key;
    }

    pub fn take_stats(&mut self) -> Vec<PeerStats> {
        std::mem::take(&mut self.stats)
            .into_iter()
            .map(|(peer, c)| PeerStats {
                peer,
                decrypted: c.decrypted,
                failed: c.failed,
                missing_key: c.missing_key,
            })
            .collect()
    }
}
