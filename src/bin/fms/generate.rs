//! `fms gen`: the synthetic content-site corpus as one JSONL file per locale.

use std::path::PathBuf;

use crate::CliResult;

#[derive(clap::Args)]
pub struct Args {
    /// Size: 1 is the ~26,000-entity content site.
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    /// Comma-separated locale codes; the first is the default locale.
    #[arg(long, default_value = "en", value_delimiter = ',')]
    locales: Vec<String>,
    /// Fraction of text fields each non-default locale translates.
    #[arg(long, default_value_t = 0.7)]
    translated: f64,
    /// Seed: the same seed gives the same files.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Output directory (created if missing); writes `<locale>.jsonl` for each locale.
    #[arg(short, long, default_value = ".")]
    output: PathBuf,
}

pub fn run(a: Args) -> CliResult {
    if !(0.0..=1.0).contains(&a.translated) {
        return Err(format!(
            "--translated must be between 0 and 1, not {}",
            a.translated
        ));
    }
    if !a.scale.is_finite() || a.scale < 0.0 {
        return Err(format!(
            "--scale must be a non-negative number, not {}",
            a.scale
        ));
    }
    let cfg = fms::corpus::CorpusConfig {
        scale: a.scale,
        seed: a.seed,
        locales: a.locales.clone(),
        translated: a.translated,
    };
    std::fs::create_dir_all(&a.output).map_err(|e| format!("{}: {e}", a.output.display()))?;
    for (i, locale) in cfg.locale_codes().iter().enumerate() {
        let path = a.output.join(format!("{locale}.jsonl"));
        let mut n = 0usize;
        crate::write_atomically(&path, |w| {
            for (id, rec) in fms::corpus::records(&cfg, i) {
                writeln!(w, "{}", fms::corpus::jsonl_line(&id, &rec))
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                n += 1;
            }
            Ok(())
        })?;
        say!("{}: {n} records", path.display());
    }
    Ok(())
}
