//! mdimap: an IMAP4rev1 server for Maildir++ stores, a drop-in replacement for
//! Courier-IMAP on existing maildirs.
//!
//! The crate is layered (see DESIGN.md): `protocol` (bytes ⇄ commands),
//! `message` (one MIME message), `maildir` (the store), `auth` (credentials →
//! a mail user), `session` (the IMAP state machine), `server` (the connection,
//! privilege drop, logging), `config` (the /etc file). Each layer uses only
//! those listed before it. `migrate` (`mdimap migrate-dovecot`) is an
//! administrator's tool on top of `maildir` and `protocol`'s modified UTF-7.
//! `logtext` (outside text made fit for a log line) belongs to no layer and
//! uses none, so every layer may use it.

pub mod auth;
pub mod config;
pub mod conn;
pub mod demo;
pub mod heap;
pub mod logtext;
pub mod maildir;
pub mod message;
pub mod migrate;
pub mod protocol;
pub mod server;
pub mod session;
