//! The client side of the startup handshake, ahead of every fault: TLS
//! requests are answered here, and the session is seen to start.
//!
//! As Postgres does, one SSLRequest and one GSSENCRequest are answered (in
//! either order); then the startup packet, or a cancel request, must come.
//! A request made again is refused, so that a client cannot have answers
//! made for it without end.

use bytes::{Buf, Bytes, BytesMut};

use super::limits::{MAX_STARTUP_PACKET, MIN_STARTUP_PACKET};
use super::{Malformed, PostgresTls};

const SSL_REQUEST: u32 = 80_877_103;
const GSSENC_REQUEST: u32 = 80_877_104;
const CANCEL_REQUEST: u32 = 80_877_102;

/// The client side of the startup handshake, ahead of every fault.
pub(super) struct StartupGate {
    tls: PostgresTls,
    buffer: BytesMut,
    done: bool,
    /// An SSLRequest was answered.
    ssl_answered: bool,
    /// A GSSENCRequest was answered.
    gssenc_answered: bool,
}

/// What the gate made of bytes from the client.
#[derive(Debug, Default)]
pub(super) struct Gated {
    /// Pass these on, as read.
    pub forward: Option<Bytes>,
    /// Send these bytes back to the client.
    pub answer: Vec<u8>,
    /// The connection stops being readable as the protocol (TLS passed
    /// through, a cancel request): only bytes from here on.
    pub opaque: bool,
    /// The client broke the handshake: send the answers made before, then
    /// close.
    pub refused: Option<Malformed>,
}

impl StartupGate {
    pub(super) fn new(tls: PostgresTls) -> Self {
        Self {
            tls,
            buffer: BytesMut::new(),
            done: false,
            ssl_answered: false,
            gssenc_answered: false,
        }
    }

    /// Takes bytes from the client. Until the StartupMessage (or a cancel
    /// request) has gone by, packets are collected whole and TLS requests
    /// are answered here; after, bytes pass untouched.
    pub(super) fn take(&mut self, data: Bytes) -> Gated {
        if self.done {
            return Gated {
                forward: Some(data),
                ..Gated::default()
            };
        }
        self.buffer.extend_from_slice(&data);
        let mut gated = Gated::default();
        if let Err(refused) = self.packets(&mut gated) {
            gated.refused = Some(refused);
        }
        gated
    }

    /// Goes through the whole packets collected, until the handshake is
    /// over or one is not whole yet.
    fn packets(&mut self, gated: &mut Gated) -> Result<(), Malformed> {
        while !self.done && self.buffer.len() >= 8 {
            let len = u32::from_be_bytes(self.buffer[..4].try_into().unwrap()) as usize;
            if !(MIN_STARTUP_PACKET..=MAX_STARTUP_PACKET).contains(&len) {
                return Err(Malformed(format!(
                    "startup packet of {len} bytes from the client (expected {MIN_STARTUP_PACKET} to {MAX_STARTUP_PACKET})"
                )));
            }
            if self.buffer.len() < len {
                break;
            }
            let code = u32::from_be_bytes(self.buffer[4..8].try_into().unwrap());
            match code {
                SSL_REQUEST | GSSENC_REQUEST if self.tls == PostgresTls::Refuse => {
                    let (answered, name) = if code == SSL_REQUEST {
                        (&mut self.ssl_answered, "SSLRequest")
                    } else {
                        (&mut self.gssenc_answered, "GSSENCRequest")
                    };
                    if std::mem::replace(answered, true) {
                        return Err(Malformed(format!(
                            "a second {name} from the client (Postgres answers one, then expects the startup packet)"
                        )));
                    }
                    self.buffer.advance(len);
                    gated.answer.push(b'N');
                }
                SSL_REQUEST | GSSENC_REQUEST | CANCEL_REQUEST => {
                    gated.opaque = true;
                    self.finish(gated);
                }
                code if code >> 16 == 3 => self.finish(gated),
                code => {
                    return Err(Malformed(format!(
                        "startup packet with protocol {}.{} from the client (faultgate speaks 3.x)",
                        code >> 16,
                        code & 0xffff
                    )));
                }
            }
        }
        Ok(())
    }

