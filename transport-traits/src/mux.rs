//! The host multiplexer's mailboxes: where links running in interrupts or other tasks
//! drop whole request frames for the device loop to pick up.
//!
//! Each channel has one slot holding one frame (the client never pipelines: it waits for
//! the answer before sending again). [`HostMux::deliver`] and [`HostMux::close`] may be
//! called from an interrupt handler or another task; the device loop takes events with
//! [`HostMux::next`], fairly across channels, and hands them to `Device::handle` or
//! `Device::channel_closed`. All shared state sits behind a `critical_section::Mutex`,
//! held only for a copy of one frame.

use core::cell::RefCell;

use critical_section::Mutex;

use lwm2m_core::session::Session;
use lwm2m_core::{Channel, ChannelId, ChannelKind, Effect, Instant};

use crate::run::{Host, HostEvent};
use crate::{ErrorKind, ErrorType};

/// What the device loop gets from [`HostMux::next`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum MuxEvent {
    /// A request frame of `len` bytes from channel `channel`, copied into the buffer.
    Frame {
        /// Channel index.
        channel: usize,
        /// Frame length.
        len: usize,
    },
    /// The link of channel `channel` closed: its session, if any, ends.
    Closed {
        /// Channel index.
        channel: usize,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SlotState {
    Empty,
    Frame(usize),
    Closed,
}

struct Slots<const CHANNELS: usize, const FRAME: usize> {
    state: [SlotState; CHANNELS],
    frames: [[u8; FRAME]; CHANNELS],
    /// Where the next fair search starts.
    cursor: usize,
}

/// Mailboxes for `CHANNELS` host links, each holding one frame of at most `FRAME` bytes.
pub struct HostMux<const CHANNELS: usize, const FRAME: usize> {
    slots: Mutex<RefCell<Slots<CHANNELS, FRAME>>>,
}

impl<const CHANNELS: usize, const FRAME: usize> Default for HostMux<CHANNELS, FRAME> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const CHANNELS: usize, const FRAME: usize> HostMux<CHANNELS, FRAME> {
    /// Empty mailboxes (usable in a `static`).
    pub const fn new() -> Self {
        HostMux {
            slots: Mutex::new(RefCell::new(Slots {
                state: [SlotState::Empty; CHANNELS],
                frames: [[0; FRAME]; CHANNELS],
                cursor: 0,
            })),
        }
    }

    /// A whole request frame arrived on channel `channel` (interrupt- and task-safe).
    /// [`ErrorKind::Overflow`] if it is larger than `FRAME`; [`ErrorKind::Other`] if the
    /// channel does not exist or its previous frame was not taken yet (the link should
    /// answer busy or drop it; the client never sends before its answer came).
    pub fn deliver(&self, channel: usize, frame: &[u8]) -> Result<(), ErrorKind> {
        if frame.len() > FRAME {
            return Err(ErrorKind::Overflow);
        }
        critical_section::with(|cs| {
            let mut slots = self.slots.borrow_ref_mut(cs);
            match slots.state.get(channel) {
                Some(SlotState::Empty) => {}
                _ => return Err(ErrorKind::Other),
            }
            slots.frames[channel][..frame.len()].copy_from_slice(frame);
            slots.state[channel] = SlotState::Frame(frame.len());
            Ok(())
        })
    }

    /// The link of channel `channel` closed (interrupt- and task-safe). A frame not yet
    /// taken is dropped: nobody is left to answer.
    pub fn close(&self, channel: usize) {
        critical_section::with(|cs| {
            if let Some(state) = self.slots.borrow_ref_mut(cs).state.get_mut(channel) {
                *state = SlotState::Closed;
            }
        });
    }

    /// Takes the next event, searching the channels round-robin so that no link starves
    /// another; a frame is copied into `buf` (which must hold `FRAME` bytes, else the
    /// frame is dropped and reported as `len` 0).
    pub fn next(&self, buf: &mut [u8]) -> Option<MuxEvent> {
        critical_section::with(|cs| {
            let mut slots = self.slots.borrow_ref_mut(cs);
            let start = slots.cursor;
            let channel = (0..CHANNELS)
                .map(|i| (start + i) % CHANNELS)
                .find(|&c| slots.state[c] != SlotState::Empty)?;
            slots.cursor = (channel + 1) % CHANNELS;
            let event = match slots.state[channel] {
                SlotState::Frame(len) => {
                    let event = match buf.get_mut(..len) {
                        Some(out) => {
                            out.copy_from_slice(&slots.frames[channel][..len]);
                            MuxEvent::Frame { channel, len }
                        }
                        None => MuxEvent::Frame { channel, len: 0 },
                    };
                    // The mailbox keeps no copy (a login frame carries a password).
                    slots.frames[channel][..len].fill(0);
                    event
                }
                _ => MuxEvent::Closed { channel },
            };
            slots.state[channel] = SlotState::Empty;
            Some(event)
        })
    }
}

/// What a channel of a [`MuxHost`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Role {
    /// A host link of this kind (its requests go through the session).
    Link(ChannelKind),
    /// A local side handler running its requests with the rights of this profile,
    /// outside the session (`Device::handle_side`).
    Side(u16),
}

/// Sends the answers of a [`MuxHost`]'s channels (the board's UART, BLE, NFC drivers).
pub trait Transmit: ErrorType {
    /// Sends `frame` on channel `channel`.
    fn send(&mut self, channel: usize, frame: &[u8]) -> Result<(), Self::Error>;
}

/// How a [`MuxHost`] waits for its links: on a board, sleep (WFI) until an interrupt or
/// a timer set at the deadline.
pub trait Sleep {
    /// Sleeps until something may have been delivered or `deadline` (`None`: no
    /// deadline); returns whether the deadline has passed.
    fn sleep_until(&mut self, deadline: Option<Instant>) -> bool;
}

