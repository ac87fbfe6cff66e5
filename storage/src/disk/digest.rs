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