    fn finish(&mut self, gated: &mut Gated) {
        self.done = true;
        gated.forward = Some(std::mem::take(&mut self.buffer).freeze());
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gate_answers_tls_requests_and_passes_the_startup() {
        let mut gate = StartupGate::new(PostgresTls::Refuse);
        let ssl = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];
        let gated = gate.take(Bytes::copy_from_slice(&ssl[..5]));
        assert!(gated.forward.is_none() && gated.answer.is_empty());
        let gated = gate.take(Bytes::copy_from_slice(&ssl[5..]));
        assert_eq!(gated.answer, b"N");
        let startup = [0, 0, 0, 8, 0, 3, 0, 0];
        let gated = gate.take(Bytes::copy_from_slice(&startup));
        assert!(!gated.opaque);
        assert_eq!(gated.forward.unwrap(), &startup[..]);

        let mut passthrough = StartupGate::new(PostgresTls::Passthrough);
        let gated = passthrough.take(Bytes::copy_from_slice(&ssl));
        assert!(gated.opaque);
        assert_eq!(gated.forward.unwrap(), &ssl[..]);
    }

    const GSSENC: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x30];
    const SSL: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];
    const STARTUP: [u8; 8] = [0, 0, 0, 8, 0, 3, 0, 0];

    #[test]
    fn gate_answers_one_tls_request_of_each_kind_in_either_order() {
        for order in [[SSL, GSSENC], [GSSENC, SSL]] {
            let mut gate = StartupGate::new(PostgresTls::Refuse);
            let gated = gate.take(Bytes::from([order.concat(), STARTUP.to_vec()].concat()));
            assert!(gated.refused.is_none());
            assert_eq!(gated.answer, b"NN");
            assert_eq!(gated.forward.unwrap(), &STARTUP[..]);
        }
    }

    #[test]
    fn gate_refuses_a_tls_request_made_again() {
        for (request, name) in [(SSL, "SSLRequest"), (GSSENC, "GSSENCRequest")] {
            let mut gate = StartupGate::new(PostgresTls::Refuse);
            assert_eq!(gate.take(Bytes::copy_from_slice(&request)).answer, b"N");
            let other = if request == SSL { GSSENC } else { SSL };
            assert_eq!(gate.take(Bytes::copy_from_slice(&other)).answer, b"N");
            let gated = gate.take(Bytes::copy_from_slice(&request));
            let refused = gated.refused.unwrap();
            assert!(refused.0.contains(&format!("a second {name}")), "{refused}");
            assert!(gated.answer.is_empty() && gated.forward.is_none());
        }
        // Sent again and again in one read: the first is answered, once.
        let mut gate = StartupGate::new(PostgresTls::Refuse);
        let gated = gate.take(Bytes::from(SSL.repeat(1000)));
        assert_eq!(gated.answer, b"N");
        assert!(gated.refused.is_some());
    }

    #[test]
    fn gate_takes_startup_packets_up_to_postgres_limit() {
        let packet = |len: usize| {
            let mut p = (len as u32).to_be_bytes().to_vec();
            p.extend_from_slice(&196_608u32.to_be_bytes());
            p.resize(len, 0);
            Bytes::from(p)
        };
        let mut gate = StartupGate::new(PostgresTls::Refuse);
        assert!(gate.take(packet(10_004)).forward.is_some());
        let mut gate = StartupGate::new(PostgresTls::Refuse);
        let refused = gate.take(packet(10_005)).refused.unwrap();
        assert!(refused.0.contains("10005 bytes"), "{refused}");
    }

    #[test]
    fn gate_refuses_garbage() {
        let mut gate = StartupGate::new(PostgresTls::Refuse);
        let refused = gate
            .take(Bytes::from_static(b"GET / HTTP/1.1\r\n"))
            .refused
            .unwrap();
        assert!(refused.0.contains("startup packet"), "{refused}");
    }
}
