//! The IMAP protocol layer: bytes to commands and commands' arguments, and the
//! encoding of response strings. It knows nothing of files, users or sessions.

pub mod base64;
pub mod command;
pub mod datetime;
pub mod encode;
pub mod framing;
pub mod mutf7;
pub mod parser;
pub mod sequence;
