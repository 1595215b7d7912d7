//! A toxic limited to some clients (`"clients"`): only connections from
//! the addresses and ranges it names get it, in `tcp`, `postgres` and
//! `http` mode, with clients bound to 127.0.0.1 and 127.0.0.2 against real
//! servers; a bad entry is refused naming it, and changes nothing.

mod support;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use serde_json::json;
use support::faultgate::Faultgate;
use support::git_http::GitHttpServer;
use support::postgres::Postgres;
use tokio::net::TcpSocket;
use tokio_postgres::{Client, NoTls};

const ONE: &str = "127.0.0.1";
const TWO: &str = "127.0.0.2";

/// A Postgres session through `port` from a client bound to `local`.
async fn session_from(local: &str, port: u16) -> Result<Client, String> {
    let socket = TcpSocket::new_v4().map_err(|e| e.to_string())?;
    let local: IpAddr = local.parse().unwrap();
    socket
        .bind(SocketAddr::new(local, 0))
        .map_err(|e| e.to_string())?;
    let stream = socket
        .connect(SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .map_err(|e| e.to_string())?;
    let config: tokio_postgres::Config = "user=postgres dbname=postgres".parse().unwrap();
    let (client, connection) = config
        .connect_raw(stream, NoTls)
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// Whether a session from `local` through `port` answers `SELECT 1`.
async fn query_from(local: &str, port: u16) -> Result<(), String> {
    let attempt = async {
        let client = session_from(local, port).await?;
        client
            .simple_query("SELECT 1")
            .await
            .map(drop)
            .map_err(|e| match e.as_db_error() {
                Some(db) => format!("{}: {}", db.code().code(), db.message()),
                None => e.to_string(),
            })
    };
    tokio::time::timeout(Duration::from_secs(5), attempt)
        .await
        .unwrap_or_else(|_| Err("no answer within 5 s".into()))
}

#[tokio::test]
async fn a_tcp_toxic_for_some_clients_spares_the_others() {
    let pg = Postgres::start().await;
    let fg = Faultgate::start(&[]).await;
    let port = fg
        .proxy("pg", format!("127.0.0.1:{}", pg.port))
        .await
        .port();
    let toxic = fg
        .add_toxic(
            "pg",
            json!({"name": "cut", "type": "refuse", "clients": [TWO, "10.0.0.0/8"]}),
        )
        .await;
    assert_eq!(toxic["clients"], json!([TWO, "10.0.0.0/8"]));
    assert_eq!(
        fg.toxics("pg").await[0]["clients"],
        json!([TWO, "10.0.0.0/8"])
    );

    query_from(ONE, port)
        .await
        .expect("a client not named was refused");
    let refused = query_from(TWO, port).await;
    assert!(refused.is_err(), "the client named was not refused");

    // A range naming both: both refused. An empty list lifts the filter.
    fg.expect(
        "POST",
        "/proxies/pg/toxics/cut",
        Some(json!({"clients": ["127.0.0.0/30"]})),
        200,
    )
    .await;
    assert!(query_from(ONE, port).await.is_err());
    assert!(query_from(TWO, port).await.is_err());
    let lifted = fg
        .expect(
            "POST",
            "/proxies/pg/toxics/cut",
            Some(json!({"clients": []})),
            200,
        )
        .await;
    assert!(lifted.get("clients").is_none(), "{lifted}");
    assert!(query_from(ONE, port).await.is_err());

    fg.remove_toxic("pg", "cut").await;
    // `every` counts only the named clients' connections: every 2nd of
    // 127.0.0.2's is refused, whatever 127.0.0.1 does in between.
    fg.add_toxic(
        "pg",
        json!({"type": "refuse", "every": 2, "clients": [TWO]}),
    )
    .await;
    let mut seen = Vec::new();
    for _ in 0..4 {
        query_from(ONE, port).await.expect("127.0.0.1 was refused");
        seen.push(query_from(TWO, port).await.is_ok());
    }
    assert_eq!(seen, [true, false, true, false]);
}

#[tokio::test]
async fn a_postgres_toxic_for_some_clients_spares_the_others() {
    let pg = Postgres::start().await;
    let fg = Faultgate::start(&[]).await;
    let port = fg
        .proxy_with(json!({"name": "pg", "mode": "postgres",
                           "upstream": format!("127.0.0.1:{}", pg.port)}))
        .await
        .port();
    fg.add_toxic(
        "pg",
        json!({"type": "pg_error", "stream": "upstream", "clients": [TWO],
               "attributes": {"sqlstate": "40001", "sql_regex": "SELECT"}}),
    )
    .await;
    query_from(ONE, port)
        .await
        .expect("a client not named got the error");
    let failed = query_from(TWO, port)
        .await
        .expect_err("the client named got no error");
    assert!(failed.starts_with("40001: could not serialize"), "{failed}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_http_toxic_for_some_clients_spares_the_others() {
    let server = GitHttpServer::start(&["alpha"]);
    let fg = Faultgate::start(&[]).await;
    let listen = fg
        .proxy_with(json!({"name": "git", "mode": "http", "upstream": server.address()}))
        .await;
    fg.add_toxic(
        "git",
        json!({"type": "http_abort", "stream": "upstream", "clients": [TWO],
               "attributes": {"status": 503}}),
    )
    .await;
    let refs = format!("http://{listen}/git/alpha.git/info/refs?service=git-upload-pack");
    let status_from = |local: &str| {
        let client = reqwest::Client::builder()
            .local_address(local.parse::<IpAddr>().unwrap())
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        let refs = refs.clone();
        async move { client.get(refs).send().await.unwrap().status().as_u16() }
    };
    assert_eq!(
        status_from(ONE).await,
        200,
        "a client not named was aborted"
    );
    assert_eq!(
        status_from(TWO).await,
        503,
        "the client named was not aborted"
    );
}

#[tokio::test]
async fn a_bad_client_entry_is_refused_naming_it_and_changes_nothing() {
    let fg = Faultgate::start(&[]).await;
    fg.proxy("p", "127.0.0.1:9").await;
    fg.add_toxic(
        "p",
        json!({"name": "slow", "type": "latency", "clients": [ONE]}),
    )
    .await;
    let before = fg.toxics("p").await;
    for (clients, named) in [
        (json!([TWO, "localhost"]), "\"localhost\""),
        (json!(["10.0.0.0/40"]), "\"10.0.0.0/40\""),
        (json!("127.0.0.2"), "clients"),
    ] {
        let toxic = json!({"name": "other", "type": "latency", "clients": clients.clone()});
        fg.expect_error("POST", "/proxies/p/toxics", Some(toxic), 400, named)
            .await;
        fg.expect_error(
            "POST",
            "/proxies/p/toxics/slow",
            Some(json!({"clients": clients.clone()})),
            400,
            named,
        )
        .await;
        let chain = json!([{"name": "slow", "type": "latency", "clients": clients}]);
        fg.expect_error("PUT", "/proxies/p/toxics", Some(chain), 400, named)
            .await;
    }
    assert_eq!(fg.toxics("p").await, before);
}
