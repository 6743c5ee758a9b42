//! `kdhost kaltura ks` and `kdhost kaltura ks-info`: operator tools for Kaltura sessions.

use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::kaltura::ks::{self, SessionType};
use crate::store::now_secs as now;

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum KsType {
    User,
    Admin,
}

/// (partner id, secrets) from `KALTURA_PARTNER_ID` and `KALTURA_ADMIN_SECRET` (comma list).
fn partner() -> Result<(u64, Vec<String>)> {
    let pid = std::env::var("KALTURA_PARTNER_ID")
        .context("set KALTURA_PARTNER_ID (your Kaltura partner id)")?;
    let pid: u64 = pid
        .trim()
        .parse()
        .context("KALTURA_PARTNER_ID must be a number")?;
    let secrets: Vec<String> = std::env::var("KALTURA_ADMIN_SECRET")
        .context("set KALTURA_ADMIN_SECRET (from the KMC's Integration settings)")?
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    anyhow::ensure!(!secrets.is_empty(), "KALTURA_ADMIN_SECRET is empty");
    Ok((pid, secrets))
}

pub fn sign(user: &str, t: KsType, privileges: &str, expiry: u32) -> Result<ExitCode> {
    let (pid, secrets) = partner()?;
    let t = match t {
        KsType::User => SessionType::User,
        KsType::Admin => SessionType::Admin,
    };
    let request = ks::KsRequest {
        partner_id: pid,
        user_id: user,
        session_type: t,
        expiry: now() + expiry as i64,
        privileges,
    };
    println!("{}", request.sign(&secrets[0]));
    Ok(ExitCode::SUCCESS)
}

pub fn info(ks_text: &str) -> Result<ExitCode> {
    let (pid, secrets) = partner()?;
    let refs: Vec<&str> = secrets.iter().map(String::as_str).collect();
    match ks::decode(ks_text.trim(), pid, &refs) {
        Ok(i) => {
            let left = i.expiry - now();
            println!("version:    {}", i.version);
            println!("partner:    {}", i.partner_id);
            println!("user:       {}", i.user_id);
            println!("type:       {:?}", i.session_type);
            println!(
                "privileges: {}",
                if i.privileges.is_empty() {
                    "none"
                } else {
                    &i.privileges
                }
            );
            if left > 0 {
                println!("expires:    in {left} s (at {})", i.expiry);
            } else {
                println!("expires:    EXPIRED {} s ago (at {})", -left, i.expiry);
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("invalid KS: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}
