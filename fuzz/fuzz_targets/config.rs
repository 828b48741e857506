//! Arbitrary ANY_API_CONFIG text (JSONC) never panics the parser or validator.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = llm_gateway::config::parse(text);
    }
});
