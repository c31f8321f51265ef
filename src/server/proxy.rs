//! The HAProxy PROXY protocol header (v1 text and v2 binary) that a trusted
//! load balancer sends first on each connection, and the list of trusted
//! networks that may send it.
//!
//! This module owns reading and validating that header and nothing else: it
//! does not decide whether a peer is trusted (the caller checks the peer
//! against [`Network`]s), does not log, and never reads a byte past the end of
//! the header, because what follows is the IMAP or TLS stream that another
//! reader consumes. Format: haproxy's doc/proxy-protocol.txt (v1 §2.1, v2 §2.2).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

/// The client and server endpoints of the relayed connection, as the proxy saw them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxiedConnection {
    pub source: SocketAddr,
    pub destination: SocketAddr,
}

#[derive(Debug)]
pub enum ProxyError {
    Io(std::io::Error),
    /// The bytes are not a valid PROXY header; the connection must be refused.
    Malformed(String),
    /// The header was not complete before the deadline.
    Timeout,
}

impl fmt::Display for ProxyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProxyError::Io(e) => write!(f, "reading the PROXY header: {e}"),
            ProxyError::Malformed(why) => write!(f, "malformed PROXY header: {why}"),
            ProxyError::Timeout => write!(f, "no complete PROXY header before the timeout"),
        }
    }
}

impl std::error::Error for ProxyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ProxyError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<std::io::Error> for ProxyError {
    fn from(e: std::io::Error) -> Self {
        ProxyError::Io(e)
    }
}

fn malformed(why: &str) -> ProxyError {
    ProxyError::Malformed(why.to_string())
}

/// The result of looking at the bytes received so far.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A valid beginning of a header; more bytes are needed.
    Incomplete,
    /// A complete header of `len` bytes. `conn` is `None` for v1 UNKNOWN and
    /// v2 LOCAL (and v2 families this server does not relay: UNSPEC, UNIX,
    /// DGRAM), which mean "use the socket's own addresses".
    Header {
        conn: Option<ProxiedConnection>,
        len: usize,
    },
}

/// The v2 signature (§2.2).
const V2_SIGNATURE: [u8; 12] = [
    0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,
];
/// The v2 fixed part: signature, version/command, family/protocol, length.
const V2_FIXED: usize = 16;
/// The longest v1 line the spec allows, CRLF included.
const V1_MAX: usize = 107;
/// The shortest valid v1 line, "PROXY UNKNOWN\r\n".
const V1_MIN: usize = 15;
const V1_PREFIX: &[u8] = b"PROXY ";
const V1_PROTOCOLS: [&[u8]; 3] = [b"TCP4", b"TCP6", b"UNKNOWN"];

const V2_CMD_LOCAL: u8 = 0x0;
const V2_CMD_PROXY: u8 = 0x1;
const V2_TCP4: u8 = 0x11;
const V2_TCP6: u8 = 0x21;
const PP2_TYPE_CRC32C: u8 = 0x03;

/// Parses a PROXY header at the start of `buf`. Bytes after the header are
/// never looked at. A prefix that cannot start a valid header is rejected at
/// once, so garbage is refused without waiting for more input.
pub fn parse(buf: &[u8]) -> Result<Parsed, ProxyError> {
    match buf.first() {
        None => Ok(Parsed::Incomplete),
        Some(b'P') => parse_v1(buf),
        Some(0x0D) => parse_v2(buf),
        Some(_) => Err(malformed("no PROXY signature")),
    }
}

/// How many more bytes `read_header` may ask for without risking reading past
/// a valid header, given the (incomplete) bytes so far. Always at least 1.
fn bytes_wanted(buf: &[u8]) -> usize {
    match buf.first() {
        Some(0x0D) if buf.len() < V2_FIXED => V2_FIXED - buf.len(),
        Some(0x0D) => {
            let total = V2_FIXED + v2_length(buf);
            total.saturating_sub(buf.len()).max(1)
        }
        // v1 ends at CRLF, which we can only find byte by byte once past the
        // shortest possible line.
        Some(_) if buf.len() < V1_MIN => V1_MIN - buf.len(),
        Some(_) => 1,
        // Either version: v1 is at least 15 bytes, v2 at least 16.
        None => V1_MIN,
    }
}

// ---------------------------------------------------------------- v1 (text)

fn parse_v1(buf: &[u8]) -> Result<Parsed, ProxyError> {
    // Find the CRLF, refusing bare CR or LF and anything that is not
    // printable US-ASCII on the way (the line is US-ASCII text).
    let mut end = None;
    // The CR may be at most the 106th byte, so that the LF ends the line
    // within 107 bytes: a CR at the 107th would accept a 108-byte line whole
    // that is refused when it arrives in pieces (found by fuzz/proxy).
    for (i, &b) in buf.iter().enumerate().take(V1_MAX - 1) {
        match b {
            b'\r' => match buf.get(i + 1) {
                Some(b'\n') => {
                    end = Some(i);
                    break;
                }
                Some(_) => return Err(malformed("v1: CR without LF")),
                None => {}
            },
            b'\n' => return Err(malformed("v1: LF without CR")),
            0x20..=0x7E => {}
            _ => return Err(malformed("v1: not printable US-ASCII")),
        }
    }
    let Some(end) = end else {
        if buf.len() >= V1_MAX {
            return Err(malformed("v1: no CRLF within 107 bytes"));
        }
        check_v1_prefix(buf)?;
        return Ok(Parsed::Incomplete);
    };
    let line = &buf[..end];
    let len = end + 2;
    let rest = line
        .strip_prefix(V1_PREFIX)
        .ok_or_else(|| malformed("v1: line does not start with \"PROXY \""))?;
    if rest == b"UNKNOWN" || rest.starts_with(b"UNKNOWN ") {
        // §2.1: the receiver must ignore anything after UNKNOWN.
        return Ok(Parsed::Header { conn: None, len });
    }
    let fields: Vec<&[u8]> = rest.split(|&b| b == b' ').collect();
    let [protocol, src, dst, sport, dport] = fields.as_slice() else {
        return Err(malformed("v1: wrong number of fields"));
    };
    let (source, destination) = match *protocol {
        b"TCP4" => (IpAddr::V4(v1_ipv4(src)?), IpAddr::V4(v1_ipv4(dst)?)),
        b"TCP6" => (IpAddr::V6(v1_ipv6(src)?), IpAddr::V6(v1_ipv6(dst)?)),
        _ => return Err(malformed("v1: unknown protocol")),
    };
    let conn = ProxiedConnection {
        source: SocketAddr::new(source, v1_port(sport)?),
        destination: SocketAddr::new(destination, v1_port(dport)?),
    };
    Ok(Parsed::Header {
        conn: Some(conn),
        len,
    })
}