/// A board's host side for the device loop ([`crate::run::run`]): the frames that
/// interrupt handlers and tasks put in a [`HostMux`], answers through [`Transmit`],
/// waiting through [`Sleep`]. Channel `i` of the mux is [`Channel`] id `i`.
pub struct MuxHost<'m, const CHANNELS: usize, const FRAME: usize, X, S> {
    mux: &'m HostMux<CHANNELS, FRAME>,
    roles: [Role; CHANNELS],
    transmit: X,
    sleep: S,
}

impl<'m, const CHANNELS: usize, const FRAME: usize, X, S> MuxHost<'m, CHANNELS, FRAME, X, S> {
    /// The host side over `mux`, whose channel `i` plays `roles[i]`.
    pub const fn new(
        mux: &'m HostMux<CHANNELS, FRAME>,
        roles: [Role; CHANNELS],
        transmit: X,
        sleep: S,
    ) -> Self {
        MuxHost {
            mux,
            roles,
            transmit,
            sleep,
        }
    }

    /// The transmitter and the sleeper back.
    pub fn into_parts(self) -> (X, S) {
        (self.transmit, self.sleep)
    }
}

impl<const CHANNELS: usize, const FRAME: usize, X: Transmit, S> ErrorType
    for MuxHost<'_, CHANNELS, FRAME, X, S>
{
    type Error = X::Error;
}

impl<const CHANNELS: usize, const FRAME: usize, X: Transmit, S: Sleep> Host
    for MuxHost<'_, CHANNELS, FRAME, X, S>
{
    fn wait(
        &mut self,
        _session: &Session,
        deadline: Option<Instant>,
        buf: &mut [u8],
    ) -> Result<HostEvent, Self::Error> {
        loop {
            let event = match self.mux.next(buf) {
                // A frame larger than `buf` was dropped: answered as an empty, malformed
                // request (80), so its sender is not left waiting.
                Some(MuxEvent::Frame { channel, len }) => Some((channel, len)),
                Some(MuxEvent::Closed { channel }) => {
                    return Ok(HostEvent::Closed(ChannelId(channel as u16)))
                }
                None => None,
            };
            if let Some((index, len)) = event {
                let id = index as u16;
                return Ok(match self.roles.get(index) {
                    Some(Role::Side(profile)) => HostEvent::Side {
                        channel: Channel::new(id, ChannelKind::Side),
                        profile: *profile,
                        len,
                    },
                    Some(Role::Link(kind)) => HostEvent::Request {
                        channel: Channel::new(id, *kind),
                        len,
                    },
                    None => continue,
                });
            }
            if self.sleep.sleep_until(deadline) {
                return Ok(HostEvent::Timeout);
            }
        }
    }

    fn reply(
        &mut self,
        channel: ChannelId,
        frame: &[u8],
        _effect: Option<Effect>,
    ) -> Result<(), Self::Error> {
        self.transmit.send(usize::from(channel.0), frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_and_closes_come_out_fairly() {
        let mux: HostMux<3, 16> = HostMux::new();
        mux.deliver(0, b"a0").unwrap();
        mux.deliver(2, b"c0").unwrap();
        mux.close(1);
        assert_eq!(
            mux.deliver(0, b"a1"),
            Err(ErrorKind::Other),
            "one frame per channel"
        );
        assert_eq!(mux.deliver(7, b"x"), Err(ErrorKind::Other));
        assert_eq!(mux.deliver(0, &[0; 17]), Err(ErrorKind::Overflow));
        let mut buf = [0u8; 16];
        assert_eq!(
            mux.next(&mut buf),
            Some(MuxEvent::Frame { channel: 0, len: 2 })
        );
        assert_eq!(&buf[..2], b"a0");
        mux.deliver(0, b"a1").unwrap();
        // Channel 0 has a new frame, but 1 and 2 come first.
        assert_eq!(mux.next(&mut buf), Some(MuxEvent::Closed { channel: 1 }));
        assert_eq!(
            mux.next(&mut buf),
            Some(MuxEvent::Frame { channel: 2, len: 2 })
        );
        assert_eq!(
            mux.next(&mut buf),
            Some(MuxEvent::Frame { channel: 0, len: 2 })
        );
        assert_eq!(&buf[..2], b"a1");
        assert_eq!(mux.next(&mut buf), None);
    }

    #[test]
    fn producers_on_other_threads() {
        static MUX: HostMux<4, 8> = HostMux::new();
        const PER_CHANNEL: u8 = 200;
        let producers: Vec<_> = (0..4)
            .map(|channel| {
                std::thread::spawn(move || {
                    let mut sent = 0u8;
                    while sent < PER_CHANNEL {
                        if MUX.deliver(channel, &[channel as u8, sent]).is_ok() {
                            sent += 1;
                        } else {
                            std::thread::yield_now();
                        }
                    }
                })
            })
            .collect();
        let mut next_expected = [0u8; 4];
        let mut buf = [0u8; 8];
        while next_expected.iter().any(|&n| n < PER_CHANNEL) {
            match MUX.next(&mut buf) {
                Some(MuxEvent::Frame { channel, len: 2 }) => {
                    assert_eq!(buf[0] as usize, channel);
                    assert_eq!(
                        buf[1], next_expected[channel],
                        "frames of a channel stay in order"
                    );
                    next_expected[channel] += 1;
                }
                Some(other) => panic!("unexpected {other:?}"),
                None => std::thread::yield_now(),
            }
        }
        for p in producers {
            p.join().unwrap();
        }
    }
}
