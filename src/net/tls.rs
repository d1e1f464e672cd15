//! Mutual TLS for links between nodes, and server TLS for the chat server
//! and the tracker, all rustls (through tonic, and tokio-rustls for the
//! chat wire protocol). A TLS folder, as `dsys certs init DIR` makes it:
//!
//! * `ca.pem` — the cluster CA's certificate: every node and client trusts it;
//! * `ca.key` — its key: only for signing more certificates, never copied to nodes;
//! * `NAME.pem`, `NAME.key` — a member's certificate (its name, plus the
//!   host names given, as DNS names) and its key (mode 0600).
//!
//! A node named `l2` uses `ca.pem`, `l2.pem` and `l2.key`. Across a link,
//! each side checks that the other's certificate is signed by the CA and
//! names the member it claims to be: the dialer by the TLS handshake itself
//! (the server name it asks for is the peer's name), the listener by
//! [`names`] against the hello's `from`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

/// The CA certificate's file name in a TLS folder.
pub const CA_FILE: &str = "ca.pem";
/// The CA key's file name.
pub const CA_KEY_FILE: &str = "ca.key";
/// A TLS handshake must be over in this time (server side).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {}: {source}{hint}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
        hint: String,
    },
    #[error("{}: {what}", path.display())]
    Bad { path: PathBuf, what: String },
    #[error(
        "the key {} can be read by others (mode {mode:o}): `chmod 600 {}`",
        path.display(),
        path.display()
    )]
    Readable { path: PathBuf, mode: u32 },
}

fn read(path: &Path, hint: &str) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        hint: if source.kind() == std::io::ErrorKind::NotFound {
            hint.to_string()
        } else {
            String::new()
        },
        source,
    })
}

fn certs_in(path: &Path, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(pem).collect();
    match certs {
        Ok(c) if !c.is_empty() => Ok(c),
        Ok(_) => Err(TlsError::Bad {
            path: path.to_path_buf(),
            what: "no PEM certificate in it".into(),
        }),
        Err(e) => Err(TlsError::Bad {
            path: path.to_path_buf(),
            what: format!("not a PEM certificate: {e}"),
        }),
    }
}

fn key_in(path: &Path, pem: &[u8]) -> Result<PrivateKeyDer<'static>, TlsError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(m) = std::fs::metadata(path) {
            let mode = m.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(TlsError::Readable {
                    path: path.to_path_buf(),
                    mode,
                });
            }
        }
    }
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| TlsError::Bad {
        path: path.to_path_buf(),
        what: format!("not a PEM private key: {e}"),
    })
}

/// Does `cert` name `name` (as a DNS name or an IP address)?
pub fn names(cert: &CertificateDer<'_>, name: &str) -> bool {
    let Ok(server_name) = ServerName::try_from(name) else {
        return false;
    };
    let Ok(parsed) = rustls::server::ParsedCertificate::try_from(cert) else {
        return false;
    };
    rustls::client::verify_server_name(&parsed, &server_name).is_ok()
}

/// One member's (or server's) certificate, key and the CA, read from a TLS
/// folder and checked to fit together.
#[derive(Clone)]
pub struct Tls {
    pub dir: PathBuf,
    pub name: String,
    ca_pem: Vec<u8>,
    cert_pem: Vec<u8>,
    key_pem: Vec<u8>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tls({} in {})", self.name, self.dir.display())
    }
}

impl Tls {
    /// Reads `DIR/ca.pem`, `DIR/NAME.pem` and `DIR/NAME.key`; the
    /// certificate must name `name`.
    pub fn load(dir: &Path, name: &str) -> Result<Tls, TlsError> {
        let make = format!(
            " (make it with `dsys certs init {} --nodes {name},...`)",
            dir.display()
        );
        let ca_path = dir.join(CA_FILE);
        let ca_pem = read(&ca_path, &make)?;
        certs_in(&ca_path, &ca_pem)?;
        let cert_path = dir.join(format!("{name}.pem"));
        let cert_pem = read(&cert_path, &make)?;
        let certs = certs_in(&cert_path, &cert_pem)?;
        if !names(&certs[0], name) {
            return Err(TlsError::Bad {
                path: cert_path,
                what: format!("this certificate does not name {name}"),
            });
        }
        let key_path = dir.join(format!("{name}.key"));
        let key_pem = read(&key_path, &make)?;
        key_in(&key_path, &key_pem)?;
        Ok(Tls {
            dir: dir.to_path_buf(),
            name: name.to_string(),
            ca_pem,
            cert_pem,
            key_pem,
        })
    }