/// Rejects an incomplete v1 line early when its start already cannot match.
fn check_v1_prefix(buf: &[u8]) -> Result<(), ProxyError> {
    let n = buf.len().min(V1_PREFIX.len());
    if buf.get(..n) != V1_PREFIX.get(..n) {
        return Err(malformed("v1: line does not start with \"PROXY \""));
    }
    let Some(after) = buf.get(V1_PREFIX.len()..) else {
        return Ok(());
    };
    // The protocol ends at a space, or at the line end for UNKNOWN, whose CR
    // may arrive before its LF.
    let token = after
        .split(|&b| b == b' ' || b == b'\r')
        .next()
        .unwrap_or_default();
    let complete = after.len() > token.len();
    let plausible = V1_PROTOCOLS.iter().any(|p| {
        if complete {
            *p == token
        } else {
            p.starts_with(token)
        }
    });
    if plausible {
        Ok(())
    } else {
        Err(malformed("v1: unknown protocol"))
    }
}

/// Digits without heading zeroes (§2.1 forbids them to avoid octal confusion).
fn v1_decimal(field: &[u8], max_digits: usize) -> Option<u32> {
    if field.is_empty() || field.len() > max_digits || !field.iter().all(u8::is_ascii_digit) {
        return None;
    }
    if field.len() > 1 && field[0] == b'0' {
        return None;
    }
    Some(
        field
            .iter()
            .fold(0u32, |n, &d| n * 10 + u32::from(d - b'0')),
    )
}

fn v1_ipv4(field: &[u8]) -> Result<Ipv4Addr, ProxyError> {
    let mut octets = [0u8; 4];
    let mut parts = field.split(|&b| b == b'.');
    for octet in &mut octets {
        let part = parts
            .next()
            .ok_or_else(|| malformed("v1: bad IPv4 address"))?;
        let value = v1_decimal(part, 3).ok_or_else(|| malformed("v1: bad IPv4 address"))?;
        *octet = u8::try_from(value).map_err(|_| malformed("v1: bad IPv4 address"))?;
    }
    if parts.next().is_some() {
        return Err(malformed("v1: bad IPv4 address"));
    }
    Ok(Ipv4Addr::from(octets))
}

