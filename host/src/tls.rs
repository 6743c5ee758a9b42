//! TLS on the host's own listener (`--tls-cert`/`--tls-key`), for deployments without a
//! terminating proxy: rustls, TLS 1.2 and 1.3, HTTP/2 and HTTP/1.1 by ALPN. The certificate
//! is read again when its files change (checked at most every 10 s, on a handshake), so a
//! renewed certificate is served without a restart; a renewal that does not load keeps the
//! last good one and is logged. Behind Cloudflare or a Kubernetes Ingress, let them
//! terminate TLS instead (docs/configuration.md, "TLS").

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail};
use arc_swap::ArcSwap;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// How often the certificate files are looked at again.
const RECHECK: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Default, clap::Args)]
pub struct TlsOptions {
    /// PEM certificate chain: serve HTTPS (with --tls-key). Unset: plain HTTP, for a proxy
    /// that terminates TLS (Cloudflare, an Ingress).
    #[arg(long, env = "KD_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "KD_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
}

impl TlsOptions {
    /// The server configuration, `None` without TLS; an error names the file and what is
    /// wrong with it.
    pub fn server_config(&self) -> Result<Option<Arc<rustls::ServerConfig>>> {
        let (cert, key) = match (&self.tls_cert, &self.tls_key) {
            (None, None) => return Ok(None),
            (Some(c), Some(k)) => (c.clone(), k.clone()),
            (Some(_), None) => {
                bail!("--tls-cert (KD_TLS_CERT) is set but --tls-key (KD_TLS_KEY) is not")
            }
            (None, Some(_)) => {
                bail!("--tls-key (KD_TLS_KEY) is set but --tls-cert (KD_TLS_CERT) is not")
            }
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let resolver = Arc::new(ReloadingCert::load(cert, key, provider.clone())?);
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("TLS protocol versions")?
            .with_no_client_auth()
            .with_cert_resolver(resolver);
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Some(Arc::new(config)))
    }
}

/// The certificate and key, read again when their files change.
#[derive(Debug)]
struct ReloadingCert {
    cert: PathBuf,
    key: PathBuf,
    provider: Arc<rustls::crypto::CryptoProvider>,
    current: ArcSwap<CertifiedKey>,
    /// When the files were last looked at, and their modification times then.
    checked: Mutex<(Instant, Option<(SystemTime, SystemTime)>)>,
}

fn modified(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

impl ReloadingCert {
    fn load(
        cert: PathBuf,
        key: PathBuf,
        provider: Arc<rustls::crypto::CryptoProvider>,
    ) -> Result<Self> {
        let stamps = modified(&cert).zip(modified(&key));
        let current = certified_key(&cert, &key, &provider)?;
        Ok(Self {
            cert,
            key,
            provider,
            current: ArcSwap::from_pointee(current),
            checked: Mutex::new((Instant::now(), stamps)),
        })
    }

    /// Reads the files again if they changed since the last look (at most every 10 s).
    fn refresh(&self) {
        let mut checked = self.checked.lock().unwrap_or_else(|e| e.into_inner());
        if checked.0.elapsed() < RECHECK {
            return;
        }
        let stamps = modified(&self.cert).zip(modified(&self.key));
        checked.0 = Instant::now();
        if stamps == checked.1 {
            return;
        }
        checked.1 = stamps;
        match certified_key(&self.cert, &self.key, &self.provider) {
            Ok(k) => {
                self.current.store(Arc::new(k));
                tracing::info!(cert = %self.cert.display(), "TLS certificate reloaded");
            }
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "TLS certificate not reloaded; the last good one stays")
            }
        }
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.refresh();
        Some(self.current.load_full())
    }
}

/// A certificate chain and its key, checked to belong together.
fn certified_key(
    cert: &Path,
    key: &Path,
    provider: &rustls::crypto::CryptoProvider,
) -> Result<CertifiedKey> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("{}: cannot read the certificate", cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("{}: not a PEM certificate chain", cert.display()))?;
    if chain.is_empty() {
        bail!(
            "{}: holds no certificate (PEM `BEGIN CERTIFICATE`)",
            cert.display()
        );
    }
    let private = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("{}: not a PEM private key", key.display()))?;
    let signing = provider
        .key_provider
        .load_private_key(private)
        .with_context(|| format!("{}: a private key of a kind TLS cannot use", key.display()))?;
    let certified = CertifiedKey::new(chain, signing);
    certified.keys_match().with_context(|| {
        format!(
            "{} and {}: the key does not belong to the certificate",
            key.display(),
            cert.display()
        )
    })?;
    Ok(certified)
}
