//! The `http` capability: outbound requests to the hosts (and ports) the operator granted,
//! public addresses only unless granted otherwise, sizes capped.

use futures::StreamExt;

use crate::plugins::bindings::kaltura_discord::plugin::http::{Host, Request, Response};
use crate::plugins::bindings::types::{CapError, Capability};
use crate::plugins::egress::{Egress, guest_may_set, is_public};
use crate::plugins::state::PluginState;

/// What the `http` capability needs: the outbound clients.
#[derive(Default)]
pub struct HttpCap {
    pub egress: Egress,
}

const METHODS: [&str; 7] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];
const MAX_REQUEST_BODY: usize = 1 << 20;

impl Host for PluginState {
    async fn fetch(&mut self, request: Request) -> Result<Response, CapError> {
        self.require(Capability::Http)?;
        let url = url::Url::parse(&request.url)
            .map_err(|e| CapError::Invalid(format!("bad url `{}`: {e}", request.url)))?;
        let host = self.allowed_destination(&url)?;
        let method = request.method.to_ascii_uppercase();
        if !METHODS.contains(&method.as_str()) {
            return Err(CapError::Invalid(format!(
                "unsupported method `{}`",
                request.method
            )));
        }
        let mut req = self
            .caps
            .http
            .egress
            .client(self.grants.http_private)
            .request(method.parse().expect("checked method"), url);
        for (k, v) in request.headers.iter().filter(|(k, _)| guest_may_set(k)) {
            req = req.header(k, v);
        }
        if let Some(body) = request.body {
            if body.len() > MAX_REQUEST_BODY {
                return Err(CapError::Invalid(format!(
                    "request body over {MAX_REQUEST_BODY} bytes"
                )));
            }
            req = req.body(body);
        }
        let resp = req.send().await.map_err(|e| {
            CapError::Failed(format!("request to {host} failed: {}", without_url(&e)))
        })?;
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .filter_map(|(k, v)| Some((k.to_string(), v.to_str().ok()?.to_string())))
            .collect();
        let cap = self.grants.limits.http_response_max_bytes;
        let body = capped_body(&host, cap, resp).await?;
        Ok(Response {
            status,
            headers,
            body,
        })
    }
}

impl PluginState {
    /// The URL's host, when the operator granted it (scheme, host, port, and for an
    /// address written in the URL, that it is public unless private ones are granted; a
    /// name is checked when it is resolved).
    fn allowed_destination(&self, url: &url::Url) -> Result<String, CapError> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(CapError::Invalid(format!(
                "only http and https urls are allowed, not `{}`",
                url.scheme()
            )));
        }
        // IPv6 literals are granted without their brackets.
        let host = url
            .host_str()
            .unwrap_or_default()
            .trim_matches(['[', ']'])
            .to_ascii_lowercase();
        if !self.grants.http_hosts.contains(&host) {
            return Err(self.denied(format!(
                "host `{host}` is not granted to plugin `{}` (operator: add it to plugins.{}.http_hosts)",
                self.plugin, self.plugin
            )));
        }
        let port = url.port_or_known_default().unwrap_or(0);
        if !self.grants.allows_port(port) {
            return Err(self.denied(format!(
                "port {port} is not granted to plugin `{}` (80 and 443 are; operator: plugins.{}.http_ports)",
                self.plugin, self.plugin
            )));
        }
        let literal = match url.host() {
            Some(url::Host::Ipv4(ip)) => Some(std::net::IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(std::net::IpAddr::V6(ip)),
            _ => None,
        };
        if let Some(ip) = literal
            && !self.grants.http_private
            && !is_public(ip)
        {
            return Err(self.denied(format!(
                "{ip} is not a public address (operator: plugins.{}.http_private)",
                self.plugin
            )));
        }
        Ok(host)
    }

    /// A refusal of the `http` capability, counted.
    fn denied(&self, why: String) -> CapError {
        crate::telemetry::METRICS
            .capability_denied
            .with_label_values(&[&*self.plugin, "http"])
            .inc();
        CapError::Denied(why)
    }
}

/// The error with its causes (a refused address says why), without the URL: reqwest
/// errors quote it, and it may carry a plugin's query-string secrets.
fn without_url(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cause = c.source();
    }
    if let Some(u) = e.url() {
        s = s.replace(u.as_str(), "<url>");
    }
    s
}

/// The response body, refused past the plugin's size cap (read chunk by chunk, so an
/// endless body costs no more than the cap).
async fn capped_body(host: &str, cap: usize, resp: reqwest::Response) -> Result<Vec<u8>, CapError> {
    let mut body = Vec::new();
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            CapError::Failed(format!(
                "reading the response from {host}: {}",
                without_url(&e)
            ))
        })?;
        if body.len() + chunk.len() > cap {
            return Err(CapError::Invalid(format!(
                "the response from {host} is over {cap} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
