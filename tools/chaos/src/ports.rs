//! Free loopback ports for the private stack.

use std::net::TcpListener;

use anyhow::Context;

/// A port the kernel just handed out on 127.0.0.1; free again once the probe
/// listener is dropped, and (in practice) not handed out again at once.
pub fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("find a free port")?;
    Ok(listener.local_addr().context("read a bound port")?.port())
}
