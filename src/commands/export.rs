//! `quire export`: a document's original file, or its searchable PDF, out of
//! the store under a name a person recognises.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};

use crate::app::App;
use crate::cli::ExportArgs;
use crate::config::Config;
use crate::store::Document;

/// Runs `quire export`.
pub fn run(config: &Config, args: &ExportArgs) -> anyhow::Result<ExitCode> {
    let app = App::open_existing(config)?;
    let doc = app.document(args.id)?;
    let original = Path::new(&doc.name)
        .file_name()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(format!("document-{}", doc.id)));
    let default_name = if args.searchable {
        original.with_extension("pdf")
    } else {
        original
    };
    let out = args.output.clone().unwrap_or(default_name);
    let to_stdout = out.as_os_str() == "-";
    if !to_stdout && !args.force && out.exists() {
        bail!(
            "{} exists; give another name with -o FILE, or --force to replace it",
            out.display()
        );
    }
    // Written beside the target and renamed: an interrupted export leaves
    // no half file under the name asked for.
    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() && !to_stdout => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let tmp = tempfile::Builder::new()
        .prefix(".quire-export-")
        .tempfile_in(if to_stdout { std::env::temp_dir() } else { dir })
        .context("cannot create a temporary file for the export")?;
    let pages = if args.searchable {
        searchable(&app, config, &doc, tmp.path())?
    } else {
        std::fs::copy(app.store.file_of(&doc), tmp.path())
            .with_context(|| format!("cannot copy the stored original of document {}", doc.id))?;
        None
    };
    if to_stdout {
        let data = std::fs::read(tmp.path())?;
        std::io::stdout().lock().write_all(&data)?;
        return Ok(ExitCode::SUCCESS);
    }
    // A temporary file is private (0600); an exported file is not.
    use std::os::unix::fs::PermissionsExt;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o644))?;
    tmp.as_file().sync_all()?;
    tmp.persist(&out)
        .map_err(|e| e.error)
        .with_context(|| format!("cannot write {}", out.display()))?;
    match pages {
        Some(n) => eprintln!("wrote {} (searchable, {n} page(s))", out.display()),
        None => eprintln!("wrote {}", out.display()),
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes `doc`'s searchable PDF to `path`: a copy of the one in
/// `output.dir` when it is there, else made now. Returns its page count when
/// made now.
fn searchable(
    app: &App,
    config: &Config,
    doc: &Document,
    path: &Path,
) -> anyhow::Result<Option<usize>> {
    if let Some(made) = doc
        .searchable_pdf
        .as_deref()
        .filter(|p| Path::new(p).is_file())
    {
        std::fs::copy(made, path).with_context(|| format!("cannot copy {made}"))?;
        return Ok(None);
    }
    let never = std::sync::atomic::AtomicBool::new(false);
    let pages = crate::tasks::pdf::write(&app.store, &config.ocr, doc, path, &never)
        .with_context(|| format!("cannot write document {}'s searchable PDF", doc.id))?;
    Ok(Some(pages))
}
