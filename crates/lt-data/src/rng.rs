//! Seeded random streams. Every random decision draws from a ChaCha8 stream derived from the
//! user's seed and a fixed purpose name, so adding one use never shifts another.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// A ChaCha8 generator for `(seed, purpose, k)`.
pub fn stream(seed: u64, purpose: &str, k: u64) -> ChaCha8Rng {
    // FNV-1a over the purpose name, then mixed with k: the ChaCha stream number.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in purpose.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(splitmix(h ^ splitmix(k)));
    rng
}

/// SplitMix64 finaliser: a cheap, well-mixed 64-bit hash.
pub(crate) fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}
