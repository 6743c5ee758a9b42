use futures::StreamExt;

use crate::plugins::bindings::kaltura_discord::plugin::http::{Host, Request, Response};
use crate::plugins::bindings::types::{CapError, Capability};
use crate::plugins::state::PluginState;

const METHODS: [&str; 7] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];
const MAX_REQUEST_BODY: usize = 1 << 20;

impl Host for PluginState {
    async fn fetch(&mut self, request: Request) -> Result<Response, CapError> {
        self.require(Capability::Http)?;
        let url = url::Url::parse(&request.url)
            .map_err(|e| CapError::Invalid(format!("bad url `{}`: {e}", request.url)))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(CapError::Invalid(format!(
                "only http and https urls are allowed, not `{}`",
                url.scheme()
            )));
        }
        let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
        if !self.grants.http_hosts.contains(&host) {
            crate::telemetry::METRICS
                .capability_denied
                .with_label_values(&[&*self.plugin, "http"])
                .inc();
            return Err(CapError::Denied(format!(
                "host `{host}` is not granted to plugin `{}` (operator: add it to plugins.{}.http_hosts)",
                self.plugin, self.plugin
            )));
        }
        let method = request.method.to_ascii_uppercase();
        if !METHODS.contains(&method.as_str()) {
            return Err(CapError::Invalid(format!(
                "unsupported method `{}`",
                request.method
            )));
        }
        let mut req = self
            .services
            .http
            .request(method.parse().expect("checked method"), url);
        for (k, v) in &request.headers {
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
        Ok(Response {
            status,
            headers,
            body,
        })
    }
}

/// reqwest errors quote the URL, which may carry a plugin's query-string secrets.
fn without_url(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    if let Some(u) = e.url() {
        s = s.replace(u.as_str(), "<url>");
    }
    s
}
