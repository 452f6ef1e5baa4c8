//! Loopback ports for processes that a test or a harness starts and that
//! bind the port themselves (a service binary, the broker, chromedriver).
//!
//! The usual trick, binding port 0 and handing the port on once the probe
//! is closed, draws from the kernel's ephemeral range. Outgoing connections
//! take their source ports from that same range. Between the probe
//! closing and the child binding, any of the thousands of connections a
//! run opens (to Postgres, to the broker, through proxies) can take the
//! port as its source. The child then fails with "Address already in use".
//! The long chaos run met this once in 92 runs. So ports come from below
//! the ephemeral range, where only listeners live, and a bind probes each.
//! A port is never handed out twice by one process.

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;

/// The lowest port drawn: clear of the well-known and most registered
/// service ports that a developer's machine may be running.
const LOWEST: u16 = 10_000;
/// Linux's default lower bound of `ip_local_port_range`.
const DEFAULT_EPHEMERAL_START: u16 = 32_768;
/// Candidates probed before giving up.
const ATTEMPTS: u64 = 2_000;
/// A stride coprime with any span below it, so successive draws spread
/// over the whole span rather than clustering.
const STRIDE: u64 = 7_919;

static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
static DRAWS: AtomicU64 = AtomicU64::new(0);

/// A loopback port nothing listens on, outside the ephemeral range.
pub fn free_port() -> anyhow::Result<u16> {
    let [port] = free_ports()?;
    Ok(port)
}

/// `N` distinct loopback ports nothing listens on, outside the ephemeral range.
pub fn free_ports<const N: usize>() -> anyhow::Result<[u16; N]> {
    let mut ports = [0; N];
    for port in &mut ports {
        *port = draw()?;
    }
    Ok(ports)
}

fn draw() -> anyhow::Result<u16> {
    let end = ephemeral_start();
    if end <= LOWEST + 100 {
        // No room below the ephemeral range on this machine: fall back to
        // the kernel's choice, race and all.
        return kernel_port();
    }
    let span = u64::from(end - LOWEST);
    // Processes that start together (test binaries, a harness and its
    // children) begin at different places in the span.
    let seed = u64::from(std::process::id()).wrapping_mul(31)
        ^ SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |now| u64::from(now.subsec_nanos()));
    let mut handed_out = HANDED_OUT
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    for _ in 0..ATTEMPTS {
        let draw = DRAWS.fetch_add(1, Ordering::Relaxed);
        let offset = (seed.wrapping_add(draw.wrapping_mul(STRIDE))) % span;
        let Ok(candidate) = u16::try_from(u64::from(LOWEST) + offset) else {
            continue;
        };
        if handed_out.contains(&candidate) {
            continue;
        }
        if TcpListener::bind(("127.0.0.1", candidate)).is_ok() {
            handed_out.insert(candidate);
            return Ok(candidate);
        }
    }
    anyhow::bail!("no free loopback port in {LOWEST}..{end} after {ATTEMPTS} tries")
}

/// The first port of the kernel's ephemeral range (`ip_local_port_range`).
fn ephemeral_start() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse().ok())
        .unwrap_or(DEFAULT_EPHEMERAL_START)
}

fn kernel_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("find a free port")?;
    Ok(listener.local_addr().context("read a bound port")?.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_distinct_bindable_and_below_the_ephemeral_range() {
        let ports: [u16; 50] = free_ports().unwrap_or_else(|error| panic!("{error:#}"));
        let distinct: BTreeSet<u16> = ports.iter().copied().collect();
        assert_eq!(distinct.len(), ports.len());
        let ephemeral = ephemeral_start();
        for port in ports {
            if ephemeral > LOWEST + 100 {
                assert!((LOWEST..ephemeral).contains(&port), "{port}");
            }
            TcpListener::bind(("127.0.0.1", port))
                .unwrap_or_else(|error| panic!("port {port}: {error}"));
        }
    }
}
