//! `postgres` mode against a real Postgres, with real clients (psql and
//! tokio-postgres): the protocol passes untouched with no fault, and the
//! Postgres faults fail the database the way a real Postgres fails.

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::faultgate::{Faultgate, plugin_build_dir};
use support::pg_wire;
use support::postgres::{Postgres, connect, listener, psql};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_postgres::error::SqlState;

const MIB: usize = 1 << 20;

/// A Postgres, a faultgate, and a postgres-mode proxy "pg" in front of it;
/// returns the proxy's port.
async fn setup() -> (Postgres, Faultgate, u16) {
    let pg = Postgres::start().await;
    let fg = Faultgate::start(&[]).await;
    let listen = fg
        .proxy_with(json!({ "name": "pg", "mode": "postgres", "upstream": format!("127.0.0.1:{}", pg.port) }))
        .await;
    (pg, fg, listen.port())
}

/// Asserts the session still works: `SELECT n` comes back as `n`.
async fn assert_session_answers(client: &tokio_postgres::Client, n: i32) {
    let row = client.query_one(&format!("SELECT {n}"), &[]).await.unwrap();
    assert_eq!(row.get::<_, i32>(0), n, "the session answered wrongly");
}

fn code(error: &tokio_postgres::Error) -> Option<&SqlState> {
    error.as_db_error().map(|e| e.code())
}

#[tokio::test(flavor = "multi_thread")]
async fn with_no_fault_simple_extended_and_listen_notify_pass() {
    let (pg, fg, port) = setup().await;
    let client = connect(port).await.unwrap();
    client
        .batch_execute("CREATE TABLE t (id int PRIMARY KEY, name text)")
        .await
        .unwrap();
    // The extended protocol: Parse, Bind, Execute, Sync, with parameters.
    let insert = client
        .prepare("INSERT INTO t VALUES ($1, $2)")
        .await
        .unwrap();
    for i in 0..50 {
        client
            .execute(&insert, &[&i, &format!("row {i}")])
            .await
            .unwrap();
    }
    let row = client
        .query_one("SELECT count(*), max(name) FROM t WHERE id >= $1", &[&10])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 40);
    assert_eq!(row.get::<_, String>(1), "row 49");

    let (listening, mut notes) = listener(port).await;
    listening.batch_execute("LISTEN changes").await.unwrap();
    pg.direct()
        .await
        .batch_execute("NOTIFY changes, 'one'")
        .await
        .unwrap();
    let note = tokio::time::timeout(Duration::from_secs(5), notes.recv())
        .await
        .expect("no notification through the proxy");
    assert_eq!(note, Some(("changes".to_owned(), "one".to_owned())));

    // A client that asks for TLS is told no, and goes on in plain text...
    let (ok, out, err) = psql(port, &[("PGSSLMODE", "prefer")], &["-Atc", "SELECT 6*7"]).await;
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "42");
    // ...and one that insists gives up, saying why.
    let (ok, _, err) = psql(port, &[("PGSSLMODE", "require")], &["-c", "SELECT 1"]).await;
    assert!(!ok);
    assert!(err.contains("does not support SSL"), "{err}");
    assert_eq!(fg.metric("faultgate_plugin_failures_total", "pg").await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn copy_in_and_out_of_100_mb_is_byte_exact() {
    let (_pg, _fg, port) = setup().await;
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.tsv");
    let output = dir.path().join("out.tsv");
    // 100 MB of rows with varied lengths, so messages straddle every read.
    {
        use std::io::Write;
        let mut file = std::io::BufWriter::new(std::fs::File::create(&input).unwrap());
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut written = 0usize;
        let mut id = 0u64;
        while written < 100 << 20 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let len = (state % 2000) as usize;
            let text: String = (0..len)
                .map(|i| char::from(b'a' + ((state >> (i % 56)) as u8 % 26)))
                .collect();
            let line = format!("{id}\t{text}\n");
            written += line.len();
            file.write_all(line.as_bytes()).unwrap();
            id += 1;
        }
    }
    let (ok, _, err) = psql(
        port,
        &[],
        &["-c", "CREATE TABLE big (id bigint, body text)"],
    )
    .await;
    assert!(ok, "{err}");
    let copy_in = format!("\\copy big FROM '{}'", input.display());
    let (ok, _, err) = psql(port, &[], &["-c", &copy_in]).await;
    assert!(ok, "COPY in failed: {err}");
    let copy_out = format!(
        "\\copy (SELECT * FROM big ORDER BY id) TO '{}'",
        output.display()
    );
    let (ok, _, err) = psql(port, &[], &["-c", &copy_out]).await;
    assert!(ok, "COPY out failed: {err}");
    let (a, b) = (
        std::fs::read(&input).unwrap(),
        std::fs::read(&output).unwrap(),
    );
    assert_eq!(
        a.len(),
        b.len(),
        "COPY out returned {} of {} bytes",
        b.len(),
        a.len()
    );
    assert!(a == b, "COPY out differs from what went in");
}

