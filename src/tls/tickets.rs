//! Session tickets sealed with keys from a file that several hosts share, so a viewer that moves
//! between edge hosts (or shards) resumes instead of doing a full handshake.
//!
//! File format: one key per line, 64 hex digits (32 bytes); blank lines and `#` comments ignored.
//! The first key seals new tickets; every key opens them, so an operator rotates by prepending a
//! new key everywhere, then removing the oldest after the ticket lifetime.
//! Ticket layout: 8-byte key name (from a hash of the key), 12-byte random nonce, then the
//! ChaCha20-Poly1305 ciphertext and tag. Invariants: a ticket opens only under the key that sealed
//! it and only unmodified; keys are swapped atomically on reload; a failed reload keeps the old keys.

use super::{stamp, TlsError};
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use rustls::server::ProducesTickets;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};
use std::time::SystemTime;

/// Lifetime hint given to viewers; actual expiry is the operator's key rotation.
const LIFETIME_SECS: u32 = 12 * 3600;
const NAME_LEN: usize = 8;

struct TicketKey {
    name: [u8; NAME_LEN],
    key: LessSafeKey,
}

impl std::fmt::Debug for TicketKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TicketKey({:02x?})", self.name)
    }
}

/// Parses a key file's text into keys (first = sealing key).
fn parse_keys(text: &str) -> Result<Vec<TicketKey>, String> {
    let mut keys = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.len() != 64 || !line.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("line {}: expected 64 hex digits", i + 1));
        }
        let mut raw = [0u8; 32];
        for (j, byte) in raw.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&line[2 * j..2 * j + 2], 16).map_err(|e| e.to_string())?;
        }
        let digest = ring::digest::digest(
            &ring::digest::SHA256,
            &[b"verge ticket key name\0".as_slice(), &raw].concat(),
        );
        let mut name = [0u8; NAME_LEN];
        name.copy_from_slice(&digest.as_ref()[..NAME_LEN]);
        let key = UnboundKey::new(&CHACHA20_POLY1305, &raw).map_err(|_| "bad key".to_string())?;
        keys.push(TicketKey {
            name,
            key: LessSafeKey::new(key),
        });
    }
    if keys.is_empty() {
        return Err("no keys".into());
    }
    Ok(keys)
}

/// A ticket sealer whose keys come from a shared file.
#[derive(Debug)]
pub struct KeyFileTicketer {
    path: PathBuf,
    keys: RwLock<Vec<TicketKey>>,
    stamp: Mutex<Option<(SystemTime, u64)>>,
    rng: SystemRandom,
}

impl KeyFileTicketer {
    pub fn open(path: &Path) -> Result<Self, TlsError> {
        let stamp_now = stamp(path);
        let keys = Self::read(path)?;
        Ok(KeyFileTicketer {
            path: path.into(),
            keys: RwLock::new(keys),
            stamp: Mutex::new(stamp_now),
            rng: SystemRandom::new(),
        })
    }

    fn read(path: &Path) -> Result<Vec<TicketKey>, TlsError> {
        let text = std::fs::read_to_string(path).map_err(|source| TlsError::Read {
            path: path.into(),
            source,
        })?;
        parse_keys(&text).map_err(|reason| TlsError::TicketKeys {
            path: path.into(),
            reason,
        })
    }

    /// Re-reads the file if it changed. `Ok(true)`: new keys in use.
    pub fn reload_if_changed(&self) -> Result<bool, TlsError> {
        let now = stamp(&self.path);
        let mut st = self.stamp.lock().unwrap_or_else(|e| e.into_inner());
        if *st == now {
            return Ok(false);
        }
        let keys = Self::read(&self.path)?;
        *self.keys.write().unwrap_or_else(|e| e.into_inner()) = keys;
        *st = now;
        Ok(true)
    }

    fn seal(&self, plain: &[u8]) -> Option<Vec<u8>> {
        let keys = self.keys.read().unwrap_or_else(|e| e.into_inner());
        let k = keys.first()?;
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).ok()?;
        let mut out = Vec::with_capacity(NAME_LEN + NONCE_LEN + plain.len() + 16);
        out.extend_from_slice(&k.name);
        out.extend_from_slice(&nonce);
        let mut body = plain.to_vec();
        k.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(&k.name),
                &mut body,
            )
            .ok()?;
        out.extend_from_slice(&body);
        Some(out)
    }

    fn open_ticket(&self, ticket: &[u8]) -> Option<Vec<u8>> {
        if ticket.len() < NAME_LEN + NONCE_LEN + 16 {
            return None;
        }
        let (name, rest) = ticket.split_at(NAME_LEN);
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        let keys = self.keys.read().unwrap_or_else(|e| e.into_inner());
        let k = keys.iter().find(|k| k.name == name)?;
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut buf = sealed.to_vec();
        let plain_len = k
            .key
            .open_in_place(nonce, Aad::from(&k.name), &mut buf)
            .ok()?
            .len();
        buf.truncate(plain_len);
        Some(buf)
    }
}

impl ProducesTickets for KeyFileTicketer {
    fn enabled(&self) -> bool {
        true
    }

    fn lifetime(&self) -> u32 {
        LIFETIME_SECS
    }

    fn encrypt(&self, plain: &[u8]) -> Option<Vec<u8>> {
        self.seal(plain)
    }

    fn decrypt(&self, cipher: &[u8]) -> Option<Vec<u8>> {
        self.open_ticket(cipher)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ticketer(text: &str) -> KeyFileTicketer {
        KeyFileTicketer {
            path: PathBuf::new(),
            keys: RwLock::new(parse_keys(text).unwrap()),
            stamp: Mutex::new(None),
            rng: SystemRandom::new(),
        }
    }

    const A: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    const B: &str = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";

    #[test]
    fn seal_open_and_rotation() {
        let one = ticketer(A);
        let t = one.encrypt(b"session state").unwrap();
        assert_eq!(one.decrypt(&t).unwrap(), b"session state");
        // Another host with the new key first still opens tickets sealed under the old one.
        let two = ticketer(&format!("# rotated\n{B}\n{A}\n"));
        assert_eq!(two.decrypt(&t).unwrap(), b"session state");
        let t2 = two.encrypt(b"x").unwrap();
        assert!(one.decrypt(&t2).is_none(), "old host lacks the new key");
        // Any flipped byte is refused.
        for i in 0..t.len() {
            let mut bad = t.clone();
            bad[i] ^= 1;
            assert!(one.decrypt(&bad).is_none(), "byte {i}");
        }
        assert!(one.decrypt(&t[..10]).is_none());
    }

    #[test]
    fn bad_files_are_refused() {
        assert!(parse_keys("").is_err());
        assert!(parse_keys("abc").is_err());
        assert!(parse_keys(&A.replace('0', "g")).is_err());
    }
}
