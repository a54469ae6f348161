//! The proxy's serialized header map, read zero-copy.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = jwt_guard::runtime::header_map::parse(data);
});