#[tokio::test(flavor = "multi_thread")]
async fn pg_terminate_ends_sessions_with_57p01_as_a_shutdown_does() {
    let (_pg, fg, port) = setup().await;
    let open = connect(port).await.unwrap();
    assert_eq!(
        open.query_one("SELECT 1", &[])
            .await
            .unwrap()
            .get::<_, i32>(0),
        1
    );

    // The prepared statement above is closed in the background when it is
    // dropped; let that Close go by first, so the fault's "next message" is
    // the query below and not the Close (whose answer the client ignores).
    open.batch_execute("SELECT 1").await.unwrap();

    // "next": the open session's next query is answered with the error.
    fg.add_toxic(
        "pg",
        json!({ "name": "bye", "type": "pg_terminate", "stream": "upstream", "attributes": { "when": "next" } }),
    )
    .await;
    let error = open.query_one("SELECT 1", &[]).await.unwrap_err();
    assert_eq!(code(&error), Some(&SqlState::ADMIN_SHUTDOWN), "{error:?}");
    assert_eq!(
        error.as_db_error().unwrap().message(),
        "terminating connection due to administrator command"
    );
    fg.remove_toxic("pg", "bye").await;

    // "now" (the default): every session at once, new ones too, as psql
    // shows. psql asks for TLS first (sslmode prefer): that is answered
    // before the error, as Postgres does, or libpq reports only an "error
    // during SSL exchange".
    fg.add_toxic("pg", json!({ "name": "bye", "type": "pg_terminate" }))
        .await;
    for sslmode in ["prefer", "disable"] {
        let (ok, _, err) = psql(port, &[("PGSSLMODE", sslmode)], &["-c", "SELECT 1"]).await;
        assert!(!ok);
        assert!(
            err.contains("FATAL:  terminating connection due to administrator command"),
            "sslmode {sslmode}: {err}"
        );
    }
    fg.remove_toxic("pg", "bye").await;
    let (ok, out, err) = psql(port, &[], &["-Atc", "SELECT 'back'"]).await;
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "back");
}

