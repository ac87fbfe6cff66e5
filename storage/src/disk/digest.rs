//! The stable key digest persisted in records and summaries.
//!
//! Owns: the choice of hash function for anything written to disk, and the
//! derivation of the in-memory index key from it.
//!
//! Invariants:
//! - [`KeyDigest::of`] is FNV-1a-128 (offset basis and prime from the FNV
//!   spec, draft-eastlake-fnv), byte-by-byte over the key, stored
//!   little-endian. Its output is fixed forever for a given
//!   [`super::format::DIGEST_FNV1A_128`]; changing it needs a new digest id
//!   in the file header. ahash is never used here: its output is not stable
//!   across builds or platforms.
//! - [`KeyDigest::index_key`] is a pure function of the digest and never 0
//!   (0 marks an empty index slot). FNV's low 64 bits are poorly mixed
//!   (mod 2^64 the prime is 0x13B), so both halves are folded and finalised
//!   with the murmur3 `fmix64` step before use.
//!
//! - a chunk of a chunked object is stored under the name
//!   [`chunk_name`]`(parent digest, nonce, index)` and indexed under
//!   `KeyDigest::of(name)`: a pure, stable function of the object's key
//!   digest, the per-insert nonce kept in the object's head and the chunk
//!   number, so chunks of another insert of the same key never match.
//!
//! FNV-1a costs a 128-bit multiply per key byte, about 1–2 ns/byte: fine for
//! cache keys of a few hundred bytes. A faster fixed hash (xxh3-128) can be
//! added later under a new digest id.

const FNV128_OFFSET: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
const FNV128_PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;

/// A stable 128-bit digest of a cache key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct KeyDigest(pub [u8; 16]);

impl KeyDigest {
    /// FNV-1a-128 of `key`.
    pub fn of(key: &[u8]) -> Self {
        let mut h = FNV128_OFFSET;
        for &b in key {
            h ^= u128::from(b);
            h = h.wrapping_mul(FNV128_PRIME);
        }
        KeyDigest(h.to_le_bytes())
    }

    /// The 64-bit key of the in-memory index: well mixed, never zero.
    pub fn index_key(&self) -> u64 {
        let v = u128::from_le_bytes(self.0);
        let folded = (v as u64) ^ ((v >> 64) as u64).rotate_left(29);
        match fmix64(folded) {
            0 => 1,
            k => k,
        }
    }
}

/// Length of a chunk record's name (the key stored in the chunk record).
pub const CHUNK_NAME_LEN: usize = 40;
const CHUNK_TAG: [u8; 8] = *b"VRGCHUNK";

/// The name (stored key) of chunk `index` of the insert `nonce` of the
/// object whose key digest is `parent`: a tag, the parent digest, the nonce
/// and the index, little-endian.
pub fn chunk_name(parent: &KeyDigest, nonce: u64, index: u32) -> [u8; CHUNK_NAME_LEN] {
    let mut n = [0u8; CHUNK_NAME_LEN];
    n[..8].copy_from_slice(&CHUNK_TAG);
    n[8..24].copy_from_slice(&parent.0);
    n[24..32].copy_from_slice(&nonce.to_le_bytes());
    n[32..40].copy_from_slice(&u64::from(index).to_le_bytes());
    n
}

impl KeyDigest {
    /// The digest of chunk `index` of insert `nonce` of the object `parent`:
    /// the digest of its [`chunk_name`].
    pub fn of_chunk(parent: &KeyDigest, nonce: u64, index: u32) -> Self {
        Self::of(&chunk_name(parent, nonce, index))
    }
}

/// murmur3's 64-bit finaliser: a bijection with full avalanche.
fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^ (k >> 33)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(d: KeyDigest) -> String {
        format!("{:032x}", u128::from_le_bytes(d.0))
    }

    #[test]
    fn fnv1a_128_reference_vectors() {
        assert_eq!(hex(KeyDigest::of(b"")), "6c62272e07bb014262b821756295c58d");
        assert_eq!(hex(KeyDigest::of(b"a")), "d228cb696f1a8caf78912b704e4a8964");
        assert_eq!(
            hex(KeyDigest::of(b"foobar")),
            "343e1662793c64bf6f0d3597ba446f18"
        );
    }

    #[test]
    fn chunk_digests_are_stable_and_distinct() {
        let p = KeyDigest::of(b"https://example.com/big.iso");
        let name = chunk_name(&p, 7, 3);
        assert_eq!(&name[..8], b"VRGCHUNK");
        assert_eq!(&name[8..24], &p.0);
        assert_eq!(KeyDigest::of_chunk(&p, 7, 3), KeyDigest::of(&name));
        // Fixed forever: chunk records on disk are found through these.
        assert_eq!(
            hex(KeyDigest::of_chunk(&KeyDigest::of(b""), 0, 0)),
            "fa7023750795d0e7ed9b26f5a3734994"
        );
        assert_eq!(
            hex(KeyDigest::of_chunk(&KeyDigest::of(b"a"), 7, 3)),
            "edae1e7e608e06d08fe48071efbb8e46"
        );
        let mut seen = std::collections::HashSet::new();
        for nonce in 0..4 {
            for i in 0..256 {
                assert!(seen.insert(KeyDigest::of_chunk(&p, nonce, i).index_key()));
            }
        }
        assert!(!seen.contains(&p.index_key()));
    }

    #[test]
    fn index_key_is_nonzero_and_spreads() {
        let mut buckets = [0u32; 16];
        for i in 0..16_000u32 {
            let k = KeyDigest::of(format!("/img/{i}.jpg").as_bytes()).index_key();
            assert_ne!(k, 0);
            buckets[(k >> 60) as usize] += 1;
        }
        // 1000 expected per bucket; a badly mixed key would pile up.
        assert!(
            buckets.iter().all(|&n| (800..1200).contains(&n)),
            "{buckets:?}"
        );
    }
}
