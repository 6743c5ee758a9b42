//! Builds every guest crate (first-party plugins, examples, test fixtures) for
//! wasm32-wasip2 and embeds `plugins/*` into the binary, so `cargo build` alone yields a
//! `kdhost` that serves its first-party plugins.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::{env, fs};

const TARGET: &str = "wasm32-wasip2";

fn package_name(manifest: &Path) -> Option<String> {
    let text = fs::read_to_string(manifest).ok()?;
    let line = text.lines().find(|l| l.trim_start().starts_with("name"))?;
    Some(line.split('"').nth(1)?.to_string())
}

/// Guest crates under `dir/*` (each a folder with a Cargo.toml).
fn crates_in(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out: Vec<(PathBuf, String)> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter_map(|p| package_name(&p.join("Cargo.toml")).map(|n| (p, n)))
        .collect();
    out.sort();
    out
}

fn main() {
    let host = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = host.parent().unwrap().to_path_buf();
    let out_dir = PathBuf::from(env::var("OUT_DIR").unwrap());
    for watched in [
        "wit",
        "plugin-api",
        "plugins",
        "testkit/guests",
        "testkit/contract-history",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    // Only the Rust examples are built here (the JavaScript and Python ones, with their
    // node_modules and built components, are built by `kdhost plugin build`).
    for (dir, _) in crates_in(&root.join("examples")) {
        println!("cargo:rerun-if-changed={}", dir.display());
    }

    let plugins = crates_in(&root.join("plugins"));
    let mut guests = plugins.clone();
    guests.extend(
        crates_in(&root.join("examples"))
            .into_iter()
            .filter(|(p, _)| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("rust-")
            }),
    );
    guests.extend(crates_in(&root.join("testkit/guests")));

    let target_dir = root.join("target").join("guests");
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(&cargo);
    cmd.arg("build")
        .arg("--release")
        .arg("--target")
        .arg(TARGET)
        .arg("--target-dir")
        .arg(&target_dir);
    cmd.arg("--manifest-path").arg(root.join("Cargo.toml"));
    // Small components: no debug info, size-optimised (they are embedded and cached).
    for cfg in [
        "profile.release.strip=true",
        "profile.release.opt-level=\"s\"",
        "profile.release.debug=false",
    ] {
        cmd.arg("--config").arg(cfg);
    }
    for (_, name) in &guests {
        cmd.arg("-p").arg(name);
    }
    // The outer build's flags and wrappers (clippy, coverage) are for the host, not guests.
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTC_WRAPPER",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
        "CARGO_MAKEFLAGS",
        "MAKEFLAGS",
        "MFLAGS",
    ] {
        cmd.env_remove(var);
    }
    let output = cmd
        .output()
        .expect("failed to run cargo for the guest plugins");
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        if stderr.contains("target may not be installed")
            || stderr.contains(&format!("`{TARGET}` target"))
        {
            panic!("the {TARGET} target is missing: run `rustup target add {TARGET}`\n{stderr}");
        }
        panic!("building the guest plugins failed:\n{stderr}");
    }

    let wasm_dir = target_dir.join(TARGET).join("release");
    let mut table = String::from("pub static BUILTIN_PLUGINS: &[(&str, &[u8])] = &[\n");
    for (path, name) in &plugins {
        let file = wasm_dir.join(format!("{}.wasm", name.replace('-', "_")));
        assert!(
            file.exists(),
            "guest build did not produce {}",
            file.display()
        );
        let short = format!("{}.wasm", path.file_name().unwrap().to_string_lossy());
        table.push_str(&format!(
            "    ({short:?}, include_bytes!({:?})),\n",
            file.display().to_string()
        ));
    }
    table.push_str("];\n");
    fs::write(out_dir.join("builtin_plugins.rs"), table).unwrap();
    println!("cargo:rustc-env=KD_GUEST_WASM_DIR={}", wasm_dir.display());
}
