//! The plain configuration values (`/object//resource`: app name, Wi-Fi, MQTT, target
//! protocol...), packed one after the other in a fixed buffer.
//!
//! Each value takes what it holds plus a 5-byte header, so the room of a build is the sum
//! of what its objects declare (`lwm2m_objects` checks that every declared value at its
//! largest fits [`SETTINGS_BYTES`]): a write the declaration allows never runs out of
//! room, and a short value costs little.
//!
//! ```text
//! entry: object u16 | resource u16 | len u8 | value[len]      (big-endian)
//! ```
//!
//! Some values are secrets (the Wi-Fi key, the MQTT passwords, the relay net key): bytes
//! a value leaves are wiped, the whole buffer is wiped on drop, and `Debug` shows the
//! objects, resources and lengths only.
#![deny(clippy::indexing_slicing, clippy::arithmetic_side_effects)]

use zeroize::Zeroize;

use super::CapacityError;

pub use super::capacity::SETTINGS_BYTES;
/// Longest configuration value.
pub const SETTING_LEN: usize = 128;
/// Bytes before each value: object, resource, length.
pub const ENTRY_HEADER_LEN: usize = 5;
/// Most values (the configuration image counts them on one byte).
pub const MAX_ENTRIES: usize = 255;

/// The configuration values, packed.
#[derive(Clone, PartialEq, Eq)]
pub struct Settings {
    bytes: [u8; SETTINGS_BYTES],
    used: usize,
}

/// One configuration value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SettingRef<'a> {
    /// Object id.
    pub object: u16,
    /// Resource id.
    pub resource: u16,
    /// The value as written.
    pub value: &'a [u8],
}

impl Default for Settings {
    fn default() -> Self {
        Settings::new()
    }
}

impl Settings {
    /// No value.
    pub const fn new() -> Settings {
        Settings {
            bytes: [0; SETTINGS_BYTES],
            used: 0,
        }
    }

    /// The values, in the order they were first written.
    pub fn iter(&self) -> impl Iterator<Item = SettingRef<'_>> + '_ {
        let mut at = 0;
        core::iter::from_fn(move || {
            let (entry, len) = self.entry_at(at)?;
            at = at.checked_add(len)?;
            Some(entry)
        })
    }

    /// How many values are stored.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// Whether no value is stored.
    pub fn is_empty(&self) -> bool {
        self.used == 0
    }

    /// Bytes in use, headers included.
    pub fn used(&self) -> usize {
        self.used
    }

    /// The value of `/object//resource`.
    pub fn get(&self, object: u16, resource: u16) -> Option<&[u8]> {
        self.iter()
            .find(|s| s.object == object && s.resource == resource)
            .map(|s| s.value)
    }

    /// Stores the value of `/object//resource`, replacing the one it had; `Err` when the
    /// value is longer than [`SETTING_LEN`] or does not fit the room left (nothing is
    /// changed then).
    pub fn set(&mut self, object: u16, resource: u16, value: &[u8]) -> Result<(), CapacityError> {
        let len = u8::try_from(value.len())
            .ok()
            .filter(|&n| usize::from(n) <= SETTING_LEN)
            .ok_or(CapacityError)?;
        let found = self.find(object, resource);
        // The same length: in place.
        if let Some((at, entry_len)) = found {
            if entry_len == ENTRY_HEADER_LEN.saturating_add(value.len()) {
                let start = at.saturating_add(ENTRY_HEADER_LEN);
                let end = at.saturating_add(entry_len);
                self.bytes
                    .get_mut(start..end)
                    .ok_or(CapacityError)?
                    .copy_from_slice(value);
                return Ok(());
            }
        }
        if found.is_none() && self.len() >= MAX_ENTRIES {
            return Err(CapacityError);
        }
        let freed = found.map_or(0, |(_, entry_len)| entry_len);
        let needed = ENTRY_HEADER_LEN.saturating_add(value.len());
        let room = SETTINGS_BYTES
            .saturating_sub(self.used)
            .saturating_add(freed);
        if needed > room {
            return Err(CapacityError);
        }
        if let Some((at, entry_len)) = found {
            self.remove_at(at, entry_len);
        }
        let start = self.used;
        let end = start.saturating_add(needed);
        let entry = self.bytes.get_mut(start..end).ok_or(CapacityError)?;
        let (header, body) = entry.split_at_mut(ENTRY_HEADER_LEN);
        header.copy_from_slice(&[
            (object >> 8) as u8,
            object as u8,
            (resource >> 8) as u8,
            resource as u8,
            len,
        ]);
        body.copy_from_slice(value);
        self.used = end;
        Ok(())
    }