fn v1_ipv6(field: &[u8]) -> Result<Ipv6Addr, ProxyError> {
    // Only hex groups, colons and (for an embedded IPv4 tail) dots: no zone
    // identifiers or brackets.
    if !field
        .iter()
        .all(|&b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
    {
        return Err(malformed("v1: bad IPv6 address"));
    }
    std::str::from_utf8(field)
        .ok()
        .and_then(|s| s.parse::<Ipv6Addr>().ok())
        .ok_or_else(|| malformed("v1: bad IPv6 address"))
}

fn v1_port(field: &[u8]) -> Result<u16, ProxyError> {
    v1_decimal(field, 5)
        .and_then(|n| u16::try_from(n).ok())
        .ok_or_else(|| malformed("v1: bad port"))
}

// -------------------------------------------------------------- v2 (binary)

/// The address length field of a v2 header whose fixed part is present.
fn v2_length(buf: &[u8]) -> usize {
    match (buf.get(14), buf.get(15)) {
        (Some(&hi), Some(&lo)) => usize::from(u16::from_be_bytes([hi, lo])),
        _ => 0,
    }
}

fn parse_v2(buf: &[u8]) -> Result<Parsed, ProxyError> {
    let n = buf.len().min(V2_SIGNATURE.len());
    if buf.get(..n) != V2_SIGNATURE.get(..n) {
        return Err(malformed("no PROXY signature"));
    }
    let command = if let Some(&ver_cmd) = buf.get(12) {
        if ver_cmd >> 4 != 2 {
            return Err(malformed("v2: unsupported version"));
        }
        match ver_cmd & 0x0F {
            c @ (V2_CMD_LOCAL | V2_CMD_PROXY) => c,
            _ => return Err(malformed("v2: unknown command")),
        }
    } else {
        return Ok(Parsed::Incomplete);
    };
    let Some(&family) = buf.get(13) else {
        return Ok(Parsed::Incomplete);
    };
    // LOCAL ignores the family entirely (§2.2); for PROXY, only the listed
    // address families (0..3) and protocols (0..2) are valid.
    if command == V2_CMD_PROXY && (family >> 4 > 3 || family & 0x0F > 2) {
        return Err(malformed("v2: invalid address family or protocol"));
    }
    if buf.len() < V2_FIXED {
        return Ok(Parsed::Incomplete);
    }
    let len = V2_FIXED + v2_length(buf);
    let Some(header) = buf.get(..len) else {
        return Ok(Parsed::Incomplete);
    };
    // The body is always skipped by its length, even for LOCAL (§2.2: "must
    // not assume zero is presented for LOCAL connections").
    if command == V2_CMD_LOCAL {
        return Ok(Parsed::Header { conn: None, len });
    }
    let body = &header[V2_FIXED..];
    let (conn, addresses_len) = match family {
        V2_TCP4 => {
            let a: &[u8; 12] = body
                .get(..12)
                .and_then(|s| s.try_into().ok())
                .ok_or_else(|| malformed("v2: address block too short for TCP over IPv4"))?;
            let src = Ipv4Addr::new(a[0], a[1], a[2], a[3]);
            let dst = Ipv4Addr::new(a[4], a[5], a[6], a[7]);
            let conn = ProxiedConnection {
                source: SocketAddr::new(IpAddr::V4(src), u16::from_be_bytes([a[8], a[9]])),
                destination: SocketAddr::new(IpAddr::V4(dst), u16::from_be_bytes([a[10], a[11]])),
            };
            (conn, 12)
        }
        V2_TCP6 => {
            let a: &[u8; 36] = body
                .get(..36)
                .and_then(|s| s.try_into().ok())
                .ok_or_else(|| malformed("v2: address block too short for TCP over IPv6"))?;
            let mut src = [0u8; 16];
            let mut dst = [0u8; 16];
            src.copy_from_slice(&a[..16]);
            dst.copy_from_slice(&a[16..32]);
            let conn = ProxiedConnection {
                source: SocketAddr::new(
                    IpAddr::V6(Ipv6Addr::from(src)),
                    u16::from_be_bytes([a[32], a[33]]),
                ),
                destination: SocketAddr::new(
                    IpAddr::V6(Ipv6Addr::from(dst)),
                    u16::from_be_bytes([a[34], a[35]]),
                ),
            };
            (conn, 36)
        }
        // UNSPEC, UNIX and DGRAM: not relayed connections an IMAP server can
        // use; §2.2 lets a receiver fall back to the real endpoints.
        _ => return Ok(Parsed::Header { conn: None, len }),
    };
    check_tlvs(header, V2_FIXED + addresses_len)?;
    Ok(Parsed::Header {
        conn: Some(conn),
        len,
    })
}

/// Checks that the bytes after the addresses are well-formed TLVs (§2.2) and
/// verifies a PP2_TYPE_CRC32C checksum if one is present (§2.2.3). The values
/// themselves are skipped.
fn check_tlvs(header: &[u8], start: usize) -> Result<(), ProxyError> {
    let mut at = start;
    while at < header.len() {
        let (Some(&kind), Some(&hi), Some(&lo)) =
            (header.get(at), header.get(at + 1), header.get(at + 2))
        else {
            return Err(malformed("v2: truncated TLV"));
        };
        let value_at = at + 3;
        let value_end = value_at + usize::from(u16::from_be_bytes([hi, lo]));
        let Some(value) = header.get(value_at..value_end) else {
            return Err(malformed("v2: TLV longer than the header"));
        };
        if kind == PP2_TYPE_CRC32C {
            let sent: [u8; 4] = value
                .try_into()
                .map_err(|_| malformed("v2: CRC32C TLV is not 4 bytes"))?;
            let mut zeroed = header.to_vec();
            if let Some(field) = zeroed.get_mut(value_at..value_end) {
                field.fill(0);
            }
            if crc32c(&zeroed) != u32::from_be_bytes(sent) {
                return Err(malformed("v2: CRC32C checksum mismatch"));
            }
        }
        at = value_end;
    }
    Ok(())
}

/// CRC-32C (Castagnoli), as RFC 4960 Appendix B computes it.
fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

// ------------------------------------------------------------ reading an fd

/// Reads exactly the PROXY header from `fd` (a connected socket or pipe) —
/// never a byte more, because what follows is the IMAP/TLS stream that another
/// reader consumes. v1 UNKNOWN and v2 LOCAL give `Ok(None)`: use the socket's
/// own addresses. A connection that does not start with a PROXY signature is
/// `Malformed`. `timeout` bounds the whole header, so a silent or slow peer
/// cannot hold the process.
pub fn read_header(fd: RawFd, timeout: Duration) -> Result<Option<ProxiedConnection>, ProxyError> {
    // poll(2) silently ignores negative descriptors, which would turn a
    // caller's bug into a timeout.
    if fd < 0 {
        return Err(ProxyError::Io(std::io::Error::from_raw_os_error(
            libc::EBADF,
        )));
    }
    let deadline = Instant::now().checked_add(timeout);
    let mut reader = HeaderReader::new();
    loop {
        wait_readable(fd, deadline)?;
        if let Parsed::Header { conn, .. } = reader.read_once(fd)? {
            return Ok(conn);
        }
    }
}

/// A PROXY header arriving in pieces, for a caller that watches many
/// connections at once and must not wait for any one of them (the
/// listener). Each call reads what has arrived, but never past the end of
/// the header, exactly as [`read_header`] does; the caller owns the deadline.
#[derive(Debug, Default)]
pub struct HeaderReader {
    /// The header's bytes so far: at most the header, so at most 107 bytes
    /// for v1 and 16 + 65535 for v2.
    buf: Vec<u8>,
}

impl HeaderReader {
    pub fn new() -> HeaderReader {
        HeaderReader::default()
    }

    /// Reads from `fd`, which must be non-blocking, until the header is
    /// complete or nothing more has arrived. `Parsed::Incomplete` means "poll
    /// and call again"; end of file before the header is complete is an
    /// `Io` error of kind `UnexpectedEof`.
    pub fn read_available(&mut self, fd: RawFd) -> Result<Parsed, ProxyError> {
        loop {
            let before = self.buf.len();
            let parsed = self.read_once(fd)?;
            if matches!(parsed, Parsed::Header { .. }) || self.buf.len() == before {
                return Ok(parsed);
            }
        }
    }

    /// One read(2) of at most the bytes the header can still need, then the
    /// header so far parsed. A read that would block, or was interrupted,
    /// reads nothing and gives `Parsed::Incomplete`.
    fn read_once(&mut self, fd: RawFd) -> Result<Parsed, ProxyError> {
        if let parsed @ Parsed::Header { .. } = parse(&self.buf)? {
            return Ok(parsed);
        }
        let want = bytes_wanted(&self.buf);
        let old = self.buf.len();
        self.buf.resize(old + want, 0);
        let got = read_some(fd, &mut self.buf[old..]);
        self.buf.truncate(old + got.as_ref().map_or(0, |n| *n));
        match got {
            Ok(0) => Err(ProxyError::Io(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "connection closed before the PROXY header was complete",
            ))),
            Ok(_) => parse(&self.buf),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::Interrupted | std::io::ErrorKind::WouldBlock
                ) =>
            {
                Ok(Parsed::Incomplete)
            }
            Err(e) => Err(ProxyError::Io(e)),
        }
    }
}

/// Waits until `fd` is readable (or hung up: the read then reports it) or
/// the deadline passes. `None` is a deadline too far away to represent.
fn wait_readable(fd: RawFd, deadline: Option<Instant>) -> Result<(), ProxyError> {
    let left = match deadline {
        None => Duration::MAX,
        Some(d) => d.saturating_duration_since(Instant::now()),
    };
    if left.is_zero() {
        return Err(ProxyError::Timeout);
    }
    if crate::conn::wait_readable(&[fd], left)
        .first()
        .copied()
        .unwrap_or(true)
    {
        Ok(())
    } else {
        Err(ProxyError::Timeout)
    }
}

/// One read(2) into `buf`.
fn read_some(fd: RawFd, buf: &mut [u8]) -> std::io::Result<usize> {
    // SAFETY: the caller's descriptor is open for the call (a connected
    // socket it owns); BorrowedFd only lends it to nix.
    let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    nix::unistd::read(fd, buf).map_err(std::io::Error::from)
}

// ------------------------------------------------------- trusted networks

/// A network in CIDR form: "10.0.0.0/8", "::1/128", "127.0.0.1" (host).
/// Host bits after the prefix are cleared, so "10.1.2.3/8" is 10.0.0.0/8.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Network {
    address: IpAddr,
    prefix: u8,
}

