//! What a pump knows of the protocol it carries. Plain bytes ([`Raw`]) know
//! nothing, and every hook is free; a `postgres` connection's
//! [`PgSide`] frames the session, answers the startup handshake and orders
//! the replies faults send back (see [`crate::postgres`]).

use bytes::Bytes;

use crate::plugin_host::PluginKind;
use crate::postgres::{FatalNotice, Malformed, PgSide, Reply};

/// How a connection ends when a plugin serving it fails.
pub enum OnFailure {
    /// RST to both peers: what a byte stream's client sees.
    Reset,
    /// FIN to both peers.
    Close,
    /// Write this to the peer this direction writes to, then close.
    WriteThenClose(Bytes),
    /// The other direction tells its peer, then closes.
    OtherSideCloses,
}

/// The protocol hooks the pump's scheduler calls.
pub trait Protocol: Send + 'static {
    /// Bytes just read, before any fault: what goes on to the faults.
    fn admit(&mut self, data: Bytes) -> Result<Option<Bytes>, Malformed>;

    /// Whether the data just admitted starts the session on this direction,
    /// so that the protocol's faults join now.
    fn session_starts(&mut self) -> bool;

    /// Whether faults of `kind` run on this direction now. (HTTP faults
    /// never run in a pump: the HTTP layer runs them per request.)
    fn runs(&self, kind: PluginKind) -> bool;

    /// Whether the protocol's faults must let data pass unseen (the
    /// connection is no longer readable as the protocol).
    fn opaque(&self) -> bool;

    /// Follows the bytes about to be written to the peer.
    fn wrote(&mut self, data: &[u8]);

    /// How much of `data`, about to be written to the peer, goes before a
    /// reply from the other direction must (0: one is due now).
    fn before_next_reply(&mut self, data: &[u8]) -> usize;

    /// A fault's reply to the peer this direction reads from; handed back
    /// when the replies already waiting for that peer leave no room.
    fn try_reply(&mut self, bytes: Bytes) -> Result<(), Bytes>;

    /// A fault asked to close: whether the other direction closes, after
    /// the replies queued there (else the caller closes now).
    fn close_after_replies(&mut self) -> bool;

    /// A reply from the other direction whose turn has come.
    fn due_reply(&mut self) -> Option<Reply>;

    /// Whether a reply from the other direction may be taken in (none is
    /// held).
    fn can_receive(&self) -> bool;

    /// Completes when a reply from the other direction is taken in (with
    /// `receive`), or when the reply [`Protocol::try_reply`] handed back has
    /// room (with `room`).
    fn replies_move(&mut self, receive: bool, room: bool) -> impl Future<Output = ()> + Send;

    /// Every reply still waiting, for a last write before closing.
    fn take_waiting(&mut self) -> Vec<Bytes>;

    /// This direction writes nothing more to its peer.
    fn finished(&mut self);

    /// A plugin serving the connection failed, for `reason`.
    fn on_plugin_failure(&mut self, reason: &str) -> OnFailure;
}

/// A connection carried as plain bytes: TCP faults only.
pub struct Raw;

impl Protocol for Raw {
    fn admit(&mut self, data: Bytes) -> Result<Option<Bytes>, Malformed> {
        Ok(Some(data))
    }
    fn session_starts(&mut self) -> bool {
        false
    }
    fn runs(&self, kind: PluginKind) -> bool {
        kind == PluginKind::Tcp
    }
    fn opaque(&self) -> bool {
        false
    }
    fn wrote(&mut self, _data: &[u8]) {}
    fn before_next_reply(&mut self, data: &[u8]) -> usize {
        data.len()
    }
    fn try_reply(&mut self, _bytes: Bytes) -> Result<(), Bytes> {
        Ok(())
    }
    fn close_after_replies(&mut self) -> bool {
        false
    }
    fn due_reply(&mut self) -> Option<Reply> {
        None
    }
    fn can_receive(&self) -> bool {
        false
    }
    async fn replies_move(&mut self, _receive: bool, _room: bool) {
        std::future::pending().await
    }
    fn take_waiting(&mut self) -> Vec<Bytes> {
        Vec::new()
    }
    fn finished(&mut self) {}
    fn on_plugin_failure(&mut self, _reason: &str) -> OnFailure {
        OnFailure::Reset
    }
}

impl Protocol for PgSide {
    fn admit(&mut self, data: Bytes) -> Result<Option<Bytes>, Malformed> {
        PgSide::admit(self, data)
    }
    fn session_starts(&mut self) -> bool {
        PgSide::session_starts(self)
    }
    fn runs(&self, kind: PluginKind) -> bool {
        match kind {
            PluginKind::Tcp => true,
            PluginKind::Postgres => self.running(),
            PluginKind::Http => false,
        }
    }
    fn opaque(&self) -> bool {
        PgSide::opaque(self)
    }
    fn wrote(&mut self, data: &[u8]) {
        PgSide::wrote(self, data)
    }
    fn before_next_reply(&mut self, data: &[u8]) -> usize {
        PgSide::before_next_reply(self, data)
    }
    fn try_reply(&mut self, bytes: Bytes) -> Result<(), Bytes> {
        PgSide::try_reply(self, bytes)
    }

    fn close_after_replies(&mut self) -> bool {
        PgSide::close_after_replies(self)
    }
    fn due_reply(&mut self) -> Option<Reply> {
        PgSide::due_reply(self)
    }
    fn can_receive(&self) -> bool {
        PgSide::can_receive(self)
    }
    async fn replies_move(&mut self, receive: bool, room: bool) {
        PgSide::replies_move(self, receive, room).await
    }
    fn take_waiting(&mut self) -> Vec<Bytes> {
        PgSide::take_waiting(self)
    }
    fn finished(&mut self) {
        PgSide::stop_receiving(self)
    }
    fn on_plugin_failure(&mut self, reason: &str) -> OnFailure {
        match self.fatal(reason) {
            FatalNotice::Write(notice) => OnFailure::WriteThenClose(notice),
            FatalNotice::HandedOver => OnFailure::OtherSideCloses,
            FatalNotice::CannotTell => OnFailure::Close,
        }
    }
}