#[tokio::test(flavor = "multi_thread")]
async fn pg_starting_up_refuses_new_sessions_with_57p03_and_spares_open_ones() {
    let (_pg, fg, port) = setup().await;
    let open = connect(port).await.unwrap();
    fg.add_toxic(
        "pg",
        json!({ "type": "pg_starting_up", "stream": "upstream" }),
    )
    .await;
    let Err(error) = connect(port).await else {
        panic!("a new session was let in");
    };
    assert_eq!(
        code(&error),
        Some(&SqlState::CANNOT_CONNECT_NOW),
        "{error:?}"
    );
    assert_eq!(
        error.as_db_error().unwrap().message(),
        "the database system is starting up"
    );
    assert_eq!(
        open.query_one("SELECT 2", &[])
            .await
            .unwrap()
            .get::<_, i32>(0),
        2
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn pg_drop_notify_makes_a_listener_miss_events_until_removed() {
    let (pg, fg, port) = setup().await;
    let (listening, mut notes) = listener(port).await;
    listening
        .batch_execute("LISTEN policies; LISTEN other")
        .await
        .unwrap();
    let direct = pg.direct().await;
    fg.add_toxic(
        "pg",
        json!({ "name": "deaf", "type": "pg_drop_notify", "attributes": { "channels": "policies" } }),
    )
    .await;
    direct
        .batch_execute("NOTIFY policies, 'lost'; NOTIFY other, 'kept'")
        .await
        .unwrap();
    let note = tokio::time::timeout(Duration::from_secs(5), notes.recv())
        .await
        .unwrap();
    assert_eq!(note, Some(("other".to_owned(), "kept".to_owned())));
    // The session itself is fine: it still answers.
    assert_eq!(
        listening
            .query_one("SELECT 3", &[])
            .await
            .unwrap()
            .get::<_, i32>(0),
        3
    );
    assert!(notes.try_recv().is_err(), "a dropped notification arrived");

    fg.remove_toxic("pg", "deaf").await;
    direct
        .batch_execute("NOTIFY policies, 'heard'")
        .await
        .unwrap();
    let note = tokio::time::timeout(Duration::from_secs(5), notes.recv())
        .await
        .unwrap();
    assert_eq!(note, Some(("policies".to_owned(), "heard".to_owned())));
}

/// A session through the proxy to a database with a table `acct` holding
/// (1, 10), and `pg_error` failing the statements that match `sql_regex`
/// with 40001.
async fn acct_behind_pg_error(sql_regex: &str) -> (Postgres, Faultgate, tokio_postgres::Client) {
    let (pg, fg, port) = setup().await;
    let client = connect(port).await.unwrap();
    client
        .batch_execute("CREATE TABLE acct (id int, balance int); INSERT INTO acct VALUES (1, 10)")
        .await
        .unwrap();
    fg.add_toxic(
        "pg",
        json!({ "type": "pg_error", "stream": "upstream", "attributes": { "sqlstate": "40001", "sql_regex": sql_regex } }),
    )
    .await;
    (pg, fg, client)
}

#[tokio::test(flavor = "multi_thread")]
async fn pg_error_fails_matching_statements_and_keeps_the_session_usable() {
    let (_pg, fg, client) = acct_behind_pg_error("^UPDATE acct").await;
    // The simple protocol...
    let error = client
        .batch_execute("UPDATE acct SET balance = 0")
        .await
        .unwrap_err();
    assert_eq!(
        code(&error),
        Some(&SqlState::T_R_SERIALIZATION_FAILURE),
        "{error:?}"
    );
    assert_session_answers(&client, 1).await;
    // ...and the extended one (Parse .. Sync).
    let error = client
        .execute("UPDATE acct SET balance = $1", &[&5])
        .await
        .unwrap_err();
    assert_eq!(
        code(&error),
        Some(&SqlState::T_R_SERIALIZATION_FAILURE),
        "{error:?}"
    );
    let balance = client
        .query_one("SELECT balance FROM acct WHERE id = $1", &[&1])
        .await
        .unwrap();
    assert_eq!(
        balance.get::<_, i32>(0),
        10,
        "the failed UPDATE reached the server"
    );

    fg.expect_error(
        "POST",
        "/proxies/pg/toxics",
        Some(json!({ "name": "bad", "type": "pg_error", "attributes": { "sqlstate": "oops" } })),
        400,
        "sqlstate",
    )
    .await;
}

/// A failure inside a transaction aborts it, on the server as well as in
/// what the client is told, as a real serialization failure does: an
/// application that retries the transaction starts a fresh one.
#[tokio::test(flavor = "multi_thread")]
async fn pg_error_inside_a_transaction_aborts_it() {
    let (_pg, _fg, mut client) = acct_behind_pg_error("^UPDATE acct SET balance = 0").await;
    for extended in [false, true] {
        let transaction = client.transaction().await.unwrap();
        transaction
            .execute("INSERT INTO acct VALUES (2, 20)", &[])
            .await
            .unwrap();
        let error = if extended {
            transaction
                .execute("UPDATE acct SET balance = 0 WHERE id = $1", &[&1])
                .await
        } else {
            transaction
                .batch_execute("UPDATE acct SET balance = 0")
                .await
                .map(|()| 0)
        }
        .unwrap_err();
        assert_eq!(
            code(&error),
            Some(&SqlState::T_R_SERIALIZATION_FAILURE),
            "{error:?}"
        );
        // The server's transaction is aborted too: it refuses more work
        // until the client rolls back.
        let refused = transaction.query_one("SELECT 1", &[]).await.unwrap_err();
        assert_eq!(
            code(&refused),
            Some(&SqlState::IN_FAILED_SQL_TRANSACTION),
            "{refused:?}"
        );
        transaction.rollback().await.unwrap();
        let rows = client
            .query("SELECT id, balance FROM acct ORDER BY id", &[])
            .await
            .unwrap();
        let rows: Vec<(i32, i32)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        assert_eq!(
            rows,
            [(1, 10)],
            "the transaction's insert was rolled back and the failed UPDATE never ran (extended: {extended})"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn pg_delay_query_and_byte_level_faults_delay_matching_work() {
    let (_pg, fg, port) = setup().await;
    let client = connect(port).await.unwrap();
    fg.add_toxic(
        "pg",
        json!({ "type": "pg_delay_query", "stream": "upstream", "attributes": { "delay": 400, "sql_regex": "slow_marker" } }),
    )
    .await;
    let started = Instant::now();
    client.batch_execute("SELECT 'slow_marker'").await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(400));
    let started = Instant::now();
    client
        .query_one("SELECT 'slow_marker' || $1", &[&"x"])
        .await
        .unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "a Parse was not delayed"
    );

    // A byte-level fault works on a postgres proxy too.
    fg.add_toxic(
        "pg",
        json!({ "type": "latency", "attributes": { "latency": 300 } }),
    )
    .await;
    let started = Instant::now();
    client.query_one("SELECT 1", &[]).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_or_truncated_messages_close_the_connection_with_a_reason() {
    let (_pg, fg, port) = setup().await;
    // Not Postgres at all.
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut rest)).await;
    assert!(read.is_ok(), "the connection stayed open");
    support::eventually("the reason is logged", Duration::from_secs(5), || async {
        fg.log().contains("malformed Postgres message")
    })
    .await;

    // A message whose length is impossible, seen by a Postgres fault.
    fg.add_toxic(
        "pg",
        json!({ "type": "pg_delay_query", "stream": "upstream" }),
    )
    .await;
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let mut startup = Vec::new();
    let params = b"user\0postgres\0database\0postgres\0\0";
    startup.extend_from_slice(&(8 + params.len() as u32).to_be_bytes());
    startup.extend_from_slice(&196_608u32.to_be_bytes());
    startup.extend_from_slice(params);
    stream.write_all(&startup).await.unwrap();
    stream.write_all(&[b'Q', 0, 0, 0, 2]).await.unwrap();
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut rest)).await;
    assert!(read.is_ok(), "the connection stayed open");
    support::eventually(
        "the bad length is logged",
        Duration::from_secs(5),
        || async { fg.log().contains("claims a length of 2") },
    )
    .await;

    // A message cut short by a client that goes away.
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    stream.write_all(&startup).await.unwrap();
    stream.write_all(&[b'Q', 0, 0, 1, 0, b'S']).await.unwrap();
    drop(stream);

    // faultgate is fine, and so are well-formed sessions.
    let client = connect(port).await.unwrap();
    assert_session_answers(&client, 4).await;
    fg.expect("GET", "/version", None, 200).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_faults_need_a_postgres_proxy() {
    let fg = Faultgate::start(&[]).await;
    fg.proxy("plain", "127.0.0.1:1").await;
    fg.expect_error(
        "POST",
        "/proxies/plain/toxics",
        Some(json!({ "type": "pg_terminate" })),
        400,
        "postgres mode",
    )
    .await;
    fg.expect_error(
        "POST",
        "/proxies",
        Some(json!({ "name": "x", "upstream": "127.0.0.1:1", "postgres_tls": "passthrough" })),
        400,
        "postgres_tls",
    )
    .await;
    let shown = fg
        .expect(
            "POST",
            "/proxies",
            Some(json!({ "name": "pg", "mode": "postgres", "upstream": "127.0.0.1:1" })),
            201,
        )
        .await;
    assert_eq!(shown["mode"], "postgres");
    assert_eq!(shown["postgres_tls"], "refuse");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bounce_terminates_refuses_while_starting_up_then_recovers() {
    let (_pg, fg, port) = setup().await;
    let open = connect(port).await.unwrap();
    open.batch_execute("CREATE TABLE marks (n int)")
        .await
        .unwrap();

    // One switch: every session terminated, new ones told to wait.
    fg.expect(
        "PUT",
        "/proxies/pg/toxics",
        Some(json!([
            { "type": "pg_terminate" },
            { "type": "pg_starting_up", "stream": "upstream" },
        ])),
        200,
    )
    .await;
    let Err(error) = open.batch_execute("INSERT INTO marks VALUES (1)").await else {
        panic!("the open session survived the bounce");
    };
    // The terminated session saw 57P01, or only its end if the error came
    // while it was idle.
    assert!(
        code(&error).is_none_or(|c| *c == SqlState::ADMIN_SHUTDOWN),
        "{error:?}"
    );
    let Err(error) = connect(port).await else {
        panic!("a new session was let in during the bounce");
    };
    assert!(
        matches!(code(&error), Some(c) if *c == SqlState::CANNOT_CONNECT_NOW || *c == SqlState::ADMIN_SHUTDOWN),
        "{error:?}"
    );

    fg.expect("PUT", "/proxies/pg/toxics", Some(json!([])), 200)
        .await;
    let back = connect(port).await.unwrap();
    back.batch_execute("INSERT INTO marks VALUES (2)")
        .await
        .unwrap();
    // The write after the bounce landed. (The one sent as the bounce began
    // may or may not have reached the server first, as with a real one.)
    let count: i64 = back
        .query_one("SELECT count(*) FROM marks WHERE n = 2", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 1, "the write after the bounce is not there");
}

#[tokio::test(flavor = "multi_thread")]
async fn with_tls_passed_through_a_session_that_asked_for_tls_is_opaque() {
    let pg = Postgres::start().await;
    let fg = Faultgate::start(&[]).await;
    let listen = fg
        .proxy_with(json!({
            "name": "pg", "mode": "postgres", "postgres_tls": "passthrough",
            "upstream": format!("127.0.0.1:{}", pg.port),
        }))
        .await;
    fg.add_toxic(
        "pg",
        json!({ "type": "pg_error", "stream": "upstream", "attributes": { "sql_regex": "fail_me" } }),
    )
    .await;
    // The client asks for TLS; the request goes to the server (which has
    // none and says so), and from then on the session is only bytes to
    // faultgate: the Postgres fault does not see it.
    let (ok, out, err) = psql(
        listen.port(),
        &[("PGSSLMODE", "prefer")],
        &["-Atc", "SELECT 'fail_me'"],
    )
    .await;
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "fail_me");
    // A client that does not ask is seen, and failed.
    let (ok, _, err) = psql(
        listen.port(),
        &[("PGSSLMODE", "disable")],
        &["-Atc", "SELECT 'fail_me'"],
    )
    .await;
    assert!(!ok);
    assert!(err.contains("could not serialize access"), "{err}");
}

/// Resident memory faultgate gained since `before` (bytes; 0 if it shrank).
fn grown(fg: &Faultgate, before: u64) -> usize {
    fg.rss_bytes().saturating_sub(before) as usize
}

/// A Postgres fault holds a message whole only within Postgres's own limit
/// for its type: a client that claims a 1 GiB authentication response and
/// streams it is closed at the header, with the reason logged, and
/// faultgate's memory stays flat. (It once buffered the whole message, on
/// every such connection, before any authentication.)
#[tokio::test(flavor = "multi_thread")]
async fn an_oversized_message_is_refused_at_its_header_not_buffered() {
    let (_pg, fg, port) = setup().await;
    fg.add_toxic(
        "pg",
        json!({ "type": "pg_delay_query", "stream": "upstream", "attributes": { "delay": 1, "sql_regex": "never matches" } }),
    )
    .await;
    // A session through the fault first, so that its instance exists.
    let client = connect(port).await.unwrap();
    client.batch_execute("SELECT 1").await.unwrap();
    let before = fg.rss_bytes();

    let mut written = 0;
    for _ in 0..2 {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        stream.write_all(&pg_wire::startup_packet()).await.unwrap();
        let (tag, _) = pg_wire::read_message(&mut stream, Duration::from_secs(10)).await;
        assert_eq!(tag, b'R', "the server's first answer");
        // A PasswordMessage claiming 1 GiB, and 96 MiB of it.
        stream.write_all(&[b'p', 0x40, 0, 0, 0]).await.unwrap();
        written += pg_wire::write_until_refused(
            &mut stream,
            &vec![0; MIB],
            96 * MIB,
            Duration::from_secs(5),
        )
        .await;
        let grown = grown(&fg, before);
        assert!(
            grown < 32 * MIB,
            "faultgate's memory grew by {} MiB while {} MiB of oversized messages came in",
            grown / MIB,
            written / MIB
        );
        // faultgate ended the connection (what it still read of the message
        // after that, it threw away).
        let mut rest = Vec::new();
        let read =
            tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut rest)).await;
        assert!(read.is_ok(), "the connection stayed open");
    }
    support::eventually("the reason is logged", Duration::from_secs(5), || async {
        let log = fg.log();
        log.contains("message 'p'") && log.contains("65535") && log.contains("from the client")
    })
    .await;
    assert_session_answers(&client, 5).await;
}

