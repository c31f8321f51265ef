//! The configuration file (`/etc/mdimap/mdimapd.conf`, Courier's KEY=VALUE
//! form with `$NAME` expansion) through `Config::parse`, the function
//! `Config::load` calls after reading the file, and then everything the
//! server derives from a parsed configuration: the effective values shown
//! by `mdimap check-config`, the authentication backends, IMAP_EMPTYTRASH,
//! the special-use folders and the advertised capabilities. Checks that an
//! error names a line of the file, that a parsed configuration's effective
//! values parse again to the same configuration, and that memory stays bounded.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mdimap::config::Config;
use mdimap::server::login::{Advertised, capabilities};
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("/etc/mdimap/mdimapd.conf");
    let config = match Config::parse(text, path) {
        Ok((config, _warnings)) => config,
        Err(e) => {
            assert!(e.line >= 1 && e.line <= text.split('\n').count(), "error on line {} of {}", e.line, text.split('\n').count());
            return;
        }
    };
    let effective = config.effective();
    let _ = config.backends();
    let _ = config.purges();
    let _ = config.special_use_folders();
    let _ = capabilities(&Advertised::of(&config));
    // What check-config prints, written back as a file, is the same configuration.
    let mut again = String::new();
    for (key, value, source) in &effective {
        if source == "default" {
            continue;
        }
        // An unset value is shown as prose ("(unset: none)"), which a value
        // the file set (a folder called "(unset") can also read as: no round
        // trip for such a file.
        if value.starts_with("(unset") {
            return;
        }
        // Single quotes take everything up to the next one literally ($, \\, #).
        if value.contains('\'') {
            return;
        }
        again.push_str(&format!("{key}='{value}'\n"));
    }
    match Config::parse(&again, path) {
        Ok((reparsed, _)) => {
            let values = |e: Vec<(String, String, String)>| e.into_iter().map(|(k, v, _)| (k, v)).collect::<Vec<_>>();
            assert_eq!(values(reparsed.effective()), values(effective), "effective values do not read back the same");
        }
        Err(e) => panic!("the effective values do not parse: {e}\n{again}"),
    }
});
