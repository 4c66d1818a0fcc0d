//! The memcached tier's command-line options, shared by `fms get` and `fms serve`.

use std::path::PathBuf;
use std::sync::Arc;

use fms::remote::{Cluster, ClusterConfig, RemoteConfig, RemoteStore};

#[derive(clap::Args)]
pub struct TierArgs {
    /// Go through the memcached tier: its servers, `host:port[:weight [name]],...`
    /// (twemproxy server lines; needs --origin).
    #[arg(long, value_name = "HOST:PORT,...", requires = "origin")]
    pub memcached: Option<String>,
    /// Gutter servers for keys of servers that are down, `host:port,...`.
    #[arg(long, value_name = "HOST:PORT,...", requires = "memcached")]
    pub gutter: Option<String>,
    /// The origin directory that `fms push` published (needs --memcached).
    #[arg(long, value_name = "DIR", requires = "memcached")]
    pub origin: Option<PathBuf>,
}

impl TierArgs {
    /// The store reading through the tier, if `--memcached` was given.
    pub fn store(&self) -> Result<Option<RemoteStore>, String> {
        let (Some(servers), Some(origin)) = (&self.memcached, &self.origin) else {
            return Ok(None);
        };
        let mut cfg =
            ClusterConfig::new(&ClusterConfig::parse_list(servers).map_err(|e| e.to_string())?);
        if let Some(g) = &self.gutter {
            cfg.gutter = ClusterConfig::parse_list(g).map_err(|e| e.to_string())?;
        }
        let cluster = Arc::new(Cluster::new(cfg).map_err(|e| e.to_string())?);
        RemoteStore::new(cluster, origin, RemoteConfig::default())
            .map(Some)
            .map_err(|e| e.to_string())
    }
}
