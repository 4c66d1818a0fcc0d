//! The memcached tier (feature `remote`): records stored in memcached under their content
//! hash, sharded with a libketama/twemproxy-compatible ring.
//!
//! * [`ketama`]: the ring.
pub mod client;
pub mod error;
pub mod health;
pub mod item;
pub mod ketama;
pub mod pool;
