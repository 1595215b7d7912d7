//! Byte streams to a peer: a plain TCP socket, TLS over one, or (in `http`
//! mode) the in-memory pipe between the relay and the HTTP layer; how they
//! are read chunk by chunk, and how they are ended.
//!
//! Plain TCP keeps its own fast path: its halves need no lock, and a read
//! waits for readiness before it takes a buffer, so an idle connection holds
//! no read buffer.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream, ReadBuf};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio_rustls::TlsStream;

/// How much is read from a plain socket at once.
const TCP_READ_SIZE: usize = 256 * 1024;

/// How much is read from TLS or the HTTP pipe at once (a TLS record holds
/// at most 16 KiB of data).
const BUFFERED_READ_SIZE: usize = 16 * 1024;

/// How long a connection being closed is read from (and what arrives
/// thrown away) so that closing it sends FIN rather than RST.
const CLOSE_LINGER: Duration = Duration::from_millis(500);

/// How a connection ends when something ends it early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// FIN to both peers.
    Close,
    /// RST to both peers.
    Reset,
}

/// A byte stream to a peer.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Stream {
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Self::Plain(tcp) => tcp,
            Self::Tls(tls) => tls.get_ref().0,
        }
    }
}

/// The reading side of an [`Endpoint`].
pub trait Source: Send {
    /// The next bytes the peer sent; empty at the end of stream. Cancel
    /// safe: when the future is dropped, nothing has been read.
    fn read_chunk(&mut self) -> impl Future<Output = io::Result<Bytes>> + Send;
}

/// One end of a relayed connection.
pub trait Endpoint: Sized + Send + 'static {
    type Reader: Source + 'static;
    type Writer: AsyncWrite + Unpin + Send + 'static;

    fn split(self) -> (Self::Reader, Self::Writer);

    /// Ends the connection the way a fault asked, after the pumps stopped.
    fn finish(
        reader: Self::Reader,
        writer: Self::Writer,
        how: Ending,
    ) -> impl Future<Output = ()> + Send;
}

impl Source for OwnedReadHalf {
    async fn read_chunk(&mut self) -> io::Result<Bytes> {
        loop {
            self.readable().await?;
            let mut buf = BytesMut::with_capacity(TCP_READ_SIZE);
            match self.try_read_buf(&mut buf) {
                Ok(_) => return Ok(buf.freeze()),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

impl<T: AsyncRead + Send> Source for tokio::io::ReadHalf<T> {
    async fn read_chunk(&mut self) -> io::Result<Bytes> {
        let mut buf = BytesMut::with_capacity(BUFFERED_READ_SIZE);
        self.read_buf(&mut buf).await?;
        Ok(buf.freeze())
    }
}

/// Reading half of a [`Stream`].
pub enum StreamReader {
    Plain(OwnedReadHalf),
    Tls(tokio::io::ReadHalf<Box<TlsStream<TcpStream>>>),
}

/// Writing half of a [`Stream`].
pub enum StreamWriter {
    Plain(OwnedWriteHalf),
    Tls(tokio::io::WriteHalf<Box<TlsStream<TcpStream>>>),
}

impl Source for StreamReader {
    async fn read_chunk(&mut self) -> io::Result<Bytes> {
        match self {
            Self::Plain(reader) => reader.read_chunk().await,
            Self::Tls(reader) => reader.read_chunk().await,
        }
    }
}

/// Implements `AsyncWrite` for an enum whose variants each hold a writer.
macro_rules! delegate_async_write {
    ($type:ty) => {
        impl AsyncWrite for $type {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                match self.get_mut() {
                    Self::Plain(w) => Pin::new(w).poll_write(cx, buf),
                    Self::Tls(w) => Pin::new(w).poll_write(cx, buf),
                }
            }

            fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                match self.get_mut() {
                    Self::Plain(w) => Pin::new(w).poll_flush(cx),
                    Self::Tls(w) => Pin::new(w).poll_flush(cx),
                }
            }

            fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                match self.get_mut() {
                    Self::Plain(w) => Pin::new(w).poll_shutdown(cx),
                    Self::Tls(w) => Pin::new(w).poll_shutdown(cx),
                }
            }
        }
    };
}

delegate_async_write!(StreamWriter);
delegate_async_write!(Stream);

impl Endpoint for Stream {
    type Reader = StreamReader;
    type Writer = StreamWriter;

    fn split(self) -> (StreamReader, StreamWriter) {
        match self {
            Self::Plain(tcp) => {
                let (r, w) = tcp.into_split();
                (StreamReader::Plain(r), StreamWriter::Plain(w))
            }
            Self::Tls(tls) => {
                let (r, w) = tokio::io::split(tls);
                (StreamReader::Tls(r), StreamWriter::Tls(w))
            }
        }
    }

    async fn finish(reader: StreamReader, writer: StreamWriter, how: Ending) {
        let mut stream = match (reader, writer) {
            (StreamReader::Plain(r), StreamWriter::Plain(w)) => {
                Self::Plain(r.reunite(w).expect("halves of one socket"))
            }
            (StreamReader::Tls(r), StreamWriter::Tls(w)) => Self::Tls(r.unsplit(w)),
            _ => unreachable!("halves of one stream"),
        };
        match how {
            // A zero linger makes close() send RST and discard unsent data.
            Ending::Reset => {
                let _ = socket2::SockRef::from(stream.tcp()).set_linger(Some(Duration::ZERO));
            }
            Ending::Close => {
                let _ = stream.shutdown().await;
                // Closing a socket with unread data makes the kernel send
                // RST, and the peer may then lose what was just sent (an
                // error message, say). Read what is still coming, briefly.
                let linger = async {
                    // On the heap: a buffer in the future itself would be
                    // room every connection carries while it is open.
                    let mut sink = vec![0u8; 4096];
                    while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
                };
                let _ = tokio::time::timeout(CLOSE_LINGER, linger).await;
            }
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Self::Tls(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

/// The pipe to the HTTP layer of an `http` proxy. Ending it early just
/// closes it: the HTTP layer ends the requests it was serving.
impl Endpoint for DuplexStream {
    type Reader = tokio::io::ReadHalf<DuplexStream>;
    type Writer = tokio::io::WriteHalf<DuplexStream>;

    fn split(self) -> (Self::Reader, Self::Writer) {
        tokio::io::split(self)
    }

    async fn finish(reader: Self::Reader, writer: Self::Writer, _how: Ending) {
        drop(reader.unsplit(writer));
    }
}
