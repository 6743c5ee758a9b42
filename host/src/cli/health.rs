//! `kdhost health [--ready] [--url URL]`: asks a running host whether it is alive (or ready),
//! for a container's HEALTHCHECK or a script, where no curl is at hand. Exit 0 on 200.
//! The address comes from `KD_LISTEN` and `KD_TLS_CERT`, read by clap as `serve` reads them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

/// The URL of this host's own probe: its listener (an unspecified address is asked on
/// loopback), `https` when it serves TLS itself.
pub fn own_url(mut listen: SocketAddr, tls: bool, ready: bool) -> String {
    if listen.ip().is_unspecified() {
        listen.set_ip(match listen.ip() {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
        });
    }
    let scheme = if tls { "https" } else { "http" };
    let path = if ready { "readyz" } else { "healthz" };
    format!("{scheme}://{listen}/{path}")
}

pub async fn run(url: &str) -> anyhow::Result<ExitCode> {
    let loopback = reqwest::Url::parse(url)?
        .host_str()
        .is_some_and(|h| h == "localhost" || h.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback()));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        // Our own listener on loopback: its certificate names the public host, not 127.0.0.1.
        .danger_accept_invalid_certs(loopback)
        .build()?;
    let answer = match client.get(url).send().await {
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
        let at = |a: &str| a.parse().unwrap();
        assert_eq!(
            own_url(at("0.0.0.0:8080"), false, false),
            "http://127.0.0.1:8080/healthz"
        );
        assert_eq!(
            own_url(at("[::]:8443"), true, true),
            "https://[::1]:8443/readyz"
        );
        assert_eq!(
            own_url(at("10.1.2.3:80"), false, true),
            "http://10.1.2.3:80/readyz"
        );
    }
}
