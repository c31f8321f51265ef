//! The PROXY protocol header (HAProxy's v1 text line and v2 binary header
//! with TLVs and CRC32C), as mdimapd and mdimap-listen read it from trusted
//! peers: `server::proxy::parse` on the bytes received so far. Checks what
//! `read_header` relies on to never read past the header: a complete header
//! is no longer than the input and parses the same from its own bytes and
//! with anything after it; every shorter prefix of a valid header is
//! `Incomplete`, never an error or another header.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mdimap::server::proxy::{Parsed, parse};

fuzz_target!(|data: &[u8]| {
    let Ok(parsed) = parse(data) else {
        return;
    };
    let Parsed::Header { len, ref conn } = parsed else {
        return;
    };
    assert!(len > 0 && len <= data.len(), "header of {len} bytes in {} bytes", data.len());
    let header = &data[..len];
    assert_eq!(parse(header).ok(), Some(Parsed::Header { len, conn: conn.clone() }));
    let mut longer = header.to_vec();
    longer.extend_from_slice(b"a1 CAPABILITY\r\n\x00\xff");
    assert_eq!(parse(&longer).ok(), Some(Parsed::Header { len, conn: conn.clone() }));
    for cut in 0..len {
        match parse(&header[..cut]) {
            Ok(Parsed::Incomplete) => {}
            other => panic!("prefix of {cut} of a {len}-byte header: {other:?}"),
        }
    }
});
