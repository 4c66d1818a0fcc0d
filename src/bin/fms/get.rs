//! `fms get`: records as pretty JSON, from a snapshot file or through the memcached tier.

use std::path::PathBuf;

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
    #[command(flatten)]
    tier: crate::tier::TierArgs,
    /// The locale to read (default: the origin's default locale).
    #[arg(long, requires = "memcached")]
    locale: Option<String>,
}

pub fn run(a: Args) -> CliResult {
    if let Some(store) = a.tier.store()? {
        return remote(&a, &store);
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
    say!("{}", json.map_err(|e| e.to_string())?);
    Ok(())
}

fn remote(a: &Args, store: &fms::remote::RemoteStore) -> CliResult {
    let locale = match &a.locale {
        Some(l) => l.clone(),
        None => store
            .published()
            .map_err(|e| format!("{e} (has `fms push` published this origin?)"))?
            .default_locale
            .clone(),
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
