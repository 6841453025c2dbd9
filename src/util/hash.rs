//! FNV-1a: a stable hash for fingerprints and feature ids. std's hasher is
//! randomly seeded per process, and fingerprints (intent files, stored
//! index checksums, feature ids of the lexical model) must survive
//! restarts, so they cannot use it.

/// FNV-1a over the bytes written, 64-bit.
#[derive(Clone, Copy)]
pub struct Fnv(u64);

impl Fnv {
    pub const fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    pub fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= *b as u64;
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
    pub fn finish(self) -> u64 {
        self.0
    }
}

impl Default for Fnv {
    fn default() -> Self {
        Fnv::new()
    }
}

/// A stable hash of one number (fold assignment, seeds).
pub fn fnv_u64(n: u64) -> u64 {
    let mut h = Fnv::new();
    h.write(&n.to_le_bytes());
    h.finish()
}

/// Lower-case hex of `bytes` (digests, tokens, ids).
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Stored fingerprints depend on these exact values: a change here
    /// would make every store and calibration file look stale.
    #[test]
    fn known_values() {
        assert_eq!(Fnv::new().finish(), 0xcbf2_9ce4_8422_2325);
        let mut h = Fnv::new();
        h.write(b"a");
        assert_eq!(h.finish(), 0xaf63_dc4c_8601_ec8c);
        let mut h = Fnv::new();
        h.write(b"foobar");
        assert_eq!(h.finish(), 0x8594_4171_f739_67e8);
        assert_eq!(fnv_u64(0), {
            let mut h = Fnv::new();
            h.write(&[0; 8]);
            h.finish()
        });
    }
}
