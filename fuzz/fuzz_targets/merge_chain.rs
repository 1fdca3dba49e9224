//! libFuzzer entry point; the checks live in `tokforge_fuzz::merge_chain` (src/lib.rs), shared with the
//! stable driver.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tokforge_fuzz::merge_chain(data));
