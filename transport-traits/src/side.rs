//! A side handler's link beside a board's host link (feature `async`): one
//! [`asynch::Host`] for the async device loop ([`crate::run::asynch::run`]) out of the
//! board's host (its serial line, say: [`crate::serial::SerialHost`]) and a [`SideLink`]
//! (a Modbus RTU slave on another UART: `modbus_slave::rtu::RtuSlave`), so that a board
//! wires the two with no code of its own.
//!
//! [`Beside`] waits on both at once; a request of the side link is a
//! [`HostEvent::Side`] of its channel, run with the rights of the profile the board
//! gives it, outside the session ([`lwm2m_core::Device::start_side`]); answers go back
//! to the link whose channel they are for.

use embassy_futures::select::{select, Either};
use lwm2m_core::session::Session;
use lwm2m_core::{Channel, ChannelId, ChannelKind, Effect, Instant};

use crate::run::asynch;
use crate::run::HostEvent;
use crate::{Error, ErrorKind, ErrorType};

/// A side handler's link: requests that come whole, one at a time, each answered before
/// the next.
#[allow(async_fn_in_trait)]
pub trait SideLink: ErrorType {
    /// Waits until a request is ready to be taken ([`SideLink::take`]): at once if one
    /// is; never while the request taken last is not answered. Cancel-safe: dropped
    /// unfinished, it loses nothing.
    async fn ready(&mut self) -> Result<(), Self::Error>;

    /// The ready request: its APDU copied into `buf`, its length (0 if longer than
    /// `buf`: the device answers it as malformed); `None` if none is ready.
    fn take(&mut self, buf: &mut [u8]) -> Option<usize>;

    /// Answers the request taken last with the device's response APDU `frame` (nothing
    /// if none is waiting for its answer).
    async fn reply(&mut self, frame: &[u8]) -> Result<(), Self::Error>;
}

/// The error of a [`Beside`]: its host's or its side link's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum BesideError<H, S> {
    /// The host failed.
    Host(H),
    /// The side link failed.
    Side(S),
}

impl<H: Error, S: Error> Error for BesideError<H, S> {
    fn kind(&self) -> ErrorKind {
        match self {
            BesideError::Host(err) => err.kind(),
            BesideError::Side(err) => err.kind(),
        }
    }
}

/// The host `H` and the side link `L` as one [`asynch::Host`]: the events of the host,
/// and the side link's requests as [`HostEvent::Side`] of `channel` with the rights of
/// `profile`. `channel` must be none of the host's. A request of the side link that is
/// ready is taken first; the host's wait and the side link's are raced, so neither
/// holds the other up. The wait is cancel-safe when both are.
pub struct Beside<H, L> {
    host: H,
    side: L,
    channel: Channel,
    profile: u16,
}

impl<H, L> Beside<H, L> {
    /// `side` beside `host`, its requests from `channel` with the rights of `profile`.
    pub const fn new(host: H, side: L, channel: ChannelId, profile: u16) -> Self {
        Beside {
            host,
            side,
            channel: Channel::new(channel.0, ChannelKind::Side),
            profile,
        }
    }

    /// The host.
    pub fn host_mut(&mut self) -> &mut H {
        &mut self.host
    }

    /// The side link.
    pub fn side_mut(&mut self) -> &mut L {
        &mut self.side
    }
}

impl<H: ErrorType, L: ErrorType> ErrorType for Beside<H, L> {
    type Error = BesideError<H::Error, L::Error>;
}

impl<H: asynch::Host, L: SideLink> asynch::Host for Beside<H, L> {
    async fn wait(
        &mut self,
        session: &Session,
        deadline: Option<Instant>,
        buf: &mut [u8],
    ) -> Result<HostEvent, Self::Error> {
        loop {
            if let Some(len) = self.side.take(buf) {
                return Ok(HostEvent::Side {
                    channel: self.channel,
                    profile: self.profile,
                    len,
                });
            }
            match select(self.host.wait(session, deadline, buf), self.side.ready()).await {
                Either::First(event) => return event.map_err(BesideError::Host),
                Either::Second(ready) => ready.map_err(BesideError::Side)?,
            }
        }
    }

    async fn reply(
        &mut self,
        channel: ChannelId,
        frame: &[u8],
        effect: Option<Effect>,
    ) -> Result<(), Self::Error> {
        if channel == self.channel.id {
            self.side.reply(frame).await.map_err(BesideError::Side)
        } else {
            self.host
                .reply(channel, frame, effect)
                .await
                .map_err(BesideError::Host)
        }
    }
}
