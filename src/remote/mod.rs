//! The memcached tier (feature `remote`): records stored in memcached under their content
//! hash, sharded with a libketama/twemproxy-compatible ring, read through a
//! [`RemoteStore`] that pins one record manifest per request.
//!
//! One idea per module:
//!
//! * [`ketama`]: the ring (md5, 160 points per server, twemproxy's point strings);
//! * [`client`]: a meta-protocol connection: pipelined batches under a deadline;
//! * [`health`]: marking servers down after K errors for T;
//! * [`pool`]: the cluster: routing (ketama, gutter), per-server batches in parallel;
//! * [`item`]: the bytes of a record in memcached (envelope, content hash, verification);
//! * [`flight`]: in-process single-flight;
//! * [`mphf`]: the perfect hash function over a manifest's ids;
//! * [`manifest`]: the record manifest (id → item hash) read from fms snapshots;
//! * [`origin`]: the durable origin directory (trees, record manifests, pointers);
//! * [`hot`]: the hot set, chosen at push time and mapped by readers;
//! * [`pointer`](mod@pointer): the per-locale version pointer, flipped with CAS;
//! * [`push`]: publishing an origin to memcached;
//! * [`store`]: [`RemoteStore`], the read path;
//! * [`error`]: the tier's error type, [`RemoteError`].
//!
//! ```no_run
//! # fn main() -> Result<(), fms::remote::RemoteError> {
//! use std::sync::Arc;
//! use fms::remote::{Cluster, ClusterConfig, RemoteConfig, RemoteStore};
//!
//! let cluster = Arc::new(Cluster::new(ClusterConfig::new(&["10.0.0.1:11211", "10.0.0.2:11211"]))?);
//! fms::remote::push::push("origin/".as_ref(), &cluster, &Default::default())?; // publisher
//! let store = RemoteStore::new(cluster, "origin/", RemoteConfig::default())?;   // frontend
//! let recs = store.get_many("es", &["video:1", "video:2"])?;
//! if let Some(r) = &recs[0] {
//!     println!("{}", r.record().get("title").and_then(|v| v.to_str()).unwrap_or_default());
//! }
//! # Ok(()) }
//! ```

pub mod client;
pub mod error;
pub mod flight;
pub mod health;
pub mod hot;
pub mod item;
pub mod ketama;
pub mod manifest;
pub mod mphf;
pub mod origin;
pub mod pointer;
pub mod pool;
pub mod push;
pub mod store;

pub use error::{RemoteError, RemoteResult};
pub use hot::{build_hot, choose_hot};
pub use item::RemoteRecord;
pub use pool::{Cluster, ClusterConfig};
pub use store::{RemoteConfig, RemoteStore};
