//! The memcached tier (feature `remote`): records stored in memcached under their content
//! hash, sharded with a libketama/twemproxy-compatible ring.
//!
//! * [`ketama`]: the ring.
pub mod ketama;