/// Messages larger than a fault holds whole (1 MiB) stream past it, both
/// ways, byte-exact, without faultgate holding them: the fault is told the
/// message's type and length, not its bytes, and its steps apply as the
/// message goes by. (Such a message once went whole into the plugin, whose
/// memory limit then failed the connection.)
#[tokio::test(flavor = "multi_thread")]
async fn messages_larger_than_a_fault_holds_stream_past_it_both_ways() {
    let (_pg, fg, port) = setup().await;
    fg.add_toxic(
        "pg",
        json!({ "name": "slow", "type": "pg_delay_query", "stream": "upstream", "attributes": { "delay": 1, "sql_regex": "never matches" } }),
    )
    .await;
    fg.add_toxic(
        "pg",
        json!({ "name": "deaf", "type": "pg_drop_notify", "stream": "downstream" }),
    )
    .await;
    let client = connect(port).await.unwrap();
    client.batch_execute("SELECT 1").await.unwrap();
    let before = fg.rss_bytes();

    let text: String = (0..48 * MIB)
        .map(|i| char::from(b'a' + (i % 23) as u8))
        .collect();
    // A 48 MiB Bind to the server...
    let row = client
        .query_one(
            "SELECT length($1::text), substr($1::text, 40000001, 12)",
            &[&text],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i32>(0), 48 * MIB as i32);
    assert_eq!(row.get::<_, String>(1), text[40_000_000..40_000_012]);
    // ...and a 48 MiB DataRow back.
    let row = client.query_one("SELECT $1::text", &[&text]).await.unwrap();
    assert!(
        row.get::<_, String>(0) == text,
        "the 48 MiB value came back different"
    );
    let grown = grown(&fg, before);
    assert!(
        grown < 40 * MIB,
        "faultgate's memory grew by {} MiB relaying 48 MiB messages",
        grown / MIB
    );
    assert_eq!(fg.metric("faultgate_plugin_failures_total", "pg").await, 0);

    // The steps of a fault that sees no bytes still apply: `pg_error` for
    // every statement has the server raise its error in place of a 48 MiB
    // query, and the session goes on.
    fg.add_toxic(
        "pg",
        json!({ "name": "fail", "type": "pg_error", "stream": "upstream" }),
    )
    .await;
    let error = client
        .batch_execute(&format!("SELECT '{text}'"))
        .await
        .unwrap_err();
    assert_eq!(
        code(&error),
        Some(&SqlState::T_R_SERIALIZATION_FAILURE),
        "{error:?}"
    );
    fg.remove_toxic("pg", "fail").await;
    assert_session_answers(&client, 6).await;
}

