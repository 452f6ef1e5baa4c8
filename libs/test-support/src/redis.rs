//! Redis for the read cache's tests: the real one (`CONTRAIL_TEST_REDIS_URL`,
//! default `redis://127.0.0.1:6379`, started by `make test`), a key prefix
//! per test, and two ways for a Redis to be gone: a port where nothing
//! listens, and a listener that accepts connections and never answers.

use std::net::SocketAddr;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub fn redis_url() -> String {
    std::env::var("CONTRAIL_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// A key prefix no other test uses, so tests share one Redis without flushing it.
pub fn unique_key_prefix() -> String {
    format!("test:{}", uuid::Uuid::now_v7().simple())
}

/// A loopback URL where nothing listens: connecting is refused at once.
pub async fn refused_redis_url() -> String {
    let port = crate::ports::free_port()
        .unwrap_or_else(|error| panic!("find a port nothing listens on: {error:#}"));
    format!("redis://127.0.0.1:{port}")
}

/// A server that accepts connections, reads what it is sent and never
/// answers: a Redis so slow that every call times out. Stops when dropped.
#[derive(Debug)]
pub struct SilentRedis {
    address: SocketAddr,
    task: JoinHandle<()>,
}

impl SilentRedis {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|error| panic!("bind the silent listener: {error}"));
        let address = listener
            .local_addr()
            .unwrap_or_else(|error| panic!("read the silent listener's port: {error}"));
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                // Keep the connection open and unanswered.
                held.push(socket);
            }
        });
        Self { address, task }
    }

    pub fn url(&self) -> String {
        format!("redis://{}", self.address)
    }
}

impl Drop for SilentRedis {
    fn drop(&mut self) {
        self.task.abort();
    }
}
