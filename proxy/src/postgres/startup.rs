//! The client side of the startup handshake, ahead of every fault: TLS
//! requests are answered here, and the session is seen to start.

use bytes::{Buf, Bytes, BytesMut};

use super::{Malformed, PostgresTls};

/// The longest startup packet Postgres accepts.
const MAX_STARTUP: usize = 10_000;

const SSL_REQUEST: u32 = 80_877_103;
const GSSENC_REQUEST: u32 = 80_877_104;
const CANCEL_REQUEST: u32 = 80_877_102;

/// The client side of the startup handshake, ahead of every fault.
pub(super) struct StartupGate {
    tls: PostgresTls,
    buffer: BytesMut,
    done: bool,
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
}

impl StartupGate {
    pub(super) fn new(tls: PostgresTls) -> Self {
        Self {
            tls,
            buffer: BytesMut::new(),
            done: false,
        }
    }

    /// Takes bytes from the client. Until the StartupMessage (or a cancel
    /// request) has gone by, packets are collected whole and TLS requests
    /// are answered here; after, bytes pass untouched.
    pub(super) fn take(&mut self, data: Bytes) -> Result<Gated, Malformed> {
        if self.done {
            return Ok(Gated {
                forward: Some(data),
                ..Gated::default()
            });
        }
        self.buffer.extend_from_slice(&data);
        let mut gated = Gated::default();
        while self.buffer.len() >= 8 {
            let len = u32::from_be_bytes(self.buffer[..4].try_into().unwrap()) as usize;
            if !(8..=MAX_STARTUP).contains(&len) {
                return Err(Malformed(format!(
                    "startup packet of {len} bytes from the client (expected 8 to {MAX_STARTUP})"
                )));
            }
            if self.buffer.len() < len {
                break;
            }
            let code = u32::from_be_bytes(self.buffer[4..8].try_into().unwrap());
            match code {
                SSL_REQUEST | GSSENC_REQUEST if self.tls == PostgresTls::Refuse => {
                    self.buffer.advance(len);
                    gated.answer.push(b'N');
                }
                SSL_REQUEST | GSSENC_REQUEST | CANCEL_REQUEST => {
                    gated.opaque = true;
                    return Ok(self.finish(gated));
                }
                code if code >> 16 == 3 => return Ok(self.finish(gated)),
                code => {
                    return Err(Malformed(format!(
                        "startup packet with protocol {}.{} from the client (faultgate speaks 3.x)",
                        code >> 16,
                        code & 0xffff
                    )));
                }
            }
        }
        Ok(gated)
    }

    fn finish(&mut self, mut gated: Gated) -> Gated {
        self.done = true;
        gated.forward = Some(std::mem::take(&mut self.buffer).freeze());
        gated
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gate_answers_tls_requests_and_passes_the_startup() {
        let mut gate = StartupGate::new(PostgresTls::Refuse);
        let ssl = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];
        let gated = gate.take(Bytes::copy_from_slice(&ssl[..5])).unwrap();
        assert!(gated.forward.is_none() && gated.answer.is_empty());
        let gated = gate.take(Bytes::copy_from_slice(&ssl[5..])).unwrap();
        assert_eq!(gated.answer, b"N");
        let startup = [0, 0, 0, 8, 0, 3, 0, 0];
        let gated = gate.take(Bytes::copy_from_slice(&startup)).unwrap();
        assert!(!gated.opaque);
        assert_eq!(gated.forward.unwrap(), &startup[..]);

        let mut passthrough = StartupGate::new(PostgresTls::Passthrough);
        let gated = passthrough.take(Bytes::copy_from_slice(&ssl)).unwrap();
        assert!(gated.opaque);
        assert_eq!(gated.forward.unwrap(), &ssl[..]);
    }

    #[test]
    fn gate_refuses_garbage() {
        let mut gate = StartupGate::new(PostgresTls::Refuse);
        let err = gate
            .take(Bytes::from_static(b"GET / HTTP/1.1\r\n"))
            .unwrap_err();
        assert!(err.0.contains("startup packet"), "{err}");
    }
}
