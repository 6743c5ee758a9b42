//! `kdhost health [--ready] [--url URL]`: asks a running host whether it is alive (or ready),
//! for a container's HEALTHCHECK or a script, where no curl is at hand. Exit 0 on 200.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

/// The URL of this host's own probe: `KD_LISTEN` (an unspecified address becomes loopback),
/// `https` when `KD_TLS_CERT` is set.
pub fn own_url(listen: Option<&str>, tls: bool, ready: bool) -> Result<String, String> {
    let listen = listen.unwrap_or("127.0.0.1:8080");
    let mut addr: SocketAddr = listen
        .parse()
        .map_err(|_| format!("KD_LISTEN must be an address like 0.0.0.0:8080, not `{listen}`"))?;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr.ip() {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
        });
    }
    let scheme = if tls { "https" } else { "http" };
    let path = if ready { "readyz" } else { "healthz" };
    Ok(format!("{scheme}://{addr}/{path}"))
}

pub async fn run(url: Option<String>, ready: bool) -> anyhow::Result<ExitCode> {
    let url = match url {
        Some(u) => u,
        None => own_url(
            std::env::var("KD_LISTEN").ok().as_deref(),
            std::env::var_os("KD_TLS_CERT").is_some_and(|v| !v.is_empty()),
            ready,
        )
        .map_err(anyhow::Error::msg)?,
    };
    let loopback = reqwest::Url::parse(&url)?
        .host_str()
        .is_some_and(|h| h == "localhost" || h.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback()));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        // Our own listener on loopback: its certificate names the public host, not 127.0.0.1.
        .danger_accept_invalid_certs(loopback)
        .build()?;
    let answer = match client.get(&url).send().await {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{url}: no answer: {e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let status = answer.status();
    let body = answer.text().await.unwrap_or_default();
    let line = body
        .lines()
        .next()
        .unwrap_or("")
        .chars()
        .take(300)
        .collect::<String>();
    if status.is_success() {
        println!("{url}: {status} {line}");
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("{url}: {status} {line}");
        Ok(ExitCode::FAILURE)
    }
}

#[cfg(test)]
mod tests {
    use super::own_url;

    #[test]
    fn the_own_url_is_loopback_for_an_unspecified_address_and_https_with_a_certificate() {
        assert_eq!(
            own_url(Some("0.0.0.0:8080"), false, false).unwrap(),
            "http://127.0.0.1:8080/healthz"
        );
        assert_eq!(
            own_url(Some("[::]:8443"), true, true).unwrap(),
            "https://[::1]:8443/readyz"
        );
        assert_eq!(
            own_url(None, false, true).unwrap(),
            "http://127.0.0.1:8080/readyz"
        );
        assert!(
            own_url(Some("port 80"), false, false)
                .unwrap_err()
                .contains("KD_LISTEN")
        );
    }
}
