//! gRPC through an `http` proxy: a real gRPC client and server (tonic),
//! speaking HTTP/2 with prior knowledge (h2c) as gRPC does without TLS.
//! Calls pass untouched, unary and streaming, trailers and all;
//! `grpc_abort` answers matching calls with the status and message it was
//! given, and once removed the calls pass again.

mod support;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use serde_json::json;
use support::faultgate::Faultgate;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::codegen::{http, tokio_stream};
use tonic::transport::Channel;
use tonic::{Code, Status, Streaming};
use tonic_prost::ProstCodec;

/// The one message both calls carry.
#[derive(Clone, PartialEq, prost::Message)]
struct Note {
    #[prost(uint32, tag = "1")]
    seq: u32,
    #[prost(bytes = "vec", tag = "2")]
    payload: Vec<u8>,
}

const SAY: &str = "/faultgate.test.Echo/Say";
const CHAT: &str = "/faultgate.test.Echo/Chat";

/// `Say` (unary): answers the note with its payload reversed. `Chat`
/// (bidirectional streaming): echoes each note as it comes.
#[derive(Clone, Default)]
struct EchoServer {
    calls: Arc<AtomicUsize>,
}

struct Say;

impl tonic::server::UnaryService<Note> for Say {
    type Response = Note;
    type Future = std::future::Ready<Result<tonic::Response<Note>, Status>>;

    fn call(&mut self, request: tonic::Request<Note>) -> Self::Future {
        let mut note = request.into_inner();
        note.payload.reverse();
        std::future::ready(Ok(tonic::Response::new(note)))
    }
}

struct Chat;

impl tonic::server::StreamingService<Note> for Chat {
    type Response = Note;
    type ResponseStream = Streaming<Note>;
    type Future = std::future::Ready<Result<tonic::Response<Streaming<Note>>, Status>>;

    fn call(&mut self, request: tonic::Request<Streaming<Note>>) -> Self::Future {
        std::future::ready(Ok(tonic::Response::new(request.into_inner())))
    }
}

impl tower_service::Service<http::Request<tonic::body::Body>> for EchoServer {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            let mut grpc = tonic::server::Grpc::new(ProstCodec::<Note, Note>::default());
            Ok(match request.uri().path() {
                SAY => grpc.unary(Say, request).await,
                CHAT => grpc.streaming(Chat, request).await,
                other => Status::unimplemented(other.to_owned()).into_http(),
            })
        })
    }
}

/// Starts the gRPC server on a loopback port; returns its address and its
/// count of calls.
async fn start_server() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let server = EchoServer::default();
    let calls = server.calls.clone();
    tokio::spawn(tonic::transport::Server::builder().serve_with_incoming(
        server,
        tokio_stream::wrappers::TcpListenerStream::new(listener),
    ));
    (address, calls)
}

async fn say(client: &mut tonic::client::Grpc<Channel>, text: &str) -> Result<Vec<u8>, Status> {
    client.ready().await.unwrap();
    let note = Note {
        seq: 1,
        payload: text.as_bytes().to_vec(),
    };
    let answer = client
        .unary(
            tonic::Request::new(note),
            PathAndQuery::from_static(SAY),
            ProstCodec::<Note, Note>::default(),
        )
        .await?;
    Ok(answer.into_inner().payload)
}

/// Faultgate with an http-mode proxy "grpc" in front of a gRPC server, and
/// a client connected through it.
async fn grpc_through_proxy() -> (Faultgate, tonic::client::Grpc<Channel>, Arc<AtomicUsize>) {
    let (server, calls) = start_server().await;
    let faultgate = Faultgate::start(&[]).await;
    let listen = faultgate
        .proxy_with(json!({ "name": "grpc", "mode": "http", "upstream": server.to_string() }))
        .await;
    let channel = Channel::from_shared(format!("http://{listen}"))
        .unwrap()
        .connect()
        .await
        .expect("connecting the gRPC client through the proxy");
    (faultgate, tonic::client::Grpc::new(channel), calls)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_unary_call_passes_fails_with_the_abort_and_passes_once_it_is_removed() {
    let (faultgate, mut client, calls) = grpc_through_proxy().await;
    assert_eq!(say(&mut client, "hello").await.unwrap(), b"olleh");
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    let message = "maintenance: 100% down, back at 10:00 (ü)";
    faultgate
        .add_toxic(
            "grpc",
            json!({ "name": "down", "type": "grpc_abort", "stream": "upstream",
                    "attributes": { "code": 14, "message": message, "path_prefix": SAY } }),
        )
        .await;
    let status = say(&mut client, "hello").await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(status.message(), message);
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "attached upstream, the server saw the call"
    );

    // Attached downstream the server does the work, and the client still
    // hears the error.
    faultgate.remove_toxic("grpc", "down").await;
    faultgate
        .add_toxic(
            "grpc",
            json!({ "name": "down", "type": "grpc_abort", "stream": "downstream",
                    "attributes": { "code": 8, "message": "quota" } }),
        )
        .await;
    let status = say(&mut client, "hello").await.unwrap_err();
    assert_eq!(
        (status.code(), status.message()),
        (Code::ResourceExhausted, "quota")
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2);

    faultgate.remove_toxic("grpc", "down").await;
    assert_eq!(say(&mut client, "again").await.unwrap(), b"niaga");
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_streaming_call_passes_with_every_message_in_order() {
    let (faultgate, mut client, _calls) = grpc_through_proxy().await;
    // A fault on the other method leaves this one alone.
    faultgate
        .add_toxic(
            "grpc",
            json!({ "type": "grpc_abort", "stream": "upstream", "attributes": { "path_prefix": SAY } }),
        )
        .await;
    // Some notes larger than HTTP/2's initial window (64 KiB), so flow
    // control works in both directions on the way.
    let notes: Vec<Note> = (0..300u32)
        .map(|seq| Note {
            seq,
            payload: (0..(seq * 997) % 150_000)
                .map(|i| (i ^ seq) as u8)
                .collect(),
        })
        .collect();
    client.ready().await.unwrap();
    let answer = client
        .streaming(
            tonic::Request::new(tokio_stream::iter(notes.clone())),
            PathAndQuery::from_static(CHAT),
            ProstCodec::<Note, Note>::default(),
        )
        .await
        .expect("the streaming call");
    let mut stream = answer.into_inner();
    // tonic ends the stream with `None` only once the trailers came with
    // grpc-status 0; trailers lost on the way are an error here.
    let mut echoed = Vec::new();
    while let Some(note) = stream.message().await.expect("a message of the stream") {
        echoed.push(note);
    }
    assert_eq!(echoed.len(), notes.len(), "messages lost");
    assert!(echoed == notes, "messages altered or reordered");
}
