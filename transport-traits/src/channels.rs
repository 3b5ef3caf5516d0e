//! Ids for links that come and go.
//!
//! The engine knows a link by its [`ChannelId`] alone: the session, and its login, belong
//! to the id of the link that opened it. A port whose links are created at run time (TCP
//! and WebSocket connections, a BLE central reconnecting) must therefore never give a new
//! link the id of one whose session the engine still holds, nor of a link still open:
//! the new link would inherit the old one's login. [`ChannelIds`] hands out ids in turn,
//! wrapping round its range, and skips every id its caller says is in use.
//!
//! ```
//! use lwm2m_core::ChannelId;
//! use transport_traits::channels::ChannelIds;
//!
//! let mut ids = ChannelIds::new(1, 3);
//! let open = [ChannelId(2)];
//! let in_use = |id: ChannelId| open.contains(&id);
//! assert_eq!(ids.allocate(in_use), Some(ChannelId(1)));
//! assert_eq!(ids.allocate(in_use), Some(ChannelId(3)));
//! assert_eq!(ids.allocate(in_use), Some(ChannelId(1)), "wraps, skipping 2");
//! ```

use lwm2m_core::ChannelId;

/// Hands out the ids `first..=last` in turn, never one in use.
#[derive(Clone, Debug)]
pub struct ChannelIds {
    first: u16,
    last: u16,
    next: u16,
}

impl ChannelIds {
    /// Ids from `first` to `last` included (`last` is raised to `first` if below it).
    /// Keep the ids of the board's fixed links (NFC, BLE, serial) outside the range.
    pub const fn new(first: u16, last: u16) -> ChannelIds {
        let last = if last < first { first } else { last };
        ChannelIds {
            first,
            last,
            next: first,
        }
    }

    /// The next id after the last one handed out for which `in_use` is false; `None`
    /// when every id of the range is in use (refuse the link).
    ///
    /// `in_use` must be true for the id of every link still open and for every id the
    /// engine still knows (`Device::channel_in_use`). It is asked at most once per id
    /// of the range.
    pub fn allocate(&mut self, mut in_use: impl FnMut(ChannelId) -> bool) -> Option<ChannelId> {
        let span = u32::from(self.last - self.first) + 1;
        for _ in 0..span {
            let id = self.next;
            self.next = if id == self.last { self.first } else { id + 1 };
            if !in_use(ChannelId(id)) {
                return Some(ChannelId(id));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_in_use_is_never_handed_out_across_a_wrap() {
        let mut ids = ChannelIds::new(1, u16::MAX);
        let owner = ids.allocate(|_| false).unwrap();
        // Many more links than ids come and go; the owner's id is never reused.
        for _ in 0..3 * 65_536 {
            let id = ids.allocate(|id| id == owner).unwrap();
            assert_ne!(id, owner);
            assert_ne!(id, ChannelId(0), "outside the range");
        }
    }

    #[test]
    fn a_full_range_refuses_and_a_freed_id_comes_back() {
        let mut ids = ChannelIds::new(10, 12);
        let mut open = std::vec::Vec::new();
        for _ in 0..3 {
            let id = ids.allocate(|id| open.contains(&id)).unwrap();
            open.push(id);
        }
        let mut asked = 0;
        assert_eq!(
            ids.allocate(|id| {
                asked += 1;
                open.contains(&id)
            }),
            None
        );
        assert_eq!(asked, 3, "each id asked once");
        open.retain(|&id| id != ChannelId(11));
        assert_eq!(ids.allocate(|id| open.contains(&id)), Some(ChannelId(11)));
        assert_eq!(
            ChannelIds::new(5, 1).allocate(|_| false),
            Some(ChannelId(5))
        );
    }
}
