//! Helpers for unit tests (which run with std).

/// Decodes a hex string (whitespace ignored).
pub fn hex(s: &str) -> std::vec::Vec<u8> {
    let digits: std::vec::Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    assert!(digits.len().is_multiple_of(2), "odd hex string {s:?}");
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(core::str::from_utf8(pair).unwrap(), 16).unwrap())
        .collect()
}
