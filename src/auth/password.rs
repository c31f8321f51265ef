//! Password hashes as they appear in the user file: checking a password against a stored
//! hash, and making new hashes for `mdimap` to write.
//!
//! Accepted schemes (the crypt(3) "modular crypt format"):
//! - `$6$[rounds=N$]salt$hash` SHA-512-crypt and `$5$[rounds=N$]salt$hash` SHA-256-crypt,
//!   with glibc's rules: the salt is at most 16 characters (longer salts are cut), rounds
//!   default to 5000 and are clamped to 1000..=999999999;
//! - `$2b$`, `$2y$`, `$2a$` bcrypt (the three prefixes compute the same function for the
//!   passwords that matter; `$2x$`, the buggy pre-2011 variant, is refused).
//!
//! Anything else, including the empty string and locked entries such as `!` or `*`, never
//! matches. New hashes are always SHA-512-crypt with a 16-character random salt and the
//! default 5000 rounds, written in the short `$6$salt$hash` form that every crypt(3)
//! understands.
//!
//! This module owns no files and never logs: callers decide what to tell whom, and a
//! password must never reach a log line.

use sha_crypt::Params;

/// The 64 characters of crypt(3)'s base-64 alphabet, in value order.
const CRYPT_ALPHABET: &[u8; 64] =
    b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// glibc's limits for SHA-crypt.
const SALT_MAX: usize = 16;
const ROUNDS_DEFAULT: u32 = 5_000;
const ROUNDS_MIN: u64 = 1_000;
const ROUNDS_MAX: u64 = 999_999_999;

/// Order in which SHA-512-crypt's 64 output bytes are packed, three at a time (first byte
/// in the high bits), into 4 characters each; the 64th byte is sent alone in 2 characters.
/// This is the published SHA-crypt specification's output step.
const SHA512_GROUPS: [[usize; 3]; 21] = [
    [0, 21, 42],
    [22, 43, 1],
    [44, 2, 23],
    [3, 24, 45],
    [25, 46, 4],
    [47, 5, 26],
    [6, 27, 48],
    [28, 49, 7],
    [50, 8, 29],
    [9, 30, 51],
    [31, 52, 10],
    [53, 11, 32],
    [12, 33, 54],
    [34, 55, 13],
    [56, 14, 35],
    [15, 36, 57],
    [37, 58, 16],
    [59, 17, 38],
    [18, 39, 60],
    [40, 61, 19],
    [62, 20, 41],
];

/// The same for SHA-256-crypt's 32 bytes; the last two bytes go out as 3 characters.
const SHA256_GROUPS: [[usize; 3]; 10] = [
    [0, 10, 20],
    [21, 1, 11],
    [12, 22, 2],
    [3, 13, 23],
    [24, 4, 14],
    [15, 25, 5],
    [6, 16, 26],
    [27, 7, 17],
    [18, 28, 8],
    [9, 19, 29],
];

/// Length of the encoded digest in a SHA-512-crypt / SHA-256-crypt string.
const SHA512_ENCODED_LEN: usize = 86;
const SHA256_ENCODED_LEN: usize = 43;

/// The hash scheme a stored hash string names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Sha512Crypt,
    Sha256Crypt,
    Bcrypt,
}

/// Which supported scheme `hash` uses, judged by its prefix only; `None` for anything this
/// module would never accept (empty, locked, unknown, `$2x$`).
pub fn scheme(hash: &str) -> Option<Scheme> {
    if hash.starts_with("$6$") {
        Some(Scheme::Sha512Crypt)
    } else if hash.starts_with("$5$") {
        Some(Scheme::Sha256Crypt)
    } else if hash.starts_with("$2b$") || hash.starts_with("$2y$") || hash.starts_with("$2a$") {
        Some(Scheme::Bcrypt)
    } else {
        None
    }
}

/// Does `password` match the stored `hash`? Unknown schemes and malformed hashes never
/// match. The final comparison is constant-time for every scheme.
pub fn verify(password: &[u8], hash: &str) -> bool {
    match scheme(hash) {
        Some(Scheme::Sha512Crypt) => verify_sha_crypt(password, hash, Scheme::Sha512Crypt),
        Some(Scheme::Sha256Crypt) => verify_sha_crypt(password, hash, Scheme::Sha256Crypt),
        // The crate accepts $2a$/$2b$/$2y$ alike and compares in constant time; an error
        // means a malformed hash, which simply does not match.
        Some(Scheme::Bcrypt) => bcrypt::verify(password, hash).unwrap_or(false),
        None => false,
    }
}

/// A new SHA-512-crypt hash of `password`: `$6$<16 random salt characters>$<86 characters>`.
/// Fails only when the system cannot supply random bytes.
pub fn hash(password: &[u8]) -> Result<String, String> {
    let mut random = [0u8; SALT_MAX];
    fill_random(&mut random)?;
    // 256 is a multiple of 64, so masking keeps every salt character equally likely.
    let salt: String = random
        .iter()
        .map(|b| char::from(CRYPT_ALPHABET[usize::from(b & 0x3f)]))
        .collect();
    let params =
        Params::new(ROUNDS_DEFAULT).map_err(|e| format!("SHA-512-crypt parameters: {e}"))?;
    let digest = sha_crypt::sha512_crypt(password, salt.as_bytes(), params);
    Ok(format!("$6${salt}${}", encode_sha512(&digest)))
}

