//! How long a message may be, by Postgres's own limits: what the server
//! reads from a client before it gives up on the connection, and what it
//! can build to send. A Postgres fault frames messages only within these,
//! so that a peer cannot make faultgate hold more than Postgres would.
//!
//! All lengths here are length words as on the wire: they count the length
//! word itself, not the type byte.

/// The longest startup packet (or SSL, GSS or cancel request) the server
/// reads: 10,000 bytes after its length word (`MAX_STARTUP_PACKET_LENGTH`).
pub(super) const MAX_STARTUP_PACKET: usize = 10_000 + 4;

/// The shortest one: a length word and a request code.
pub(super) const MIN_STARTUP_PACKET: usize = 8;

/// Client messages that should be short (`PQ_SMALL_MESSAGE_LIMIT`).
const SMALL: usize = 10_000;

/// Client messages that may be long: 1 GB less two (`PQ_LARGE_MESSAGE_LIMIT`,
/// `MaxAllocSize - 1`).
const LARGE: usize = 0x3fff_fffe;

/// A password, SASL or GSS response: the server reads these only during
/// authentication, and none longer than `PG_MAX_AUTH_TOKEN_LENGTH`.
const AUTH_RESPONSE: usize = 65_535;

/// The server builds each message it sends in one buffer of at most
/// `MaxAllocSize` (1 GB less one) bytes.
const FROM_SERVER: usize = 0x3fff_ffff + 4;

/// The longest length word Postgres takes for a message of type `tag` from
/// the client, and what that message is, for the reason a connection is
/// closed.
///
/// A type Postgres does not take from a client ends the session at its type
/// byte; faultgate lets one through (the server refuses it) but holds no
/// more of it than of a short message.
pub(super) fn from_client(tag: u8) -> (usize, &'static str) {
    match tag {
        b'Q' => (LARGE, "Query"),
        b'F' => (LARGE, "FunctionCall"),
        b'P' => (LARGE, "Parse"),
        b'B' => (LARGE, "Bind"),
        b'd' => (LARGE, "CopyData"),
        b'p' => (AUTH_RESPONSE, "a password or authentication response"),
        b'S' => (SMALL, "Sync"),
        b'H' => (SMALL, "Flush"),
        b'X' => (SMALL, "Terminate"),
        b'C' => (SMALL, "Close"),
        b'D' => (SMALL, "Describe"),
        b'E' => (SMALL, "Execute"),
        b'c' => (SMALL, "CopyDone"),
        b'f' => (SMALL, "CopyFail"),
        _ => (SMALL, "a type Postgres does not take from a client"),
    }
}

/// The longest length word a message from the server can have.
pub(super) fn from_server() -> usize {
    FROM_SERVER
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_messages_have_postgres_limits_by_type() {
        for tag in *b"QFPBd" {
            assert_eq!(from_client(tag).0, 1_073_741_822, "{}", char::from(tag));
        }
        for tag in *b"SHXCDEcf" {
            assert_eq!(from_client(tag).0, 10_000, "{}", char::from(tag));
        }
        assert_eq!(from_client(b'p').0, 65_535);
        assert_eq!(from_client(b'?').0, 10_000);
        assert_eq!(from_server(), 1_073_741_827);
        assert_eq!(MAX_STARTUP_PACKET, 10_004);
    }
}
