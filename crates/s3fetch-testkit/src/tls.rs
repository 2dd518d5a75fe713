//! HTTPS for the test server ([`ServerOptions::tls`](crate::ServerOptions::tls)): real S3
//! is HTTPS, so tests and benchmarks can run over TLS too.
//!
//! At every start the server makes a fresh private CA and, signed by it, a certificate for
//! `127.0.0.1`, `::1` and `localhost` (ECDSA P-256, with `rcgen`), and writes the CA
//! certificate as PEM to a file clients are told to trust (`AWS_CA_BUNDLE`, `--ca-bundle`,
//! a custom root store). Nothing is kept: a restarted server has a new CA, so its file is
//! rewritten. The handshake and the crypto are rustls on aws-lc-rs, the stack the AWS SDK's
//! HTTP client already builds, so TLS adds only `rcgen` (and `yasna`, `pem`) to the tree.
//!
//! ALPN offers `http/1.1` only, like S3; with
//! [`ServerOptions::http2`](crate::ServerOptions::http2) also `h2` (clients that offer it,
//! as the AWS SDK does, then speak HTTP/2). TLS sits above the bandwidth cap (the cap counts
//! bytes on the wire) and below the fault injection, so faults behave the same.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::TlsAcceptor;

/// Names the server certificate is valid for.
const SERVER_NAMES: [&str; 3] = ["127.0.0.1", "::1", "localhost"];

/// A server's TLS setup: what accepts connections and what clients need to trust it.
pub(crate) struct Tls {
    pub(crate) acceptor: TlsAcceptor,
    /// The CA certificate, PEM.
    pub(crate) ca_pem: String,
    /// Where `ca_pem` was written.
    pub(crate) ca_file: PathBuf,
}

impl Tls {
    /// Makes a CA and a server certificate, writes the CA's PEM to `ca_file` and builds the
    /// acceptor (ALPN `h2` as well as `http/1.1` when `http2`).
    pub(crate) fn generate(ca_file: &Path, http2: bool) -> anyhow::Result<Self> {
        let ca_key = KeyPair::generate().context("generating the CA key")?;
        let mut ca_params = CertificateParams::new(Vec::new()).context("CA parameters")?;
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "s3fetch-testkit CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca_params
            .self_signed(&ca_key)
            .context("signing the CA certificate")?;
        let issuer = Issuer::new(ca_params, ca_key);

        let key = KeyPair::generate().context("generating the server key")?;
        let names = SERVER_NAMES.map(str::to_owned).to_vec();
        let mut params = CertificateParams::new(names).context("server certificate names")?;
        params
            .distinguished_name
            .push(DnType::CommonName, "s3fetch-testkit");
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params
            .signed_by(&key, &issuer)
            .context("signing the server certificate")?;

        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("TLS protocol versions")?
            .with_no_client_auth()
            .with_single_cert(vec![cert.der().clone()], key_der)
            .context("TLS server certificate")?;
        config.alpn_protocols = if http2 {
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        } else {
            vec![b"http/1.1".to_vec()]
        };

        let ca_pem = ca_cert.pem();
        std::fs::write(ca_file, &ca_pem)
            .with_context(|| format!("writing the CA certificate to {}", ca_file.display()))?;
        // Absolute, so the path printed by `serve` works from any directory.
        let ca_file = std::path::absolute(ca_file).unwrap_or_else(|_| ca_file.to_owned());
        Ok(Self {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            ca_pem,
            ca_file,
        })
    }
}