impl Network {
    pub fn parse(s: &str) -> Result<Network, String> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let address: IpAddr = addr
            .parse()
            .map_err(|_| format!("{s:?}: not an IP address"))?;
        let max = if address.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => {
                if p.is_empty() || p.len() > 3 || !p.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(format!("{s:?}: bad prefix length"));
                }
                let n: u8 = p.parse().map_err(|_| format!("{s:?}: bad prefix length"))?;
                if n > max {
                    return Err(format!("{s:?}: prefix length over {max}"));
                }
                n
            }
        };
        let address = match address {
            IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask32(prefix))),
            IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask128(prefix))),
        };
        Ok(Network { address, prefix })
    }

    /// Whether `ip` is in the network. An IPv4 address and its IPv4-mapped
    /// IPv6 form (::ffff:a.b.c.d, as a dual-stack socket reports it) are the
    /// same host, so either matches an IPv4 network and an IPv6 network that
    /// covers ::ffff:0:0/96.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.address, ip) {
            (IpAddr::V4(net), IpAddr::V4(a)) => in_v4(net, self.prefix, a),
            (IpAddr::V4(net), IpAddr::V6(a)) => a
                .to_ipv4_mapped()
                .is_some_and(|a| in_v4(net, self.prefix, a)),
            (IpAddr::V6(net), IpAddr::V6(a)) => in_v6(net, self.prefix, a),
            (IpAddr::V6(net), IpAddr::V4(a)) => in_v6(net, self.prefix, a.to_ipv6_mapped()),
        }
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix)
    }
}

fn mask32(prefix: u8) -> u32 {
    u32::MAX
        .checked_shl(32 - u32::from(prefix.min(32)))
        .unwrap_or(0)
}

fn mask128(prefix: u8) -> u128 {
    u128::MAX
        .checked_shl(128 - u32::from(prefix.min(128)))
        .unwrap_or(0)
}

fn in_v4(net: Ipv4Addr, prefix: u8, a: Ipv4Addr) -> bool {
    u32::from(a) & mask32(prefix) == u32::from(net)
}

fn in_v6(net: Ipv6Addr, prefix: u8, a: Ipv6Addr) -> bool {
    u128::from(a) & mask128(prefix) == u128::from(net)
}

