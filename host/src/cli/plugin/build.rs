//! `kdhost plugin build [DIR]`: a plugin project → a `.wasm` component, whatever its
//! language. Rust: cargo for wasm32-wasip2. JavaScript: `jco componentize`
//! (`@bytecodealliance/componentize-js`, installed by the project's `npm install`). Python:
//! `componentize-py` (from PyPI). Then the component is checked as the host would load it.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use anyhow::{Context, Result, bail};

use super::Lang;
use super::templates::write_contract;

/// The world a JavaScript or Python project declares in `wit/world.wit`.
fn world_name(dir: &Path) -> Result<String> {
    let path = dir.join("wit/world.wit");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let re = regex::Regex::new(r"(?m)^\s*world\s+([a-z][a-z0-9-]*)\s*\{").unwrap();
    re.captures(&text)
        .map(|c| c[1].to_string())
        .with_context(|| format!("{}: no `world NAME {{ ... }}`", path.display()))
}

/// Runs a tool, saying what it runs; a missing program is one line saying what to install.
fn run(mut cmd: Command, what: &str, install: &str) -> Result<()> {
    let program = cmd.get_program().to_string_lossy().to_string();
    eprintln!(
        "  $ {program} {}",
        cmd.get_args()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    );
    let status = match cmd.status() {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!("{what} is not installed: {install}")
        }
        Err(e) => bail!("could not run {program}: {e}"),
    };
    if !status.success() {
        bail!("{what} failed ({status}); its messages are above");
    }
    Ok(())
}

pub async fn build(dir: &Path) -> Result<ExitCode> {
    let dir = dir
        .canonicalize()
        .with_context(|| format!("{} does not exist", dir.display()))?;
    let lang = Lang::detect(&dir)?;
    let started = Instant::now();
    let out = match lang {
        Lang::Rust => build_rust(&dir)?,
        Lang::Js => build_js(&dir)?,
        Lang::Python => build_python(&dir)?,
    };
    let size = std::fs::metadata(&out)?.len();
    eprintln!(
        "built {} ({:.1} MB) in {:.1} s; checking it as the host would load it…",
        out.display(),
        size as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    super::check::check(&out, false).await
}

fn build_rust(dir: &Path) -> Result<PathBuf> {
    eprintln!(
        "building the Rust plugin in {} (cargo, wasm32-wasip2)…",
        dir.display()
    );
    let mut cmd = Command::new("cargo");
    cmd.args(["build", "--release", "--target", "wasm32-wasip2"])
        .current_dir(dir);
    run(
        cmd,
        "cargo",
        "install Rust with rustup (https://rustup.rs), then `rustup target add wasm32-wasip2`",
    )?;
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml"))?;
    let name = manifest
        .lines()
        .find_map(|l| {
            let l = l.trim();
            l.starts_with("name")
                .then(|| l.split('"').nth(1).map(String::from))?
        })
        .context("Cargo.toml has no package name")?;
    let target_dir = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| dir.join("target"));
    let out = target_dir.join(format!(
        "wasm32-wasip2/release/{}.wasm",
        name.replace('-', "_")
    ));
    if !out.exists() {
        bail!(
            "cargo succeeded but {} is missing (is it a `cdylib`?)",
            out.display()
        );
    }
    Ok(out)
}

fn build_js(dir: &Path) -> Result<PathBuf> {
    write_contract(dir)?;
    let world = world_name(dir)?;
    let package: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("package.json"))?)
            .context("package.json is not valid JSON")?;
    let entry = package["main"].as_str().unwrap_or("plugin.js").to_string();
    let jco = dir.join("node_modules/@bytecodealliance/jco/src/jco.js");
    if !jco.exists() {
        bail!(
            "the JavaScript toolchain is not installed in {}: run `npm install` there (needs Node.js 20+ and npm)",
            dir.display()
        );
    }
    eprintln!("building the JavaScript plugin `{world}` from {entry} (jco componentize)…");
    let out = dir.join(format!("{world}.wasm"));
    let mut cmd = Command::new("node");
    cmd.arg(&jco)
        .args([
            "componentize",
            &entry,
            "--wit",
            "wit",
            "--world-name",
            &world,
            "--disable",
            "all",
            "-o",
        ])
        .arg(&out)
        .current_dir(dir);
    run(
        cmd,
        "Node.js",
        "install Node.js 20+ and npm (`apt-get install nodejs npm`, or https://nodejs.org)",
    )?;
    Ok(out)
}

fn build_python(dir: &Path) -> Result<PathBuf> {
    write_contract(dir)?;
    let world = world_name(dir)?;
    eprintln!("building the Python plugin `{world}` from app.py (componentize-py)…");
    let out = dir.join(format!("{world}.wasm"));
    let mut cmd = Command::new("componentize-py");
    cmd.args(["-d", "wit", "-w", &world, "componentize", "app", "-o"])
        .arg(&out)
        .current_dir(dir);
    run(
        cmd,
        "componentize-py",
        "pip install componentize-py (Python 3.10+)",
    )?;
    Ok(out)
}
