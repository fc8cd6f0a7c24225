//! The configuration loader: TOML text -> validated `Config`, with every
//! error as `file:line: message`.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("/tmp/fuzz/popdns.toml");
    match popdns_config::parse(path, text) {
        Ok(config) => {
            // Validation promises that `local_pop` names a configured PoP
            // (any name is accepted while there are no PoPs at all).
            if let Some(local) = &config.server.local_pop
                && !config.pops.is_empty()
            {
                assert!(
                    config.pops.iter().any(|p| &p.name == local),
                    "local_pop {local} is not a PoP"
                );
            }
        }
        Err(errors) => {
            assert!(!errors.is_empty(), "Err with no error");
            for e in &errors {
                // Every error renders, and names a line inside the text.
                let _ = e.to_string();
                assert!(
                    e.line <= text.lines().count() + 1,
                    "error line {} past the end ({} lines): {e}",
                    e.line,
                    text.lines().count()
                );
            }
        }
    }
});