/// As Postgres does, faultgate answers one SSLRequest and one GSSENCRequest,
/// in either order, and then expects the startup packet: a request sent again
/// is refused with the reason logged, so a client that repeats it without
/// reading cannot grow faultgate's memory (the answers once piled up
/// without bound).
#[tokio::test(flavor = "multi_thread")]
async fn one_ssl_request_and_one_gssenc_request_are_answered_then_a_startup_packet() {
    let (_pg, fg, port) = setup().await;
    let before = fg.rss_bytes();
    let mut spammer = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    // Each 64 KiB of requests was answered with 8 KiB of 'N's; past what
    // the sockets buffer, those waited in memory.
    let spam = pg_wire::SSL_REQUEST.repeat(8192);
    let written =
        pg_wire::write_until_refused(&mut spammer, &spam, 512 * MIB, Duration::from_secs(5)).await;
    let grown = grown(&fg, before);
    assert!(
        grown < 16 * MIB,
        "faultgate's memory grew by {} MiB while {} MiB of SSLRequests came in",
        grown / MIB,
        written / MIB
    );
    // Answered once, then the end of the connection.
    let mut answers = Vec::new();
    let read =
        tokio::time::timeout(Duration::from_secs(5), spammer.read_to_end(&mut answers)).await;
    assert!(read.is_ok(), "the connection stayed open");
    assert!(answers.len() <= 1, "{} answers", answers.len());

    for first in [pg_wire::SSL_REQUEST, pg_wire::GSSENC_REQUEST] {
        let second = if first == pg_wire::SSL_REQUEST {
            pg_wire::GSSENC_REQUEST
        } else {
            pg_wire::SSL_REQUEST
        };
        // One of each, then the session.
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        for request in [first, second] {
            stream.write_all(&request).await.unwrap();
            let mut answer = [0u8; 1];
            stream.read_exact(&mut answer).await.unwrap();
            assert_eq!(&answer, b"N");
        }
        stream.write_all(&pg_wire::startup_packet()).await.unwrap();
        pg_wire::read_until_ready(&mut stream).await;
        stream.write_all(&pg_wire::query("SELECT 7")).await.unwrap();
        let (tag, row) = pg_wire::read_message(&mut stream, Duration::from_secs(5)).await;
        assert_eq!(tag, b'T', "{row:?}");

        // The same request twice: answered once, then the connection closes.
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        stream.write_all(&first).await.unwrap();
        stream.write_all(&first).await.unwrap();
        let mut rest = Vec::new();
        let read =
            tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut rest)).await;
        assert!(
            read.is_ok(),
            "the connection stayed open after a second request"
        );
        assert_eq!(rest, b"N", "only the first request is answered");
    }
    support::eventually("the reasons are logged", Duration::from_secs(5), || async {
        let log = fg.log();
        log.contains("a second SSLRequest") && log.contains("a second GSSENCRequest")
    })
    .await;
}