/// A list of networks separated by commas and/or whitespace. An empty list is
/// valid (no trusted peers).
pub fn parse_networks(list: &str) -> Result<Vec<Network>, String> {
    list.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(Network::parse)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn header(buf: &[u8]) -> (Option<ProxiedConnection>, usize) {
        match parse(buf) {
            Ok(Parsed::Header { conn, len }) => (conn, len),
            other => panic!("expected a header, got {other:?}"),
        }
    }

    fn is_malformed(buf: &[u8]) -> bool {
        matches!(parse(buf), Err(ProxyError::Malformed(_)))
    }

    /// A v2 header: signature, ver/cmd, family, then `body` with its length.
    fn v2(ver_cmd: u8, family: u8, body: &[u8]) -> Vec<u8> {
        let mut h = V2_SIGNATURE.to_vec();
        h.push(ver_cmd);
        h.push(family);
        h.extend_from_slice(&u16::try_from(body.len()).unwrap().to_be_bytes());
        h.extend_from_slice(body);
        h
    }

    fn v2_tcp4_body() -> Vec<u8> {
        // 192.168.0.1:56324 -> 192.168.0.11:443 (the spec's v1 example, in binary).
        let mut b = vec![192, 168, 0, 1, 192, 168, 0, 11];
        b.extend_from_slice(&56324u16.to_be_bytes());
        b.extend_from_slice(&443u16.to_be_bytes());
        b
    }

    // ---- v1

    #[test]
    fn v1_tcp4_spec_example() {
        let line = b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\nGET / HTTP/1.1\r\n";
        let (conn, len) = header(line);
        assert_eq!(len, 47);
        assert_eq!(
            conn,
            Some(ProxiedConnection {
                source: sa("192.168.0.1:56324"),
                destination: sa("192.168.0.11:443")
            })
        );
    }

    #[test]
    fn v1_tcp6() {
        let line = b"PROXY TCP6 2001:db8::1 ::1 65535 0\r\n";
        let (conn, len) = header(line);
        assert_eq!(len, line.len());
        assert_eq!(
            conn,
            Some(ProxiedConnection {
                source: sa("[2001:db8::1]:65535"),
                destination: sa("[::1]:0")
            })
        );
    }

    #[test]
    fn v1_longest_lines() {
        let tcp4 = b"PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n";
        assert_eq!(tcp4.len(), 56);
        assert_eq!(header(tcp4).1, 56);
        let full = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
        let tcp6 = format!("PROXY TCP6 {full} {full} 65535 65535\r\n");
        assert_eq!(tcp6.len(), 104);
        assert_eq!(header(tcp6.as_bytes()).1, 104);
        // §2.1's worst case: UNKNOWN with all optional fields, exactly 107 bytes.
        let worst = format!("PROXY UNKNOWN {full} {full} 65535 65535\r\n");
        assert_eq!(worst.len(), 107);
        assert_eq!(header(worst.as_bytes()), (None, 107));
    }

    #[test]
    fn v1_unknown() {
        assert_eq!(header(b"PROXY UNKNOWN\r\na001 NOOP\r\n"), (None, 15));
        assert_eq!(header(b"PROXY UNKNOWN whatever 1 2\r\n"), (None, 28));
        assert!(is_malformed(b"PROXY UNKNOWNX\r\n"));
    }

    #[test]
    fn v1_incomplete_prefixes() {
        let line = b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n";
        for n in 0..line.len() {
            assert_eq!(
                parse(&line[..n]).unwrap(),
                Parsed::Incomplete,
                "prefix of {n} bytes"
            );
        }
    }

    #[test]
    fn v1_rejects_bad_lines() {
        let bad: &[&[u8]] = &[
            b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\n", // bare LF
            b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\rX", // bare CR
            b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 65536\r\n", // port out of range
            b"PROXY TCP4 192.168.0.1 192.168.0.11 99999 443\r\n",
            b"PROXY TCP4 192.168.0.1 192.168.0.11 056324 443\r\n", // heading zero
            b"PROXY TCP4 192.168.0.1 192.168.0.11 0443 443\r\n",
            b"PROXY TCP4 192.168.0.1 192.168.0.11 -1 443\r\n",
            b"PROXY TCP4 192.168.0.1 192.168.0.11 +1 443\r\n",
            b"PROXY TCP4 192.168.0.01 192.168.0.11 1 443\r\n", // octal-looking octet
            b"PROXY TCP4 192.168.0.256 192.168.0.11 1 443\r\n",
            b"PROXY TCP4 192.168.0 192.168.0.11 1 443\r\n",
            b"PROXY TCP4 192.168.0.1.1 192.168.0.11 1 443\r\n",
            b"PROXY TCP4 ::1 ::1 1 443\r\n", // family mismatch
            b"PROXY TCP6 1.2.3.4 1.2.3.4 1 443\r\n",
            b"PROXY TCP6 fe80::1%eth0 ::1 1 443\r\n", // zone id
            b"PROXY TCP4  192.168.0.1 192.168.0.11 1 443\r\n", // two spaces
            b"PROXY TCP4 192.168.0.1 192.168.0.11 1 443 \r\n", // trailing space
            b"PROXY TCP4 192.168.0.1 192.168.0.11 1\r\n", // missing field
            b"PROXY UDP4 192.168.0.1 192.168.0.11 1 2\r\n",
            b"PROXY tcp4 192.168.0.1 192.168.0.11 1 2\r\n",
            b"PROXY\r\n",
            b"proxy TCP4 1.2.3.4 1.2.3.4 1 2\r\n",
            b"PROXY TCP4 1.2.3.4 1.2.3.\x004 1 2\r\n",
        ];
        for line in bad {
            assert!(
                is_malformed(line),
                "accepted {:?}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn v1_early_rejection_of_garbage() {
        assert!(is_malformed(b"PROXX"));
        assert!(is_malformed(b"PROXY UDP"));
        assert!(is_malformed(b"PROXY TCP4X"));
        assert!(is_malformed(b"a001 CAPABILITY\r\n"));
        assert!(is_malformed(b"GET / HTTP/1.1\r\n"));
        assert!(is_malformed(b"\x16\x03\x01\x02\x00")); // a TLS ClientHello
    }

    #[test]
    fn v1_without_crlf_within_107_bytes() {
        let mut line = b"PROXY UNKNOWN ".to_vec();
        line.resize(106, b'a');
        assert_eq!(parse(&line).unwrap(), Parsed::Incomplete);
        line.push(b'\r');
        assert!(is_malformed(&line), "CRLF would end at byte 108");
        let mut line = b"PROXY UNKNOWN ".to_vec();
        line.resize(200, b'a');
        line.extend_from_slice(b"\r\n");
        assert!(is_malformed(&line));
    }

    #[test]
    fn v1_line_of_108_bytes_is_refused_whole_as_in_pieces() {
        // fuzz/corpus/proxy/v1-108-bytes: CRLF at bytes 107 and 108.
        let mut line = b"PROXY UNKNOWN ".to_vec();
        line.resize(106, b'a');
        line.extend_from_slice(b"\r\n");
        assert_eq!(line.len(), 108);
        assert!(is_malformed(&line), "a 108-byte line taken whole");
        assert!(is_malformed(&line[..107]), "its first 107 bytes");
    }

    // ---- v2

    #[test]
    fn v2_tcp4() {
        let mut h = v2(0x21, 0x11, &v2_tcp4_body());
        assert_eq!(h.len(), 28);
        h.extend_from_slice(b"a001 CAPABILITY\r\n");
        assert_eq!(
            header(&h),
            (
                Some(ProxiedConnection {
                    source: sa("192.168.0.1:56324"),
                    destination: sa("192.168.0.11:443")
                }),
                28
            )
        );
    }

    #[test]
    fn v2_matches_haproxy_capture() {
        // A header HAProxy sent (172.19.0.1:42578 -> 172.19.0.3:80), as bytes.
        let h = [
            0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a, 0x21, 0x11,
            0x00, 0x0c, 0xac, 0x13, 0x00, 0x01, 0xac, 0x13, 0x00, 0x03, 0xa6, 0x52, 0x00, 0x50,
            b'G', b'E', b'T',
        ];
        assert_eq!(
            header(&h),
            (
                Some(ProxiedConnection {
                    source: sa("172.19.0.1:42578"),
                    destination: sa("172.19.0.3:80")
                }),
                28
            )
        );
    }

    #[test]
    fn v2_tcp6() {
        let src: Ipv6Addr = "2001:db8::7".parse().unwrap();
        let dst: Ipv6Addr = "2001:db8::1:993".parse().unwrap();
        let mut body = src.octets().to_vec();
        body.extend_from_slice(&dst.octets());
        body.extend_from_slice(&50000u16.to_be_bytes());
        body.extend_from_slice(&993u16.to_be_bytes());
        let h = v2(0x21, 0x21, &body);
        assert_eq!(h.len(), 52);
        assert_eq!(
            header(&h),
            (
                Some(ProxiedConnection {
                    source: sa("[2001:db8::7]:50000"),
                    destination: sa("[2001:db8::1:993]:993")
                }),
                52
            )
        );
    }

    #[test]
    fn v2_local() {
        assert_eq!(header(&v2(0x20, 0x00, &[])), (None, 16));
        // LOCAL with an address block: skipped by its length, family ignored.
        assert_eq!(header(&v2(0x20, 0x11, &v2_tcp4_body())), (None, 28));
        assert_eq!(header(&v2(0x20, 0xFF, &[1, 2, 3])), (None, 19));
    }

    #[test]
    fn v2_unsupported_families_fall_back() {
        assert_eq!(header(&v2(0x21, 0x00, &[])), (None, 16));
        assert_eq!(header(&v2(0x21, 0x31, &[0; 216])), (None, 232));
        assert_eq!(header(&v2(0x21, 0x12, &v2_tcp4_body())), (None, 28));
    }

    #[test]
    fn v2_with_tlvs() {
        let mut body = v2_tcp4_body();
        // PP2_TYPE_AUTHORITY "imap.example.org", then PP2_TYPE_SSL (client
        // used TLS, verify 0, SSL_VERSION "TLSv1.3" sub-TLV), then NOOP.
        body.extend_from_slice(&[0x02, 0x00, 16]);
        body.extend_from_slice(b"imap.example.org");
        let mut ssl = vec![0x01, 0, 0, 0, 0, 0x21, 0x00, 7];
        ssl.extend_from_slice(b"TLSv1.3");
        body.push(0x20);
        body.extend_from_slice(&u16::try_from(ssl.len()).unwrap().to_be_bytes());
        body.extend_from_slice(&ssl);
        body.extend_from_slice(&[0x04, 0x00, 0x00]);
        let h = v2(0x21, 0x11, &body);
        let (conn, len) = header(&h);
        assert_eq!(len, h.len());
        assert_eq!(conn.unwrap().source, sa("192.168.0.1:56324"));
    }

    #[test]
    fn crc32c_known_answer() {
        // RFC 3720 B.4 / the usual check value.
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(&[0u8; 32]), 0x8A91_36AA);
    }

    #[test]
    fn v2_crc32c_tlv() {
        let mut body = v2_tcp4_body();
        body.extend_from_slice(&[PP2_TYPE_CRC32C, 0x00, 0x04, 0, 0, 0, 0]);
        let mut h = v2(0x21, 0x11, &body);
        let crc = crc32c(&h);
        let at = h.len() - 4;
        h[at..].copy_from_slice(&crc.to_be_bytes());
        assert_eq!(header(&h).1, h.len());
        h[20] ^= 1; // corrupt the destination address
        assert!(is_malformed(&h));
    }

    #[test]
    fn v2_bad_tlvs() {
        let mut body = v2_tcp4_body();
        body.extend_from_slice(&[0x02, 0x00, 0x10, b'x']); // claims 16 bytes, has 1
        assert!(is_malformed(&v2(0x21, 0x11, &body)));
        let mut body = v2_tcp4_body();
        body.extend_from_slice(&[0x02, 0x00]); // truncated TLV head
        assert!(is_malformed(&v2(0x21, 0x11, &body)));
    }

    #[test]
    fn v2_incomplete_prefixes() {
        let h = v2(0x21, 0x11, &v2_tcp4_body());
        for n in 0..h.len() {
            assert_eq!(
                parse(&h[..n]).unwrap(),
                Parsed::Incomplete,
                "prefix of {n} bytes"
            );
        }
    }

    #[test]
    fn v2_rejects_bad_headers() {
        assert!(is_malformed(&v2(0x11, 0x11, &v2_tcp4_body()))); // version 1 in binary
        assert!(is_malformed(&v2(0x31, 0x11, &v2_tcp4_body()))); // version 3
        assert!(is_malformed(&v2(0x22, 0x11, &v2_tcp4_body()))); // command 2
        assert!(is_malformed(&v2(0x21, 0x41, &v2_tcp4_body()))); // family 4
        assert!(is_malformed(&v2(0x21, 0x13, &v2_tcp4_body()))); // protocol 3
        assert!(is_malformed(&v2(0x21, 0x11, &[1, 2, 3, 4, 5, 6, 7, 8]))); // short IPv4 block
        assert!(is_malformed(&v2(0x21, 0x21, &v2_tcp4_body()))); // short IPv6 block
        let mut sig = V2_SIGNATURE.to_vec();
        sig[7] = b'q';
        assert!(is_malformed(&sig));
        assert!(is_malformed(b"\r\n\r\nGET"));
        // Early rejection: a bad version byte right after the signature.
        let mut early = V2_SIGNATURE.to_vec();
        early.push(0x10);
        assert!(is_malformed(&early));
    }

    #[test]
    fn v2_largest_length_is_bounded() {
        let mut h = v2(0x20, 0x00, &[]);
        h[14] = 0xFF;
        h[15] = 0xFF;
        assert_eq!(parse(&h).unwrap(), Parsed::Incomplete);
        assert_eq!(bytes_wanted(&h), 65535);
        h.resize(16 + 65535, 0);
        assert_eq!(header(&h), (None, 65551));
    }

    #[test]
    fn wanted_never_overreads() {
        // For every prefix of a valid header, asking for bytes_wanted more
        // stays within the header.
        let mut headers = vec![
            b"PROXY UNKNOWN\r\n".to_vec(),
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n".to_vec(),
            v2(0x20, 0x00, &[]),
            v2(0x21, 0x11, &v2_tcp4_body()),
        ];
        headers.push(v2(0x21, 0x31, &[0; 216]));
        for h in &headers {
            for n in 0..h.len() {
                assert!(n + bytes_wanted(&h[..n]) <= h.len(), "{h:?} at {n}");
            }
        }
    }

    /// What `read_header` relies on, for every prefix of `bytes` read in
    /// order: the answers are `Incomplete` up to some point and from then on
    /// either the same header or an error, for good; a header's length is
    /// within the bytes given and the bytes after it make no difference; and
    /// an incomplete prefix never asks for a byte past the header's end.
    fn check_prefixes(bytes: &[u8]) {
        let mut settled: Option<Result<Parsed, String>> = None;
        for n in 0..=bytes.len() {
            let prefix = &bytes[..n];
            let answer = match parse(prefix) {
                Ok(p) => Ok(p),
                Err(ProxyError::Malformed(why)) => Err(why),
                Err(e) => panic!("parse gave {e} for {prefix:?}"),
            };
            match (&settled, &answer) {
                (None, Ok(Parsed::Incomplete)) => {
                    let wanted = bytes_wanted(prefix);
                    assert!(wanted >= 1, "{prefix:?}");
                    // Reading that much more must not swallow IMAP bytes.
                    if let Ok(Parsed::Header { len, .. }) = parse(bytes) {
                        assert!(n + wanted <= len, "{prefix:?} wants {wanted} of {bytes:?}");
                    }
                }
                (None, Ok(Parsed::Header { len, .. })) => {
                    assert_eq!(*len, n, "a header must be found when its last byte arrives");
                    settled = Some(answer);
                }
                (None, Err(_)) => settled = Some(answer),
                (Some(Ok(header)), Ok(again)) => assert_eq!(header, again, "{prefix:?}"),
                (Some(Err(_)), Err(_)) => {}
                (Some(before), _) => {
                    panic!("{before:?} became {answer:?} with more bytes: {prefix:?}")
                }
            }
        }
    }

    #[test]
    fn mutations_settle_once_and_never_overread() {
        // Deterministic xorshift mutations of valid headers, each checked at
        // every length: parse never panics, and what it answers keeps the
        // promises `read_header` is built on (see `check_prefixes`).
        let seeds = [
            b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\nrest".to_vec(),
            b"PROXY TCP6 2001:db8::1 ::1 65535 0\r\n".to_vec(),
            b"PROXY UNKNOWN ignored\r\na1 NOOP\r\n".to_vec(),
            // The shortest header of all.
            b"PROXY UNKNOWN\r\na1 NOOP\r\n".to_vec(),
            [v2(0x21, 0x11, &v2_tcp4_body()), b"a1 NOOP\r\n".to_vec()].concat(),
            v2(
                0x21,
                0x11,
                &[v2_tcp4_body(), vec![0x03, 0, 4, 1, 2, 3, 4, 0x20, 0, 1, 1]].concat(),
            ),
            v2(0x20, 0x00, &[9, 9, 9]),
        ];
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let (mut headers, mut refused) = (0, 0);
        for seed in &seeds {
            check_prefixes(seed);
            for _ in 0..2000 {
                let mut m = seed.clone();
                for _ in 0..(next() % 4 + 1) {
                    let at = (next() as usize) % m.len();
                    m[at] = match next() % 4 {
                        // Often a byte that matters to the grammar.
                        0 => b" \r\n:.0"[(next() % 6) as usize],
                        _ => next() as u8,
                    };
                }
                check_prefixes(&m);
                match parse(&m) {
                    Ok(Parsed::Header { .. }) => headers += 1,
                    Err(_) => refused += 1,
                    Ok(Parsed::Incomplete) => {}
                }
            }
        }
        // Both outcomes occur, so neither branch of the checks is idle.
        assert!(headers > 100 && refused > 1000, "{headers} {refused}");
    }

    #[test]
    fn empty_and_garbage() {
        assert_eq!(parse(b"").unwrap(), Parsed::Incomplete);
        assert!(is_malformed(b"\0"));
        assert!(is_malformed(b"* OK hello\r\n"));
    }

    // ---- read_header over a socket

    /// The bytes after the header are still in the socket, in order, and
    /// nothing else: the peer closes, so a further read sees end of file.
    fn assert_rest(peer: UnixStream, mut ours: UnixStream, rest: &[u8]) {
        drop(peer);
        let mut got = Vec::new();
        ours.read_to_end(&mut got).unwrap();
        assert_eq!(got, rest);
    }

    #[test]
    fn read_header_v1_leaves_imap_bytes() {
        let (ours, mut peer) = UnixStream::pair().unwrap();
        peer.write_all(b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\na001 CAPABILITY\r\n")
            .unwrap();
        let conn = read_header(ours.as_raw_fd(), HANG_GUARD).unwrap();
        assert_eq!(conn.unwrap().source, sa("192.168.0.1:56324"));
        assert_rest(peer, ours, b"a001 CAPABILITY\r\n");
    }

    #[test]
    fn read_header_v1_unknown_leaves_imap_bytes() {
        let (ours, mut peer) = UnixStream::pair().unwrap();
        peer.write_all(b"PROXY UNKNOWN\r\na001 CAPABILITY\r\n")
            .unwrap();
        assert_eq!(read_header(ours.as_raw_fd(), HANG_GUARD).unwrap(), None);
        assert_rest(peer, ours, b"a001 CAPABILITY\r\n");
    }

    #[test]
    fn read_header_v2_leaves_imap_bytes() {
        let (ours, mut peer) = UnixStream::pair().unwrap();
        let mut body = v2_tcp4_body();
        body.extend_from_slice(&[0x04, 0x00, 0x02, 0, 0]);
        let mut h = v2(0x21, 0x11, &body);
        h.extend_from_slice(b"a001 CAPABILITY\r\n");
        peer.write_all(&h).unwrap();
        let conn = read_header(ours.as_raw_fd(), HANG_GUARD).unwrap();
        assert_eq!(conn.unwrap().destination, sa("192.168.0.11:443"));
        assert_rest(peer, ours, b"a001 CAPABILITY\r\n");
    }

    #[test]
    fn read_header_v2_local_leaves_bytes() {
        let (ours, mut peer) = UnixStream::pair().unwrap();
        let mut h = v2(0x20, 0x00, &[]);
        h.extend_from_slice(b"\x16\x03\x01");
        peer.write_all(&h).unwrap();
        assert_eq!(read_header(ours.as_raw_fd(), HANG_GUARD).unwrap(), None);
        assert_rest(peer, ours, b"\x16\x03\x01");
    }

    #[test]
    fn read_header_fragmented() {
        let (ours, mut peer) = UnixStream::pair().unwrap();
        let mut data = v2(0x21, 0x11, &v2_tcp4_body());
        data.extend_from_slice(b"PROXY TCP6 ::1 ::2 3 4\r\na001 NOOP\r\n");
        let writer = std::thread::spawn(move || {
            for b in data {
                peer.write_all(&[b]).unwrap();
                std::thread::sleep(Duration::from_millis(1));
            }
            peer
        });
        let first = read_header(ours.as_raw_fd(), HANG_GUARD).unwrap();
        assert_eq!(first.unwrap().source, sa("192.168.0.1:56324"));
        let second = read_header(ours.as_raw_fd(), HANG_GUARD).unwrap();
        assert_eq!(second.unwrap().source, sa("[::1]:3"));
        let peer = writer.join().unwrap();
        assert_rest(peer, ours, b"a001 NOOP\r\n");
    }

    /// How long a test waits for `read_header` to return before calling it
    /// a hang: far beyond every timeout these tests give it that is meant to
    /// expire, and far below those meant never to.
    const HANG_GUARD: Duration = Duration::from_secs(60);

    /// `read_header(ours, timeout)` on another thread; its answer, or a
    /// failure if it has none within [`HANG_GUARD`]. The peer stays open
    /// (and silent) until then.
    fn read_header_guarded(
        ours: UnixStream,
        timeout: Duration,
    ) -> Result<Option<ProxiedConnection>, ProxyError> {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(read_header(ours.as_raw_fd(), timeout));
        });
        rx.recv_timeout(HANG_GUARD)
            .unwrap_or_else(|_| panic!("read_header gave no answer within {HANG_GUARD:?}"))
    }

    #[test]
    fn header_reader_takes_pieces_without_blocking() {
        let (ours, mut peer) = UnixStream::pair().unwrap();
        ours.set_nonblocking(true).unwrap();
        let mut reader = HeaderReader::new();
        assert_eq!(
            reader.read_available(ours.as_raw_fd()).unwrap(),
            Parsed::Incomplete,
            "nothing sent yet: no wait, no error"
        );
        peer.write_all(b"PROXY TCP6 2001:db8::1 ").unwrap();
        assert_eq!(
            reader.read_available(ours.as_raw_fd()).unwrap(),
            Parsed::Incomplete
        );
        peer.write_all(b"::1 40000 143\r\na001 NOOP\r\n").unwrap();
        match reader.read_available(ours.as_raw_fd()).unwrap() {
            Parsed::Header { conn, .. } => {
                assert_eq!(conn.unwrap().source, sa("[2001:db8::1]:40000"))
            }
            other => panic!("{other:?}"),
        }
        ours.set_nonblocking(false).unwrap();
        assert_rest(peer, ours, b"a001 NOOP\r\n");
    }

    #[test]
    fn header_reader_v2_in_one_piece_leaves_the_rest() {
        let (ours, mut peer) = UnixStream::pair().unwrap();
        ours.set_nonblocking(true).unwrap();
        let mut h = v2(0x21, 0x11, &v2_tcp4_body());
        h.extend_from_slice(b"\x16\x03\x01");
        peer.write_all(&h).unwrap();
        let mut reader = HeaderReader::new();
        match reader.read_available(ours.as_raw_fd()).unwrap() {
            Parsed::Header { conn, len } => {
                assert_eq!(conn.unwrap().source, sa("192.168.0.1:56324"));
                assert_eq!(len, h.len() - 3);
            }
            other => panic!("{other:?}"),
        }
        ours.set_nonblocking(false).unwrap();
        assert_rest(peer, ours, b"\x16\x03\x01");
    }

    #[test]
    fn header_reader_errors() {
        let (ours, mut peer) = UnixStream::pair().unwrap();
        ours.set_nonblocking(true).unwrap();
        peer.write_all(b"a001 CAPABILITY\r\n").unwrap();
        assert!(matches!(
            HeaderReader::new().read_available(ours.as_raw_fd()),
            Err(ProxyError::Malformed(_))
        ));
        let (ours, mut peer) = UnixStream::pair().unwrap();
        ours.set_nonblocking(true).unwrap();
        peer.write_all(b"PROXY TCP4").unwrap();
        drop(peer);
        match HeaderReader::new().read_available(ours.as_raw_fd()) {
            Err(ProxyError::Io(e)) => assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn read_header_times_out_on_silent_peer() {
        // The peer never sends and never closes: only the timeout can end the
        // wait. It must end it, and not before it was due.
        let (ours, _peer) = UnixStream::pair().unwrap();
        let started = Instant::now();
        let r = read_header_guarded(ours, Duration::from_millis(200));
        assert!(matches!(r, Err(ProxyError::Timeout)), "{r:?}");
        assert!(started.elapsed() >= Duration::from_millis(200));
    }

    #[test]
    fn read_header_times_out_on_partial_header() {
        let (ours, mut peer) = UnixStream::pair().unwrap();
        peer.write_all(b"PROXY TCP4 1.2.3.4").unwrap();
        let r = read_header_guarded(ours, Duration::from_millis(150));
        assert!(matches!(r, Err(ProxyError::Timeout)), "{r:?}");
    }

    #[test]
    fn read_header_rejects_plain_imap_at_once() {
        // "At once" without a clock: the peer stays open and silent and the
        // timeout is an hour away, so the only way to an answer within the
        // hang guard is to judge the bytes already there.
        let (ours, mut peer) = UnixStream::pair().unwrap();
        peer.write_all(b"a001 CAPABILITY\r\n").unwrap();
        let r = read_header_guarded(ours, Duration::from_secs(3600));
        assert!(matches!(r, Err(ProxyError::Malformed(_))), "{r:?}");
        drop(peer);
    }

    #[test]
    fn read_header_eof() {
        let (ours, mut peer) = UnixStream::pair().unwrap();
        peer.write_all(b"PROXY ").unwrap();
        drop(peer);
        match read_header(ours.as_raw_fd(), HANG_GUARD) {
            Err(ProxyError::Io(e)) => assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn read_header_bad_fd() {
        assert!(matches!(
            read_header(-1, Duration::from_millis(100)),
            Err(ProxyError::Io(_))
        ));
    }

    #[test]
    fn error_display() {
        assert_eq!(malformed("x").to_string(), "malformed PROXY header: x");
        assert_eq!(
            ProxyError::Timeout.to_string(),
            "no complete PROXY header before the timeout"
        );
    }

    // ---- networks

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn network_v4() {
        let n = Network::parse("10.0.0.0/8").unwrap();
        assert!(n.contains(ip("10.0.0.0")));
        assert!(n.contains(ip("10.255.255.255")));
        assert!(!n.contains(ip("11.0.0.0")));
        assert!(!n.contains(ip("9.255.255.255")));
        let n = Network::parse("192.168.1.128/25").unwrap();
        assert!(n.contains(ip("192.168.1.200")));
        assert!(!n.contains(ip("192.168.1.127")));
        let host = Network::parse("127.0.0.1").unwrap();
        assert_eq!(host, Network::parse("127.0.0.1/32").unwrap());
        assert!(host.contains(ip("127.0.0.1")));
        assert!(!host.contains(ip("127.0.0.2")));
        assert!(!host.contains(ip("::1")));
    }

    #[test]
    fn network_host_bits_cleared() {
        assert_eq!(
            Network::parse("10.1.2.3/8").unwrap(),
            Network::parse("10.0.0.0/8").unwrap()
        );
        assert_eq!(
            Network::parse("10.1.2.3/8").unwrap().to_string(),
            "10.0.0.0/8"
        );
        assert_eq!(
            Network::parse("2001:db8::1/32").unwrap().to_string(),
            "2001:db8::/32"
        );
    }

    #[test]
    fn network_v6() {
        let n = Network::parse("::1/128").unwrap();
        assert!(n.contains(ip("::1")));
        assert!(!n.contains(ip("::2")));
        assert!(!n.contains(ip("127.0.0.1")));
        let n = Network::parse("2001:db8::/32").unwrap();
        assert!(n.contains(ip("2001:db8:ffff::1")));
        assert!(!n.contains(ip("2001:db9::1")));
        assert!(Network::parse("fe80::/10").unwrap().contains(ip("febf::1")));
        assert!(!Network::parse("fe80::/10").unwrap().contains(ip("fec0::1")));
    }

    #[test]
    fn network_mapped() {
        let n = Network::parse("10.0.0.0/8").unwrap();
        assert!(n.contains(ip("::ffff:10.1.2.3")));
        assert!(!n.contains(ip("::ffff:11.1.2.3")));
        assert!(
            !n.contains(ip("::10.1.2.3")),
            "IPv4-compatible is not IPv4-mapped"
        );
        let m = Network::parse("::ffff:10.0.0.0/104").unwrap();
        assert!(m.contains(ip("10.1.2.3")));
        assert!(!m.contains(ip("11.1.2.3")));
    }

    #[test]
    fn network_zero_prefix() {
        let all4 = Network::parse("0.0.0.0/0").unwrap();
        assert!(all4.contains(ip("1.2.3.4")));
        assert!(all4.contains(ip("255.255.255.255")));
        assert!(all4.contains(ip("::ffff:1.2.3.4")));
        assert!(!all4.contains(ip("2001:db8::1")));
        let all6 = Network::parse("::/0").unwrap();
        assert!(all6.contains(ip("2001:db8::1")));
        assert!(all6.contains(ip("1.2.3.4")));
    }

    #[test]
    fn network_bad() {
        for bad in [
            "",
            "/8",
            "10.0.0.0/",
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/-1",
            "10.0.0.0/+8",
            "10.0.0.0/8/8",
            "10.0.0.0/ 8",
            "10.0.0.0/8a",
            "10.0.0/8",
            "010.0.0.0/8",
            "example.org",
            "10.0.0.0/0008",
            "10.0.0.0/256",
            "[::1]/128",
            "fe80::1%eth0",
        ] {
            assert!(Network::parse(bad).is_err(), "accepted {bad:?}");
        }
        assert!(Network::parse("10.0.0.0/32").is_ok());
        assert!(Network::parse("::/128").is_ok());
        assert!(Network::parse("10.0.0.0/08").is_ok());
    }

    #[test]
    fn networks_list() {
        let list = parse_networks("10.0.0.0/8, 192.168.0.0/16 ::1\t127.0.0.1,,").unwrap();
        assert_eq!(list.len(), 4);
        assert_eq!(list[3], Network::parse("127.0.0.1/32").unwrap());
        assert!(list.iter().any(|n| n.contains(ip("192.168.5.5"))));
        assert_eq!(parse_networks("").unwrap(), vec![]);
        assert_eq!(parse_networks(" , ").unwrap(), vec![]);
        let err = parse_networks("10.0.0.0/8, bogus").unwrap_err();
        assert!(err.contains("bogus"), "{err}");
    }
}
