//! The keys and counters the worker holds, shared by all its transforms.

use std::collections::HashMap;

use conclave_e2ee::MediaKey;
use conclave_e2ee::frame::FrameEncryptor;

use crate::bridge::{DebugFlags, PeerStats, ToWorker};

/// A member's current receive key; `generation` lets each receiver notice a change.
pub struct PeerKey {
    pub key_id: u64,
    pub key: MediaKey,
    pub generation: u32,
}

#[derive(Default)]
pub struct Keys {
    /// One encryptor for all our senders, so the SFrame counter never repeats under our key.
    pub encryptor: Option<FrameEncryptor>,
    pub peers: HashMap<String, PeerKey>,
    stats: HashMap<String, (u64, u64)>,
    generation: u32,
    pub debug: DebugFlags,
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
                let Some(mut key) = media_key(key) else {
                    return;
                };
                if self.debug.foreign_send_key {
                    let mut bytes = [0u8; 32];
                    conclave_e2ee::random_bytes(&mut bytes);
                    key = MediaKey::from_bytes(bytes);
                }
                // A key we already use must not restart its counter.
                if self.encryptor.as_ref().map(FrameEncryptor::key_id) != Some(key_id) {
                    self.encryptor = Some(FrameEncryptor::new(key_id, &key));
                }
            }
            ToWorker::ReceiveKey { peer, key_id, key } => {
                let Some(key) = media_key(key) else { return };
                self.generation += 1;
                self.peers.insert(
                    peer,
                    PeerKey {
                        key_id,
                        key,
                        generation: self.generation,
                    },
                );
            }
            ToWorker::ForgetPeer { peer } => {
                self.peers.remove(&peer);
                self.stats.remove(&peer);
            }
            ToWorker::Debug(flags) => self.debug = flags,
        }
    }

    pub fn count(&mut self, peer: &str, decrypted: bool) {
        let entry = self.stats.entry(peer.to_owned()).or_default();
        if decrypted {
            entry.0 += 1;
        } else {
            entry.1 += 1;
        }
    }

    pub fn take_stats(&mut self) -> Vec<PeerStats> {
        self.stats
            .drain()
            .map(|(peer, (decrypted, failed))| PeerStats {
                peer,
                decrypted,
                failed,
            })
            .collect()
    }
}
