//! `kdhost plugin new NAME [--lang rust|js|python]`: a plugin project that builds as created.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};

use super::Lang;
use super::templates;

/// Where the guest SDK lives: `KD_PLUGIN_API`, else a `plugin-api/` above the working
/// directory, else the one this binary was built from.
fn sdk_path() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("KD_PLUGIN_API") {
        return Some(PathBuf::from(p));
    }
    let cwd = std::env::current_dir().ok()?;
    let found = cwd
        .ancestors()
        .map(|d| d.join("plugin-api"))
        .find(|p| p.join("Cargo.toml").exists());
    found.or_else(|| {
        let built = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugin-api");
        built
            .join("Cargo.toml")
            .exists()
            .then(|| built.canonicalize().unwrap_or(built))
    })
}

/// Scaffolds a plugin project in Rust, JavaScript or Python.
pub fn new(name: &str, dir: Option<PathBuf>, lang: Lang) -> Result<ExitCode> {
    if !regex::Regex::new(r"^[a-z][a-z0-9_-]{0,31}$")
        .unwrap()
        .is_match(name)
    {
        bail!(
            "plugin name `{name}` must be 1-32 lowercase letters, digits, `-` or `_`, starting with a letter"
        );
    }
    let dir = dir.unwrap_or_else(|| PathBuf::from(name));
    if dir.exists() && std::fs::read_dir(&dir)?.next().is_some() {
        bail!("{} already exists and is not empty", dir.display());
    }
    if lang != Lang::Rust {
        let files = match lang {
            Lang::Js => templates::js(name),
            _ => templates::python(name),
        };
        write_files(&dir, files.iter().map(|(p, t)| (p.as_str(), t.as_str())))?;
        templates::write_contract(&dir)?;
        let (language, setup) = match lang {
            Lang::Js => ("JavaScript", "npm install"),
            _ => ("Python", "pip install -r requirements.txt"),
        };
        println!(
            "Created the {language} plugin `{name}` in {}",
            dir.display()
        );
        println!("  set up: cd {} && {setup}", dir.display());
        println!("  build:  kdhost plugin build {}", dir.display());
        println!(
            "  try it: kdhost plugin test {}/{}.wasm --command '/{name}'",
            dir.display(),
            templates::world_name(name)
        );
        return Ok(ExitCode::SUCCESS);
    }
    let sdk = sdk_path()
        .context("cannot find the plugin SDK (plugin-api/): set KD_PLUGIN_API to its folder")?;
    let sdk = sdk.canonicalize().unwrap_or(sdk);
    let files = templates::rust(name, &sdk);
    write_files(&dir, files.iter().map(|(p, t)| (*p, t.as_str())))?;
    println!("Created plugin `{name}` in {}", dir.display());
    println!("  build:  cd {} && cargo build --release", dir.display());
    println!(
        "  output: target/wasm32-wasip2/release/{}.wasm",
        name.replace('-', "_")
    );
    println!(
        "  check:  kdhost plugin check target/wasm32-wasip2/release/{}.wasm",
        name.replace('-', "_")
    );
    println!("  run:    copy the .wasm into the host's plugins folder; it loads within a second");
    Ok(ExitCode::SUCCESS)
}

fn write_files<'a>(dir: &Path, files: impl Iterator<Item = (&'a str, &'a str)>) -> Result<()> {
    for (rel, text) in files {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().unwrap())?;
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
