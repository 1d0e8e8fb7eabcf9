#![no_main]
// Invariants: poolwright::invariants::check_userlist (see fuzz/README.md).
libfuzzer_sys::fuzz_target!(|data: &[u8]| poolwright::invariants::check_userlist(data));
