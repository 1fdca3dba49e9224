//! libFuzzer entry point; the checks live in `tokforge_fuzz::hf_normalizer_growth` (src/lib.rs), shared with the
//! stable driver.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tokforge_fuzz::hf_normalizer_growth(data));
