//! A private CA for evl's HTTPS clients: `EVL_CA_FILE` names a PEM bundle of certificates
//! trusted beside the system's roots by every verb that speaks HTTPS (`--ledger https://…`
//! reads, `submit`, `publish --to s3://…`, `checkpoint --witness https://…`). It is read
//! only when such a verb builds its client, never by local verbs (docs/SERVER.md §"TLS").

use std::path::PathBuf;

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use crate::error::Error;

/// The environment variable naming the extra CA bundle.
pub const CA_ENV: &str = "EVL_CA_FILE";

/// Makes ring rustls's process-wide provider, once: reqwest is built without a provider of its
/// own (Cargo.toml: no AWS-LC, whose static constructor would run at every start). Every client
/// path calls it through `extra_roots`, and the S3 builder directly.
pub fn use_ring() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Err only when a provider is installed already, which is as good.
        let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
    });
}

/// The certificates of `EVL_CA_FILE`, or none when it is unset or empty. Errors are one line
/// naming the variable and the file.
pub fn extra_roots() -> Result<Vec<CertificateDer<'static>>, String> {
    use_ring();
    let Some(path) = std::env::var_os(CA_ENV).filter(|p| !p.is_empty()) else {
        return Ok(Vec::new());
    };
    let path = PathBuf::from(path);
    let bad = |why: String| format!("{CA_ENV}={}: {why}", path.display());
    let certs = CertificateDer::pem_file_iter(&path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            bad(match e {
                rustls_pki_types::pem::Error::Io(e) => e.to_string(),
                other => format!("not a PEM certificate bundle: {other:?}"),
            })
        })?;
    if certs.is_empty() {
        return Err(bad("no PEM CERTIFICATE block".into()));
    }
    for c in &certs {
        x509_parser::parse_x509_certificate(c)
            .map_err(|e| bad(format!("a certificate does not parse: {e}")))?;
    }
    Ok(certs)
}

/// The extra roots for reqwest (`evl submit --ledger https://…`): merged with the platform's.
pub fn reqwest_roots() -> Result<Vec<reqwest::Certificate>, Error> {
    extra_roots()
        .map_err(Error::Invalid)?
        .iter()
        .map(|c| reqwest::Certificate::from_der(c).map_err(|e| Error::Invalid(chain(&e))))
        .collect()
}

/// `options` trusting the extra roots too (object_store's HTTP and S3 clients, through
/// reqwest: merged with the platform's).
pub fn object_store_options(
    mut options: object_store::ClientOptions,
) -> Result<object_store::ClientOptions, Error> {
    for c in extra_roots().map_err(Error::Invalid)? {
        let cert = object_store::Certificate::from_der(&c)
            .map_err(|e| Error::Invalid(format!("{CA_ENV}: {e}")))?;
        options = options.with_root_certificate(cert);
    }
    Ok(options)
}

/// ureq's roots (witness submission): its default (Mozilla's roots) when `EVL_CA_FILE` is
/// unset; else the system's roots and the file's.
pub fn ureq_roots() -> Result<Option<ureq::tls::RootCerts>, String> {
    let extra = extra_roots()?;
    if extra.is_empty() {
        return Ok(None);
    }
    let system = rustls_native_certs::load_native_certs().certs;
    let all: Vec<ureq::tls::Certificate<'static>> = system
        .iter()
        .chain(extra.iter())
        .map(|c| ureq::tls::Certificate::from_der(c).to_owned())
        .collect();
    Ok(Some(ureq::tls::RootCerts::new_with_certs(&all)))
}

/// An error and its sources on one line (a TLS failure is usually a source several levels
/// down: "error sending request" ← "client error (Connect)" ← "invalid peer certificate: …").
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(s) = next {
        let t = s.to_string();
        if !out.contains(&t) {
            out.push_str(": ");
            out.push_str(&t);
        }
        next = s.source();
    }
    out
}
