//! `fms get`: records as pretty JSON, from a snapshot file or through the memcached tier.

use std::path::PathBuf;
use std::sync::Arc;

use crate::CliResult;

#[derive(clap::Args)]
pub struct Args {
    /// `SNAPSHOT ID` (a snapshot file and one record id), or with --memcached the record
    /// ids (one or more).
    #[arg(required = true, value_name = "SNAPSHOT ID | ID...")]
    args: Vec<String>,
    /// Print only this field.
    #[arg(long)]
    field: Option<String>,
    #[command(flatten)]
    bases: crate::Bases,
    /// Read through the memcached tier: its servers, `host:port[:weight [name]],...`
    /// (twemproxy server lines; needs --origin).
    #[arg(long, value_name = "HOST:PORT,...", requires = "origin")]
    memcached: Option<String>,
    /// Gutter servers for keys of servers that are down, `host:port,...`.
    #[arg(long, value_name = "HOST:PORT,...", requires = "memcached")]
    gutter: Option<String>,
    /// The origin directory that `fms push` published (needs --memcached).
    #[arg(long, value_name = "DIR", requires = "memcached")]
    origin: Option<PathBuf>,
    /// The locale to read (default: the origin's default locale).
    #[arg(long, requires = "memcached")]
    locale: Option<String>,
}

pub fn run(a: Args) -> CliResult {
    if let (Some(servers), Some(origin)) = (&a.memcached, &a.origin) {
        return remote(&a, servers, origin);
    }
    let [snapshot, id] = a.args.as_slice() else {
        return Err("fms get takes a snapshot file and one record id \
                    (or --memcached ... --origin DIR and record ids)"
            .into());
    };
    let snapshot = PathBuf::from(snapshot);
    let snap = crate::open_with_bases(&snapshot, &a.bases.bases)?;
    let rec = snap
        .get(id)
        .ok_or_else(|| format!("{}: no record with id {id:?}", snapshot.display()))?;
    print(&rec, id, a.field.as_deref()).map_err(|e| format!("{}: {e}", snapshot.display()))
}

fn print(rec: &fms::Record<'_>, id: &str, field: Option<&str>) -> Result<(), String> {
    let json = match field {
        None => serde_json::to_string_pretty(rec),
        Some(f) => {
            let v = rec
                .get(f)
                .ok_or_else(|| format!("record {id:?} has no field {f:?}"))?;
            serde_json::to_string_pretty(&v)
        }
    };
    println!("{}", json.map_err(|e| e.to_string())?);
    Ok(())
}

fn remote(a: &Args, servers: &str, origin: &std::path::Path) -> CliResult {
    use fms::remote::{Cluster, ClusterConfig, RemoteConfig, RemoteStore};
    let mut cfg =
        ClusterConfig::new(&ClusterConfig::parse_list(servers).map_err(|e| e.to_string())?);
    if let Some(g) = &a.gutter {
        cfg.gutter = ClusterConfig::parse_list(g).map_err(|e| e.to_string())?;
    }
    let cluster = Arc::new(Cluster::new(cfg).map_err(|e| e.to_string())?);
    let store =
        RemoteStore::new(cluster, origin, RemoteConfig::default()).map_err(|e| e.to_string())?;
    let locale = match &a.locale {
        Some(l) => l.clone(),
        None => {
            fms::remote::origin::Origin::new(origin)
                .read_pointers()
                .map_err(|e| format!("{e} (has `fms push` published this origin?)"))?
                .default_locale
        }
    };
    let ids: Vec<&str> = a.args.iter().map(String::as_str).collect();
    let recs = store.get_many(&locale, &ids).map_err(|e| e.to_string())?;
    let mut missing = Vec::new();
    for (id, r) in ids.iter().zip(recs) {
        match r {
            Some(r) => print(&r.record(), id, a.field.as_deref())?,
            None => missing.push(*id),
        }
    }
    if !missing.is_empty() {
        return Err(format!(
            "locale {locale:?}: no record with id {}",
            missing.join(", ")
        ));
    }
    Ok(())
}