    /// The entries as they are packed, each `object | resource | len | value`: the layout
    /// of the settings of the configuration image.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..self.used).unwrap_or_default()
    }

    /// Appends an entry with this header (`object | resource | len`, as packed) whose
    /// value `fill` writes in place; `Err`, with nothing appended, when the value is
    /// longer than [`SETTING_LEN`] or does not fit the room left. The caller checks that
    /// no entry of the same object and resource is stored.
    pub(crate) fn append_with(
        &mut self,
        header: [u8; ENTRY_HEADER_LEN],
        fill: impl FnOnce(&mut [u8]),
    ) -> Result<(), CapacityError> {
        let [.., len] = header;
        let len = usize::from(len);
        if len > SETTING_LEN {
            return Err(CapacityError);
        }
        let start = self.used;
        let end = start.saturating_add(len.saturating_add(ENTRY_HEADER_LEN));
        let (head, value) = self
            .bytes
            .get_mut(start..end)
            .and_then(|entry| entry.split_at_mut_checked(ENTRY_HEADER_LEN))
            .ok_or(CapacityError)?;
        head.copy_from_slice(&header);
        fill(value);
        self.used = end;
        Ok(())
    }

    /// Removes every value (and wipes them).
    pub fn clear(&mut self) {
        if let Some(live) = self.bytes.get_mut(..self.used) {
            live.zeroize();
        }
        self.used = 0;
    }

    /// Removes the value of `/object//resource`; whether there was one.
    pub fn remove(&mut self, object: u16, resource: u16) -> bool {
        match self.find(object, resource) {
            Some((at, len)) => {
                self.remove_at(at, len);
                true
            }
            None => false,
        }
    }

    /// Keeps only the values for which `keep` is true.
    pub fn retain(&mut self, mut keep: impl FnMut(SettingRef<'_>) -> bool) {
        let mut at = 0;
        while let Some((entry, len)) = self.entry_at(at) {
            if keep(entry) {
                at = at.saturating_add(len);
            } else {
                self.remove_at(at, len);
            }
        }
    }

    /// Offset and length (header included) of the entry of `/object//resource`.
    fn find(&self, object: u16, resource: u16) -> Option<(usize, usize)> {
        let mut at = 0;
        while let Some((entry, len)) = self.entry_at(at) {
            if entry.object == object && entry.resource == resource {
                return Some((at, len));
            }
            at = at.checked_add(len)?;
        }
        None
    }

    /// The entry at `at` and its length, header included.
    fn entry_at(&self, at: usize) -> Option<(SettingRef<'_>, usize)> {
        let (header, rest) = self
            .bytes
            .get(at..self.used)?
            .split_first_chunk::<ENTRY_HEADER_LEN>()?;
        let [o0, o1, r0, r1, len] = *header;
        let value = rest.get(..usize::from(len))?;
        Some((
            SettingRef {
                object: u16::from_be_bytes([o0, o1]),
                resource: u16::from_be_bytes([r0, r1]),
                value,
            },
            ENTRY_HEADER_LEN.saturating_add(value.len()),
        ))
    }

    /// Closes the gap of the entry at `at` of `len` bytes and wipes the bytes freed.
    fn remove_at(&mut self, at: usize, len: usize) {
        let Some(live) = self.bytes.get_mut(at..self.used) else {
            return;
        };
        let Some(entry) = live.get_mut(..len) else {
            return;
        };
        // Wiped first, then moved past the entries after it: the freed bytes are zeros.
        entry.zeroize();
        crate::wire::shift_down(live, len);
        self.used = self.used.saturating_sub(len);
    }
}

impl Drop for Settings {
    fn drop(&mut self) {
        self.bytes.zeroize();
    }
}

impl core::fmt::Debug for Settings {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        struct Redacted(u16, u16, usize);
        impl core::fmt::Debug for Redacted {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                write!(f, "/{}//{} ({} bytes)", self.0, self.1, self.2)
            }
        }
        f.debug_list()
            .entries(
                self.iter()
                    .map(|s| Redacted(s.object, s.resource, s.value.len())),
            )
            .finish()
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
mod tests {
    use super::*;

    #[test]
    fn values_are_replaced_in_place_or_moved_to_the_end() {
        let mut s = Settings::new();
        s.set(1024, 9, b"Demo").unwrap();
        s.set(1024, 16, b"secret-key").unwrap();
        s.set(1027, 1, &[3]).unwrap();
        assert_eq!(s.get(1024, 9), Some(&b"Demo"[..]));
        s.set(1024, 9, b"Abcd").unwrap(); // same length: in place
        assert_eq!(s.iter().next().unwrap().value, b"Abcd");
        s.set(1024, 9, b"Longer name").unwrap(); // moved to the end
        let order: std::vec::Vec<u16> = s.iter().map(|e| e.resource).collect();
        assert_eq!(order, [16, 1, 9]);
        assert_eq!(s.get(1024, 9), Some(&b"Longer name"[..]));
        assert_eq!(s.len(), 3);
        assert!(s.remove(1024, 16));
        assert!(!s.remove(1024, 16));
        assert_eq!(s.get(1024, 16), None);
        assert_eq!(s.used(), 5 + 1 + 5 + 11);
        // The bytes a value left are wiped.
        assert!(s.bytes[s.used..].iter().all(|&b| b == 0));
        assert!(!s.bytes.windows(10).any(|w| w == b"secret-key"));
    }

    #[test]
    fn the_room_is_honest() {
        let mut s = Settings::new();
        assert_eq!(s.set(1, 1, &[0; SETTING_LEN + 1]), Err(CapacityError));
        let mut n = 0u16;
        while s.set(1, n, &[7; SETTING_LEN]).is_ok() {
            n += 1;
        }
        assert_eq!(
            usize::from(n),
            SETTINGS_BYTES / (ENTRY_HEADER_LEN + SETTING_LEN)
        );
        let before = s.clone();
        assert_eq!(s.set(2, 0, &[1; SETTING_LEN]), Err(CapacityError));
        assert_eq!(s, before, "a refused write changes nothing");
        // Replacing a value by a shorter one always fits.
        s.set(1, 0, b"x").unwrap();
        s.retain(|e| e.resource % 2 == 0);
        assert!(s.iter().all(|e| e.resource % 2 == 0));
    }

    #[test]
    fn debug_shows_lengths_only() {
        let mut s = Settings::new();
        s.set(1024, 16, b"WIFI-KEY").unwrap();
        let shown = std::format!("{s:?}");
        assert_eq!(shown, "[/1024//16 (8 bytes)]");
    }
}
