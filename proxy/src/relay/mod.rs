//! The relay: carries bytes between a client and the far side of its
//! connection, through the proxy's fault chain, one [`Pump`] per direction.
//!
//! The relay does not know what the far side is: the upstream in `tcp` and
//! `postgres` mode, the HTTP layer ([`crate::http`]) in `http` mode, any
//! [`Endpoint`] in its tests. The decision is made where connections are
//! accepted ([`crate::listener`]). Each pump follows the proxy's chain
//! through the connection's watch channel, so a fault attached, replaced or
//! removed through the control API reaches open connections at their next
//! chunk.

mod frames;
mod protocol;
mod pump;
mod stages;
mod streamed;
#[cfg(test)]
mod tests;

pub use protocol::{Protocol, Raw};
pub use pump::Pump;

use std::sync::Arc;

use crate::conn::Connection;
use crate::net::{Ending, Endpoint};
use crate::plugin_host::Direction;

/// Runs the two pumps until both ends are done, or a fault or the proxy
/// ends the connection; then ends both sides the way it was ended.
/// `protocols`: the client's side (upstream) first.
pub async fn relay<C: Endpoint, U: Endpoint, P: Protocol>(
    client: C,
    upstream: U,
    conn: Arc<Connection>,
    protocols: (P, P),
) {
    let up = Pump::new(Direction::Upstream, conn.clone(), protocols.0);
    let down = Pump::new(Direction::Downstream, conn.clone(), protocols.1);
    run(client, upstream, conn, up, down).await
}

/// [`relay`], to a far side not dialed yet: the client's direction opens
/// its faults first, so that what they ask of the connection before it is
/// dialed (`delay-connect`, which `dial` reads) is known; then `dial`
/// makes the far side. When it cannot (`None`), the client's connection is
/// dropped.
pub async fn relay_dialing<C, U, P, D>(client: C, dial: D, conn: Arc<Connection>, protocols: (P, P))
where
    C: Endpoint,
    U: Endpoint,
    P: Protocol,
    D: Future<Output = Option<U>>,
{
    let mut up = Pump::new(Direction::Upstream, conn.clone(), protocols.0);
    up.open_faults().await;
    let Some(upstream) = dial.await else { return };
    let down = Pump::new(Direction::Downstream, conn.clone(), protocols.1);
    run(client, upstream, conn, up, down).await
}

/// Runs the two pumps of a connection until both ends are done.
async fn run<C: Endpoint, U: Endpoint, P: Protocol>(
    client: C,
    upstream: U,
    conn: Arc<Connection>,
    mut up: Pump<P>,
    mut down: Pump<P>,
) {
    tracing::debug!(proxy = %conn.proxy, conn = conn.id, client = %conn.client, "connection open");
    let (mut client_read, mut client_write) = client.split();
    let (mut upstream_read, mut upstream_write) = upstream.split();

    // Each direction in its own task, so the two can use both cores.
    let upstream_task = tokio::spawn(async move {
        let result = up.run(&mut client_read, &mut upstream_write).await;
        (result, client_read, upstream_write)
    });
    let down_result = down.run(&mut upstream_read, &mut client_write).await;
    let Ok((up_result, client_read, upstream_write)) = upstream_task.await else {
        return;
    };

    if up_result.is_err() || down_result.is_err() {
        let how = conn.ending().unwrap_or(Ending::Close);
        tokio::join!(
            C::finish(client_read, client_write, how),
            U::finish(upstream_read, upstream_write, how),
        );
        tracing::debug!(proxy = %conn.proxy, conn = conn.id, ?how, "connection ended by the proxy");
    } else {
        tracing::debug!(proxy = %conn.proxy, conn = conn.id, "connection closed by its peers");
    }
}
