//! A loopback TCP proxy a test can cut: a network partition between one
//! client and its server, without touching the server.
//!
//! [`CuttableProxy::cut`] closes every connection through the proxy (both
//! sides see the stream end mid-conversation, as when a link drops) and stops
//! listening, so new connections are refused until [`CuttableProxy::restore`]
//! listens again on the same port. The server and its other clients never
//! notice: a test can take one service's database away while the test itself
//! keeps reading the same database directly.

use std::net::SocketAddr;

use anyhow::Context;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// Forwards `127.0.0.1:<port>` to `upstream` while not cut.
#[derive(Debug)]
pub struct CuttableProxy {
    address: SocketAddr,
    upstream: SocketAddr,
    /// Accepts and owns every forwarding task: aborting it drops them all.
    acceptor: Option<JoinHandle<()>>,
}

impl CuttableProxy {
    /// Listens on a free loopback port and forwards to `upstream`.
    pub async fn start(upstream: SocketAddr) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("bind the proxy's listener")?;
        let address = listener.local_addr().context("read the proxy's address")?;
        Ok(Self {
            address,
            upstream,
            acceptor: Some(tokio::spawn(accept(listener, upstream))),
        })
    }

    /// Where clients connect instead of `upstream`.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Drops every open connection and refuses new ones.
    pub async fn cut(&mut self) {
        if let Some(acceptor) = self.acceptor.take() {
            acceptor.abort();
            // Returns once the listener and the forwarding tasks are dropped.
            let _ = acceptor.await;
        }
    }

    /// Listens again on the same port.
    pub async fn restore(&mut self) -> anyhow::Result<()> {
        if self.acceptor.is_some() {
            return Ok(());
        }
        let listener = TcpListener::bind(self.address)
            .await
            .with_context(|| format!("listen on {} again", self.address))?;
        self.acceptor = Some(tokio::spawn(accept(listener, self.upstream)));
        Ok(())
    }
}

impl Drop for CuttableProxy {
    fn drop(&mut self) {
        if let Some(acceptor) = self.acceptor.take() {
            acceptor.abort();
        }
    }
}

async fn accept(listener: TcpListener, upstream: SocketAddr) {
    // Owned here, so aborting this task aborts every forwarding task too.
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((client, _)) => {
                    connections.spawn(forward(client, upstream));
                }
                Err(error) => tracing::warn!(%error, "proxy: accept failed"),
            },
            // Reap finished connections so the set does not grow.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn forward(mut client: TcpStream, upstream: SocketAddr) {
    match TcpStream::connect(upstream).await {
        Ok(mut server) => {
            // Ends when either side closes; errors are the connection's end too.
            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
        }
        Err(error) => tracing::warn!(%error, %upstream, "proxy: upstream refused"),
    }
}

#[cfg(test)]
mod tests {
    use super::CuttableProxy;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    async fn echo_server() -> std::net::SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buffer = [0_u8; 64];
                    while let Ok(read) = stream.read(&mut buffer).await {
                        if read == 0 || stream.write_all(&buffer[..read]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        address
    }

    async fn round_trip(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
        stream.write_all(b"ping").await?;
        let mut answer = [0_u8; 4];
        stream.read_exact(&mut answer).await?;
        Ok(answer.to_vec())
    }

    #[tokio::test]
    async fn a_cut_ends_open_connections_and_refuses_new_ones_until_restored() {
        let mut proxy = CuttableProxy::start(echo_server().await).await.unwrap();
        let mut open = TcpStream::connect(proxy.address()).await.unwrap();
        assert_eq!(round_trip(&mut open).await.unwrap(), b"ping");

        proxy.cut().await;
        assert!(
            round_trip(&mut open).await.is_err(),
            "the open connection ends"
        );
        let refused = TcpStream::connect(proxy.address()).await;
        assert_eq!(
            refused.unwrap_err().kind(),
            std::io::ErrorKind::ConnectionRefused
        );

        proxy.restore().await.unwrap();
        let mut again = TcpStream::connect(proxy.address()).await.unwrap();
        assert_eq!(round_trip(&mut again).await.unwrap(), b"ping");
    }
}
