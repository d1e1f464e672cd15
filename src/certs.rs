//! `dsys certs init DIR --nodes l1,l2,l3`: a cluster CA and a certificate
//! per member, for `--tls DIR` (see `net::tls` for the folder's layout).

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};

use crate::cli::{CliError, Outcome};
use crate::net::tls::{CA_FILE, CA_KEY_FILE};

#[derive(Subcommand, Debug)]
pub enum CertsCmd {
    /// Make a cluster CA and one certificate per member in DIR
    Init(InitArgs),
}

#[derive(Args, Debug)]
#[command(
    after_help = "Writes DIR/ca.pem (every node and client trusts it), DIR/ca.key (keep it;\n\
never copy it to nodes), and DIR/NAME.pem + DIR/NAME.key per name (keys mode 0600).\n\
A node started with --tls DIR uses ca.pem and its own NAME.pem/NAME.key: copy\n\
those three to each host. The chat server uses `server`, the tracker `tracker`:\n\n  \
dsys certs init tls --nodes l1,l2,l3\n  \
dsys certs init tls --nodes server,tracker --hosts chat.example.org,10.0.0.5\n  \
dsys tokenring l1 --next l2 --tls tls"
)]
pub struct InitArgs {
    /// The folder to write (made if missing; an existing CA there is never replaced)
    pub dir: PathBuf,
    /// Member names, comma-separated: each gets a certificate naming it
    #[arg(long, value_delimiter = ',', required = true, value_name = "NAMES")]
    pub nodes: Vec<String>,
    /// Host names or IP addresses that clients dial, added to every
    /// certificate [default: localhost, 127.0.0.1, ::1]
    #[arg(long, value_delimiter = ',', value_name = "HOSTS")]
    pub hosts: Vec<String>,
}

pub fn run(cmd: CertsCmd) -> Outcome {
    match cmd {
        CertsCmd::Init(a) => init(&a),
    }
}

fn failed(what: &str, e: impl std::fmt::Display) -> CliError {
    CliError::Failed(format!("{what}: {e}"))
}

fn write(path: &Path, text: &str, secret: bool) -> Result<(), CliError> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let _ = secret;
    let file_err = |source| CliError::File {
        file: path.to_path_buf(),
        source,
    };
    let mut f = opts.open(path).map_err(file_err)?;
    f.write_all(text.as_bytes()).map_err(file_err)
}

fn san(name: &str) -> Result<SanType, CliError> {
    if let Ok(ip) = name.parse::<std::net::IpAddr>() {
        return Ok(SanType::IpAddress(ip));
    }
    let dns = name
        .to_string()
        .try_into()
        .map_err(|_| CliError::usage(format!("{name:?} is not a host or member name a certificate can carry (letters, digits, '-', '.')")))?;
    Ok(SanType::DnsName(dns))
}

fn init(a: &InitArgs) -> Outcome {
    make(&a.dir, &a.nodes, &a.hosts)?;
    println!("Give each host ca.pem and its own NAME.pem and NAME.key; keep ca.key off the nodes.");
    Ok(crate::cli::Ended::Passed)
}

/// Makes the CA and a certificate per name of `nodes` in `dir` (each also
/// naming `hosts`, by default the loopback names); says what it made.
pub fn make(dir: &Path, nodes: &[String], hosts: &[String]) -> Result<(), CliError> {
    let a = InitArgs {
        dir: dir.to_path_buf(),
        nodes: nodes.to_vec(),
        hosts: hosts.to_vec(),
    };
    let mut nodes: Vec<&str> = Vec::new();
    for n in &a.nodes {
        let n = n.trim();
        if n.is_empty() {
            return Err(CliError::usage("--nodes has an empty name"));
        }
        if n.contains(['/', '\\']) || n.starts_with('.') || n == "ca" {
            return Err(CliError::usage(format!(
                "{n:?} cannot be a member name here (it names the files NAME.pem, NAME.key)"
            )));
        }
        if !nodes.contains(&n) {
            nodes.push(n);
        }
    }
    let hosts: Vec<String> = if a.hosts.is_empty() {
        vec!["localhost".into(), "127.0.0.1".into(), "::1".into()]
    } else {
        a.hosts.iter().map(|h| h.trim().to_string()).collect()
    };
    for n in &nodes {
        san(n)?;
    }
    for h in &hosts {
        san(h)?;
    }
    std::fs::create_dir_all(&a.dir).map_err(|source| CliError::File {
        file: a.dir.clone(),
        source,
    })?;
    let ca_path = a.dir.join(CA_FILE);
    if ca_path.exists() {
        return Err(CliError::usage(format!(
            "{} exists already: a new CA would orphan every certificate it signed (use another DIR, or delete that one first)",
            ca_path.display()
        )));
    }
    for n in &nodes {
        for ext in ["pem", "key"] {
            let p = a.dir.join(format!("{n}.{ext}"));
            if p.exists() {
                return Err(CliError::usage(format!("{} exists already", p.display())));
            }
        }
    }
    let mut ca_params = CertificateParams::default();
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "dsys cluster CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate().map_err(|e| failed("cannot make the CA key", e))?;
    let ca_cert = ca_params
        .self_signed(&ca_key)
        .map_err(|e| failed("cannot make the CA certificate", e))?;
    write(&a.dir.join(CA_KEY_FILE), &ca_key.serialize_pem(), true)?;
    write(&ca_path, &ca_cert.pem(), false)?;
    let issuer = Issuer::new(ca_params, ca_key);
    for n in &nodes {
        let mut p = CertificateParams::default();
        p.distinguished_name.push(DnType::CommonName, *n);
        p.subject_alt_names = std::iter::once(san(n)?)
            .chain(
                hosts
                    .iter()
                    .map(|h| san(h))
                    .collect::<Result<Vec<_>, _>>()?,
            )
            .collect();
        p.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        p.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let key = KeyPair::generate().map_err(|e| failed("cannot make a key", e))?;
        let cert = p
            .signed_by(&key, &issuer)
            .map_err(|e| failed(&format!("cannot sign {n}'s certificate"), e))?;
        write(&a.dir.join(format!("{n}.key")), &key.serialize_pem(), true)?;
        write(&a.dir.join(format!("{n}.pem")), &cert.pem(), false)?;
    }
    println!(
        "{}: a CA (ca.pem, ca.key) and certificates for {} (also naming {}).",
        a.dir.display(),
        nodes.join(", "),
        hosts.join(", ")
    );
    Ok(())
}
