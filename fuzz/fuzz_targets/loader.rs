//! Fuzzes the manifest loader: any bytes, read as a multi-document YAML/JSON stream,
//! must come back as objects and diagnostics, never a panic or a hang.

#![no_main]

use ironmesh_config::{load_str, LoadOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let loaded = load_str("fuzz.yaml", text, &LoadOptions::default());
        // Every diagnostic must render (messages are built lazily in places).
        for d in &loaded.diagnostics {
            let _ = d.to_string();
        }
    }
});
