//! `kdhost plugin new|build|check|test|publish`: a plugin author's tools, from scaffold to
//! debugger, and publishing to instances that share a database.

use std::path::Path;

use anyhow::{Result, bail};

pub mod build;
pub mod check;
pub mod new;
pub mod publish;
pub mod templates;
pub mod test;

/// The languages a plugin project can be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    Rust,
    Js,
    Python,
}

impl Lang {
    /// What the project folder holds.
    pub fn detect(dir: &Path) -> Result<Self> {
        if dir.join("Cargo.toml").exists() {
            Ok(Lang::Rust)
        } else if dir.join("package.json").exists() {
            Ok(Lang::Js)
        } else if dir.join("app.py").exists() {
            Ok(Lang::Python)
        } else {
            bail!(
                "{} is not a plugin project: no Cargo.toml (Rust), package.json (JavaScript) or app.py (Python); create one with `kdhost plugin new NAME --lang rust|js|python`",
                dir.display()
            )
        }
    }
}
