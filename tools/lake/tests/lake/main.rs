//! The lake writer against the real broker: contract events published to
//! every `*.events` topic arrive in Parquet exactly once — across a writer
//! that dies between putting its files and committing its offsets — and SQL
//! over the files answers from them.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test that cannot set up should fail loudly

mod harness;
mod rebuild;
mod writer;