/// A fault's replies to a client that does not read wait in a bounded queue:
/// past it the proxy stops taking the client's messages (backpressure),
/// instead of holding every reply, and once the client reads, every reply
/// arrives, in order.
#[tokio::test(flavor = "multi_thread")]
async fn replies_to_a_client_that_does_not_read_push_back_instead_of_piling_up() {
    let (_pg, fg, port) = setup().await;
    let plugin = std::fs::read(plugin_build_dir().join("faultgate_test_pg_answer.wasm")).unwrap();
    let (status, body) = fg.upload_plugin(plugin).await;
    assert_eq!(status, 201, "{body}");
    fg.add_toxic(
        "pg",
        json!({ "type": "pg_answer", "stream": "upstream", "attributes": { "pad": 4096 } }),
    )
    .await;
    let stream = pg_wire::session(port).await;
    let before = fg.rss_bytes();

    // 40,000 queries sent, none of the 160 MiB of answers read.
    const QUERIES: usize = 40_000;
    let queries = pg_wire::query("SELECT 1").repeat(QUERIES);
    let (mut reader, mut writer) = stream.into_split();
    // The writer may be pushed back until the client reads: in a task.
    let sending = tokio::spawn(async move {
        writer.write_all(&queries).await.unwrap();
        writer
    });
    let mut peak = 0;
    for _ in 0..40 {
        peak = peak.max(grown(&fg, before));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        peak < 48 * MIB,
        "faultgate's memory grew by {} MiB holding replies for a client that does not read",
        peak / MIB
    );

    // The client reads now: every answer, in order, then the session goes on.
    let mut answers = 0;
    while answers < QUERIES {
        let (tag, body) = pg_wire::read_message(&mut reader, Duration::from_secs(10)).await;
        match tag {
            b'N' | b'T' | b'C' => {}
            b'D' => assert!(body.ends_with(b"answered by faultgate"), "{body:?}"),
            b'Z' => answers += 1,
            other => panic!("unexpected message {:?}: {body:?}", char::from(other)),
        }
    }
    let writer = sending.await.unwrap();
    let mut stream = reader.reunite(writer).unwrap();
    fg.remove_toxic("pg", "pg_answer_upstream").await;
    stream.write_all(&pg_wire::query("SELECT 8")).await.unwrap();
    let (tag, _) = pg_wire::read_message(&mut stream, Duration::from_secs(5)).await;
    assert_eq!(
        tag, b'T',
        "the server answers the session after the fault went"
    );
}

