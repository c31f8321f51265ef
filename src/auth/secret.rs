//! Bytes that must not outlive their use: passwords, and buffers that held
//! them. Zeroed when dropped, never printed.

use std::ops::Deref;

/// A password or a buffer holding one. `Debug` shows only its length.
pub struct Secret(Vec<u8>);

impl Secret {
    pub fn new(bytes: Vec<u8>) -> Secret {
        Secret(bytes)
    }

    /// The bytes, to be filled in place (a receive buffer).
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.0
    }
}

impl Deref for Secret {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        scrub(&mut self.0);
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret({} bytes)", self.0.len())
    }
}

/// Overwrites `buffer` with zeros in a way the compiler keeps.
pub fn scrub(buffer: &mut [u8]) {
    for b in buffer.iter_mut() {
        // SAFETY: `b` is a valid, exclusive reference to a u8; the volatile
        // store only keeps the compiler from dropping a write to dead memory.
        unsafe { std::ptr::write_volatile(b, 0) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_bytes() {
        let s = Secret::new(b"hunter2".to_vec());
        assert_eq!(&*s, b"hunter2");
        assert_eq!(format!("{s:?}"), "Secret(7 bytes)");
    }

    #[test]
    fn scrub_zeroes() {
        let mut b = b"secret".to_vec();
        scrub(&mut b);
        assert_eq!(b, [0u8; 6]);
    }
}