/// The pieces of a `$5$`/`$6$` string after the identifier.
struct ShaCryptString<'a> {
    rounds: u32,
    salt: &'a str,
    encoded: &'a str,
}

/// Split `$id$[rounds=N$]salt$encoded` the way glibc reads it.
fn parse_sha_crypt(hash: &str) -> Option<ShaCryptString<'_>> {
    // Skip "$5$" / "$6$".
    let rest = hash.get(3..)?;
    let mut rounds = ROUNDS_DEFAULT;
    let mut rest = rest;
    if let Some(after) = rest.strip_prefix("rounds=") {
        // glibc takes the digits only when a '$' follows them; otherwise "rounds=..." is
        // part of the salt.
        if let Some((digits, tail)) = after.split_once('$')
            && !digits.is_empty()
            && digits.bytes().all(|b| b.is_ascii_digit())
        {
            // Saturate absurdly long digit strings instead of failing, as strtoul would.
            let asked = digits.parse::<u64>().unwrap_or(u64::MAX);
            let clamped = asked.clamp(ROUNDS_MIN, ROUNDS_MAX);
            rounds = u32::try_from(clamped).ok()?;
            rest = tail;
        }
    }
    let (salt_field, encoded) = rest.split_once('$')?;
    // glibc uses at most 16 salt characters; the digest must be the last field.
    let salt = match salt_field.char_indices().nth(SALT_MAX) {
        Some((cut, _)) => salt_field.get(..cut)?,
        None => salt_field,
    };
    if encoded.contains('$') {
        return None;
    }
    Some(ShaCryptString {
        rounds,
        salt,
        encoded,
    })
}

fn verify_sha_crypt(password: &[u8], hash: &str, scheme: Scheme) -> bool {
    let Some(parts) = parse_sha_crypt(hash) else {
        return false;
    };
    let Ok(params) = Params::new(parts.rounds) else {
        return false;
    };
    let computed = match scheme {
        Scheme::Sha512Crypt => {
            if parts.encoded.len() != SHA512_ENCODED_LEN {
                return false;
            }
            encode_sha512(&sha_crypt::sha512_crypt(
                password,
                parts.salt.as_bytes(),
                params,
            ))
        }
        Scheme::Sha256Crypt => {
            if parts.encoded.len() != SHA256_ENCODED_LEN {
                return false;
            }
            encode_sha256(&sha_crypt::sha256_crypt(
                password,
                parts.salt.as_bytes(),
                params,
            ))
        }
        Scheme::Bcrypt => return false,
    };
    constant_time_eq(computed.as_bytes(), parts.encoded.as_bytes())
}

/// Append `count` crypt base-64 characters of the 24-bit value `high:mid:low`, least
/// significant six bits first.
fn push_base64_24(out: &mut String, high: u8, mid: u8, low: u8, count: usize) {
    let mut value = (u32::from(high) << 16) | (u32::from(mid) << 8) | u32::from(low);
    for _ in 0..count {
        // The mask keeps the index below 64.
        let index = (value & 0x3f) as usize;
        out.push(char::from(CRYPT_ALPHABET[index]));
        value >>= 6;
    }
}

fn encode_sha512(digest: &[u8; 64]) -> String {
    let mut out = String::with_capacity(SHA512_ENCODED_LEN);
    for [a, b, c] in SHA512_GROUPS {
        push_base64_24(&mut out, digest[a], digest[b], digest[c], 4);
    }
    push_base64_24(&mut out, 0, 0, digest[63], 2);
    out
}

fn encode_sha256(digest: &[u8; 32]) -> String {
    let mut out = String::with_capacity(SHA256_ENCODED_LEN);
    for [a, b, c] in SHA256_GROUPS {
        push_base64_24(&mut out, digest[a], digest[b], digest[c], 4);
    }
    push_base64_24(&mut out, 0, digest[31], digest[30], 3);
    out
}

/// Compare without an early exit, so the time taken does not depend on where the first
/// difference is. Lengths are not secret (they are fixed per scheme).
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let difference = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(difference) == 0
}

/// Fill `buf` from the kernel's random source: getrandom(2), or /dev/urandom on kernels
/// without it.
pub(crate) fn fill_random(buf: &mut [u8]) -> Result<(), String> {
    let mut filled = 0;
    while filled < buf.len() {
        let rest = &mut buf[filled..];
        // SAFETY: the pointer and length describe `rest`, a live, writable slice.
        let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        if n < 0 {
            let err = std::io::Error::last_os_error();
            match err.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::ENOSYS) => return fill_from_urandom(buf),
                _ => return Err(format!("cannot get random bytes for a salt: {err}")),
            }
        }
        filled += usize::try_from(n).map_err(|_| "getrandom returned a bad length".to_string())?;
    }
    Ok(())
}