/// Replies that wait for the server's answers to queries sent before them,
/// from a client that pipelines and reads as it goes, with more replies than
/// the queue holds: nothing deadlocks, and every query gets its own answer.
#[tokio::test(flavor = "multi_thread")]
async fn pipelined_queries_answered_by_the_fault_and_the_server_each_get_their_own_answer() {
    let (_pg, fg, port) = setup().await;
    let plugin = std::fs::read(plugin_build_dir().join("faultgate_test_pg_answer.wasm")).unwrap();
    let (status, body) = fg.upload_plugin(plugin).await;
    assert_eq!(status, 201, "{body}");
    fg.add_toxic(
        "pg",
        json!({ "type": "pg_answer", "stream": "upstream", "attributes": { "pad": 8192, "sql_regex": "answer_me" } }),
    )
    .await;
    let client = std::sync::Arc::new(connect(port).await.unwrap());
    let mut queries = tokio::task::JoinSet::new();
    for i in 0..2_000 {
        let client = client.clone();
        queries.spawn(async move {
            let (sql, expected) = if i % 2 == 0 {
                (
                    format!("SELECT 'answer_me {i}'"),
                    "answered by faultgate".to_owned(),
                )
            } else {
                (format!("SELECT 'server {i}'"), format!("server {i}"))
            };
            let messages = client.simple_query(&sql).await.unwrap();
            let value = messages.iter().find_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0).map(str::to_owned),
                _ => None,
            });
            assert_eq!(value.as_deref(), Some(expected.as_str()), "query {i}");
        });
    }
    let all = async {
        while let Some(done) = queries.join_next().await {
            done.unwrap();
        }
    };
    tokio::time::timeout(Duration::from_secs(60), all)
        .await
        .expect("the pipelined queries did not all get their answers");
}