    /// A server's `--tls DIR` (with its `--tls-name`), if given; a bad
    /// folder is the user's mistake, named.
    pub fn from_flag(dir: Option<&Path>, name: &str) -> Result<Option<Tls>, crate::cli::CliError> {
        dir.map(|d| Tls::load(d, name))
            .transpose()
            .map_err(|e| crate::cli::CliError::Usage(e.to_string()))
    }

    fn identity(&self) -> Identity {
        Identity::from_pem(&self.cert_pem, &self.key_pem)
    }

    fn ca(&self) -> Certificate {
        Certificate::from_pem(&self.ca_pem)
    }

    /// A node's server side: its certificate, and a client certificate
    /// signed by the CA required from every dialer.
    pub fn mutual_server(&self) -> ServerTlsConfig {
        ServerTlsConfig::new()
            .identity(self.identity())
            .client_ca_root(self.ca())
            .timeout(HANDSHAKE_TIMEOUT)
    }

    /// A node's dialing side to `peer`: the peer's certificate must be
    /// signed by the CA and name `peer`; ours goes with it.
    pub fn mutual_client(&self, peer: &str) -> ClientTlsConfig {
        ClientTlsConfig::new()
            .ca_certificate(self.ca())
            .identity(self.identity())
            .domain_name(peer)
    }

    /// A server's side for clients that bring no certificate (chat, tracker).
    pub fn server(&self) -> ServerTlsConfig {
        ServerTlsConfig::new()
            .identity(self.identity())
            .timeout(HANDSHAKE_TIMEOUT)
    }

    /// The same as a rustls config, for servers that are not gRPC (the chat
    /// wire protocol).
    pub fn rustls_server(&self) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let certs = certs_in(&self.dir.join(format!("{}.pem", self.name)), &self.cert_pem)?;
        let key = key_in(&self.dir.join(format!("{}.key", self.name)), &self.key_pem)?;
        let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| self.bad(e))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| self.bad(e))?;
        Ok(Arc::new(cfg))
    }

    fn bad(&self, e: rustls::Error) -> TlsError {
        TlsError::Bad {
            path: self.dir.clone(),
            what: e.to_string(),
        }
    }
}

/// A client's trust in a server: the CA file (`--tls-ca FILE`).
#[derive(Clone)]
pub struct TrustCa {
    pub path: PathBuf,
    pem: Vec<u8>,
    certs: Vec<CertificateDer<'static>>,
}

impl std::fmt::Debug for TrustCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TrustCa({})", self.path.display())
    }
}

impl TrustCa {
    pub fn load(path: &Path) -> Result<TrustCa, TlsError> {
        let pem = read(path, " (the server's ca.pem, from `dsys certs init`)")?;
        let certs = certs_in(path, &pem)?;
        Ok(TrustCa {
            path: path.to_path_buf(),
            pem,
            certs,
        })
    }

    /// For a gRPC channel to a server called `host` (its certificate must
    /// name it).
    pub fn grpc(&self, host: &str) -> ClientTlsConfig {
        ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&self.pem))
            .domain_name(host)
    }

    /// For a plain TLS connection (the chat wire protocol).
    pub fn rustls_client(&self) -> Result<Arc<rustls::ClientConfig>, TlsError> {
        let mut roots = rustls::RootCertStore::empty();
        for c in &self.certs {
            roots.add(c.clone()).map_err(|e| TlsError::Bad {
                path: self.path.clone(),
                what: e.to_string(),
            })?;
        }
        let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Bad {
            path: self.path.clone(),
            what: e.to_string(),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
        Ok(Arc::new(cfg))
    }
}

/// The host part of `host:port` (`[::1]:7070` gives `::1`): the name a
/// server's certificate must carry when a client dials it by that address.
pub fn host_of(addr: &str) -> &str {
    let addr = addr.rsplit_once("://").map_or(addr, |(_, a)| a);
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    host.trim_start_matches('[').trim_end_matches(']')
}

/// A gRPC endpoint for `addr` (`host:port`), over TLS with `tls` when given.
pub fn endpoint(
    addr: &str,
    tls: Option<ClientTlsConfig>,
) -> Result<tonic::transport::Endpoint, tonic::transport::Error> {
    let scheme = if tls.is_some() { "https" } else { "http" };
    let e = tonic::transport::Endpoint::from_shared(format!("{scheme}://{addr}"))?;
    match tls {
        Some(t) => e.tls_config(t),
        None => Ok(e),
    }
}

/// Why a connect failed, when it is TLS's doing: the rustls error in the
/// chain (a certificate not from the CA, or naming someone else).
pub fn tls_failure(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(r) = err.downcast_ref::<rustls::Error>() {
            return Some(r.to_string());
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && let Some(inner) = io.get_ref()
            && let Some(r) = inner.downcast_ref::<rustls::Error>()
        {
            return Some(r.to_string());
        }
        cur = err.source();
    }
    None
}
