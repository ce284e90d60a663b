//! The limits that keep one client, or one source address, from taking a gateway's
//! capacity from everyone else (docs/security.md lists each with its default).
//!
//! - [`inbound`]: what one connection may send (messages and bytes per second).
//! - [`admission`]: which upgrades the gateway accepts (its connection cap, attempts per
//!   source address, the `Origin` allow-list).
//! - [`TokenBucket`]: the rate limiter both use.

pub mod admission;
pub mod inbound;
mod token_bucket;

pub use token_bucket::TokenBucket;