fn fill_from_urandom(buf: &mut [u8]) -> Result<(), String> {
    use std::io::Read;
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(buf))
        .map_err(|e| format!("cannot read /dev/urandom for a salt: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Known answers from the SHA-crypt specification's test vectors (also in glibc's tests).
    const SHA512_HELLO: &str = "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1";
    const SHA256_HELLO: &str = "$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5";

    #[test]
    fn sha512_known_answer() {
        assert!(verify(b"Hello world!", SHA512_HELLO));
        assert!(!verify(b"Hello world?", SHA512_HELLO));
        assert!(!verify(b"", SHA512_HELLO));
    }

    #[test]
    fn sha256_known_answer() {
        assert!(verify(b"Hello world!", SHA256_HELLO));
        assert!(!verify(b"hello world!", SHA256_HELLO));
    }

    #[test]
    fn sha_crypt_rounds_and_long_salt_vectors() {
        // Spec vectors: explicit rounds, and a salt longer than 16 characters (cut to 16).
        assert!(verify(
            b"Hello world!",
            "$6$rounds=10000$saltstringsaltstring$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v."
        ));
        assert!(verify(
            b"Hello world!",
            "$5$rounds=10000$saltstringsaltstring$3xv.VbSHBb41AL9AvLeujZkZRBAwqFMz2.opqey6IcA"
        ));
        // rounds below the minimum are raised to 1000.
        assert!(verify(
            b"the minimum number is still observed",
            "$6$rounds=10$roundstoolow$kUMsbe306n21p9R.FRkW3IGn.S9NPN0x50YhH1xhLsPuWGsUSklZt58jaTfF4ZEQpyUNGc0dqbpBYYBaHHrsX."
        ));
        assert!(verify(
            b"the minimum number is still observed",
            "$5$rounds=10$roundstoolow$yfvwcWrQ8l/K0DAWyuPMDNHpIVlTQebY9l/gL972bIC"
        ));
    }

    #[test]
    fn bcrypt_known_answer_all_prefixes() {
        // Widely used bcrypt test vector ("U*U", cost 5).
        let hash = "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW";
        assert!(verify(b"U*U", hash));
        assert!(!verify(b"U*V", hash));
        let b = hash.replacen("$2a$", "$2b$", 1);
        let y = hash.replacen("$2a$", "$2y$", 1);
        let x = hash.replacen("$2a$", "$2x$", 1);
        assert!(verify(b"U*U", &b));
        assert!(verify(b"U*U", &y));
        assert!(!verify(b"U*U", &x), "$2x$ is refused");
    }

    #[test]
    fn bcrypt_generated_by_crate() {
        let hash = bcrypt::hash(b"correct horse", 4).unwrap();
        assert!(hash.starts_with("$2b$04$"));
        assert_eq!(scheme(&hash), Some(Scheme::Bcrypt));
        assert!(verify(b"correct horse", &hash));
        assert!(!verify(b"correct horsf", &hash));
    }

    #[test]
    fn unknown_empty_and_malformed_never_match() {
        for h in [
            "",
            "!",
            "*",
            "!$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1",
            "Hello world!",
            "$1$saltstri$YMyguxXMBpd2TEZ.vS/3q1",
            "{PLAIN}Hello world!",
            "$6$saltstring$",
            "$6$saltstring",
            "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl",
            "$6$salt$string$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1",
            "$2b$04$short",
            "$2b$04$ééééééééééééééééééééééééééééééééééééééééééééééééééééé",
        ] {
            assert!(!verify(b"Hello world!", h), "{h:?} must not match");
        }
        assert_eq!(scheme(""), None);
        assert_eq!(scheme("$1$abc$def"), None);
    }

    #[test]
    fn hash_then_verify_round_trip() {
        let h = hash(b"s3cret").unwrap();
        let parts: Vec<&str> = h.split('$').collect();
        assert_eq!(parts.len(), 4, "short $6$salt$hash form: {h}");
        assert_eq!(parts[1], "6");
        assert_eq!(parts[2].len(), 16);
        assert!(parts[2].bytes().all(|b| CRYPT_ALPHABET.contains(&b)));
        assert_eq!(parts[3].len(), SHA512_ENCODED_LEN);
        assert!(verify(b"s3cret", &h));
        assert!(!verify(b"s3cret ", &h));
        // Two hashes of one password differ by salt.
        assert_ne!(h, hash(b"s3cret").unwrap());
    }

    #[test]
    fn hash_is_compatible_with_the_crates_own_verifier() {
        use sha_crypt::{PasswordVerifier, ShaCrypt};
        let h = hash(b"interop").unwrap();
        assert!(
            ShaCrypt::default()
                .verify_password(b"interop", h.as_str())
                .is_ok()
        );
    }

    #[test]
    fn constant_time_eq_basics() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
