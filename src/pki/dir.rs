//! The PKI directory: the CA, the server certificate and one client certificate per operator
//! under fixed file names, created when missing and reused, never overwritten; private keys
//! are written with mode 0600. Revocation appends to the CRL.

use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use rustls::pki_types::pem::PemObject;

use super::ca::{CertificateAuthority, LeafSpec, Usage};
use super::EnsureReport;
use super::{ADMIN_TOKEN, CA_CERT, CA_KEY, CRL, NOTIFICATION_CLIENT, SERVER_CERT, SERVER_KEY};

/// The PKI directory and its fixed file names.
#[derive(Debug, Clone)]
pub struct PkiDir {
    dir: PathBuf,
}

impl PkiDir {
    /// The PKI in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        PkiDir { dir: dir.into() }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Path of `<name>.pem`.
    pub fn cert_path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.pem"))
    }

    /// Path of `<name>.key`.
    pub fn key_path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.key"))
    }

    /// Path of the CA certificate.
    pub fn ca_cert_path(&self) -> PathBuf {
        self.dir.join(CA_CERT)
    }

    /// Path of the server certificate.
    pub fn server_cert_path(&self) -> PathBuf {
        self.dir.join(SERVER_CERT)
    }

    /// Path of the server key.
    pub fn server_key_path(&self) -> PathBuf {
        self.dir.join(SERVER_KEY)
    }

    /// Path of the admin token file (written only when the server makes a token).
    pub fn admin_token_path(&self) -> PathBuf {
        self.dir.join(ADMIN_TOKEN)
    }

    /// The admin token in this directory, if a readable, non-empty one is there.
    pub fn admin_token(&self) -> Option<String> {
        let text = fs::read_to_string(self.admin_token_path()).ok()?;
        let token = text.trim();
        (!token.is_empty()).then(|| token.to_string())
    }

    /// The admin token in this directory, or `make()`'s, written there (mode 0600) for the
    /// tools that share the directory (a compose client, `smdpp-mock conformance`). The bool
    /// is true when it was made now.
    pub fn ensure_admin_token(
        &self,
        make: impl FnOnce() -> crate::Result<String>,
    ) -> crate::Result<(String, bool)> {
        crate::error::pki(|| {
            if let Some(token) = self.admin_token() {
                return Ok((token, false));
            }
            let token = make()?;
            write_new(
                &self.admin_token_path(),
                format!("{token}\n").as_bytes(),
                true,
            )?;
            Ok((token, true))
        })
    }

    /// Loads the CA, or creates it when neither of its files exists.
    pub fn ensure_ca(&self, report: &mut EnsureReport) -> crate::Result<CertificateAuthority> {
        crate::error::pki(|| {
            let (cert, key) = (self.dir.join(CA_CERT), self.dir.join(CA_KEY));
            match (cert.exists(), key.exists()) {
                (true, true) => {
                    let ca = CertificateAuthority::from_pem(&read(&cert)?, &read(&key)?)
                        .with_context(|| format!("loading the CA from {}", self.dir.display()))?;
                    report.reused.extend([cert, key]);
                    Ok(ca)
                }
                (false, false) => {
                    if let Some(orphan) = self.orphan_leaf()? {
                        bail!(
                        "{} exists but the CA that signed it ({} and {}) is missing; restore the \
                         CA files or remove the directory to start a new PKI",
                        orphan.display(),
                        cert.display(),
                        key.display()
                    );
                    }
                    let ca = CertificateAuthority::generate("smdpp-mock test CA")?;
                    write_new(&cert, ca.cert_pem().as_bytes(), false)?;
                    write_new(&key, ca.key_pem().as_bytes(), true)?;
                    report.created.extend([cert, key]);
                    Ok(ca)
                }
                _ => bail!(
                    "only one of {} and {} exists; restore the other or remove both",
                    cert.display(),
                    key.display()
                ),
            }
        })
    }

    /// The CA this directory already holds. Commands that use a PKI (issuing, signing,
    /// revoking) never create one: a new CA in the wrong directory makes certificates the
    /// running mock refuses.
    pub fn existing_ca(&self) -> crate::Result<CertificateAuthority> {
        crate::error::pki(|| {
            let (cert, key) = (self.dir.join(CA_CERT), self.dir.join(CA_KEY));
            if !cert.exists() || !key.exists() {
                let absolute = std::path::absolute(&self.dir).unwrap_or_else(|_| self.dir.clone());
                bail!(
                    "no test PKI in {} (no {CA_CERT} and {CA_KEY} there). Point --certs-dir (or \
                 SMDPP_CERTS_DIR) at the directory the running mock uses, or create a PKI there \
                 with `smdpp-mock certs init --certs-dir DIR` (`serve` creates one on first start)",
                    absolute.display()
                );
            }
            CertificateAuthority::from_pem(&read(&cert)?, &read(&key)?)
                .with_context(|| format!("loading the CA from {}", self.dir.display()))
        })
    }

    fn orphan_leaf(&self) -> Result<Option<PathBuf>> {
        if !self.dir.exists() {
            return Ok(None);
        }
        for entry in
            fs::read_dir(&self.dir).with_context(|| format!("reading {}", self.dir.display()))?
        {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "pem") {
                return Ok(Some(path));
            }
        }
        Ok(None)
    }

    /// Makes sure the CA, the server certificate (with `sans`), the notification client
    /// certificate and a client certificate for each of `clients` exist, creating what is
    /// missing. Reused certificates must have been signed by the CA.
    pub fn ensure(&self, sans: &[String], clients: &[&str]) -> crate::Result<EnsureReport> {
        crate::error::pki(|| {
            fs::create_dir_all(&self.dir)
                .with_context(|| format!("creating {}", self.dir.display()))?;
            let mut report = EnsureReport::default();
            let ca = self.ensure_ca(&mut report)?;

            let mut server = LeafSpec::new("smdpp-mock server", Usage::Server);
            server.sans = sans.to_vec();
            self.ensure_leaf(&ca, "server", &server, &mut report)?;
            let mut names = vec![NOTIFICATION_CLIENT];
            names.extend(clients.iter().copied());
            for name in names {
                self.ensure_leaf(&ca, name, &LeafSpec::new(name, Usage::Client), &mut report)?;
            }
            Ok(report)
        })
    }

    /// Issues `<name>.pem`/`<name>.key` unless both exist; refuses to touch one without the
    /// other.
    pub fn ensure_leaf(
        &self,
        ca: &CertificateAuthority,
        name: &str,
        spec: &LeafSpec,
        report: &mut EnsureReport,
    ) -> crate::Result<()> {
        crate::error::pki(|| {
            check_file_name(name)?;
            let (cert, key) = (self.cert_path(name), self.key_path(name));
            match (cert.exists(), key.exists()) {
                (true, true) => {
                    let pem = read(&cert)?;
                    check_issued_by(&pem, ca)
                        .with_context(|| format!("{} cannot be reused", cert.display()))?;
                    if spec.usage == Usage::Server {
                        let missing = missing_sans(&pem, &spec.sans)?;
                        if !missing.is_empty() {
                            report.warnings.push(format!(
                                "{} lacks the SAN(s) {}; delete it (and {}) to issue a new one",
                                cert.display(),
                                missing.join(", "),
                                key.display()
                            ));
                        }
                    }
                    report.reused.extend([cert, key]);
                }
                (false, false) => {
                    let issued = ca.issue(spec)?;
                    write_new(&cert, issued.cert_pem.as_bytes(), false)?;
                    write_new(&key, issued.key_pem.as_bytes(), true)?;
                    report.created.extend([cert, key]);
                }
                _ => bail!(
                    "only one of {} and {} exists; restore the other or remove both",
                    cert.display(),
                    key.display()
                ),
            }
            Ok(())
        })
    }

    /// Issues a new client certificate `<name>.pem`/`<name>.key`; fails if either exists.
    pub fn issue_client(&self, name: &str) -> crate::Result<EnsureReport> {
        crate::error::pki(|| {
            check_file_name(name)?;
            let ca = self.existing_ca()?;
            let mut report = EnsureReport::default();
            if self.cert_path(name).exists() || self.key_path(name).exists() {
                bail!(
                    "{} or {} already exists; files are never overwritten",
                    self.cert_path(name).display(),
                    self.key_path(name).display()
                );
            }
            self.ensure_leaf(&ca, name, &LeafSpec::new(name, Usage::Client), &mut report)?;
            Ok(report)
        })
    }
}

impl PkiDir {
    /// Revokes a certificate: `certs/<NAME>.pem`, or a PEM file path. Its serial number is
    /// added to `crl.pem` (created if absent), which is re-signed with the next CRL number.
    /// Returns the CRL path and the revoked serial (hex).
    pub fn revoke(&self, name_or_file: &str) -> crate::Result<(PathBuf, String)> {
        crate::error::pki(|| {
            let ca = self.existing_ca()?;
            let named = self.cert_path(name_or_file);
            let file = if check_file_name(name_or_file).is_ok() && named.exists() {
                named
            } else {
                PathBuf::from(name_or_file)
            };
            let pem = read(&file)?;
            let der = rustls::pki_types::CertificateDer::from_pem_slice(pem.as_bytes())
                .map_err(|e| anyhow!("{}: not a PEM certificate: {e}", file.display()))?;
            let (_, cert) = X509Certificate::from_der(der.as_ref())
                .map_err(|e| anyhow!("{}: {e}", file.display()))?;
            let serial = cert.raw_serial().to_vec();
            let crl_path = self.dir.join(CRL);
            let (mut revoked, number) = match fs::read_to_string(&crl_path) {
                Ok(text) => {
                    read_crl(&text).with_context(|| format!("reading {}", crl_path.display()))?
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => (Vec::new(), 0),
                Err(e) => return Err(anyhow!("reading {}: {e}", crl_path.display())),
            };
            if !revoked.contains(&serial) {
                revoked.push(serial.clone());
            }
            let crl = ca.crl(&revoked, number + 1)?;
            // A server reading it at a reset must never see half a CRL.
            crate::atomic_file::write(&crl_path, crl.as_bytes(), 0o644)?;
            Ok((crl_path, crate::ids::hex(&serial)))
        })
    }
}

/// The revoked serials and the CRL number of a PEM CRL.
fn read_crl(pem: &str) -> Result<(Vec<Vec<u8>>, u64)> {
    let der = rustls::pki_types::CertificateRevocationListDer::from_pem_slice(pem.as_bytes())
        .map_err(|e| anyhow!("not a PEM CRL: {e}"))?;
    let (_, crl) = x509_parser::revocation_list::CertificateRevocationList::from_der(der.as_ref())
        .map_err(|e| anyhow!("{e}"))?;
    let revoked = crl
        .iter_revoked_certificates()
        .map(|r| r.raw_serial().to_vec())
        .collect();
    let number = crl
        .crl_number()
        .and_then(|n| u64::try_from(n).ok())
        .unwrap_or(0);
    Ok((revoked, number))
}

fn check_file_name(name: &str) -> Result<()> {
    if name.is_empty()
        || name.starts_with('.')
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        bail!("{name:?} cannot be a certificate name: use letters, digits, '-', '_' and '.'");
    }
    Ok(())
}

fn read(path: &Path) -> Result<String> {
    fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// Writes a file that must not exist yet; keys get mode 0600.
fn write_new(path: &Path, contents: &[u8], secret: bool) -> Result<()> {
    Ok(smdpp_rsp::pki::write_new(path, contents, secret)?)
}

fn first_cert_der(pem: &str) -> Result<Vec<u8>> {
    let der = rustls::pki_types::CertificateDer::from_pem_slice(pem.as_bytes())
        .map_err(|e| anyhow!("not a PEM certificate: {e}"))?;
    Ok(der.to_vec())
}

fn check_issued_by(leaf_pem: &str, ca: &CertificateAuthority) -> Result<()> {
    let leaf_der = first_cert_der(leaf_pem)?;
    let ca_der = first_cert_der(ca.cert_pem())?;
    let (_, leaf) =
        X509Certificate::from_der(&leaf_der).map_err(|e| anyhow!("unreadable certificate: {e}"))?;
    let (_, ca_cert) =
        X509Certificate::from_der(&ca_der).map_err(|e| anyhow!("unreadable CA: {e}"))?;
    leaf.verify_signature(Some(ca_cert.public_key()))
        .map_err(|_| anyhow!("it was not signed by the CA in the same directory"))
}

fn missing_sans(cert_pem: &str, wanted: &[String]) -> Result<Vec<String>> {
    let der = first_cert_der(cert_pem)?;
    let (_, cert) =
        X509Certificate::from_der(&der).map_err(|e| anyhow!("unreadable certificate: {e}"))?;
    let mut present: Vec<String> = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(s) => present.push(s.to_ascii_lowercase()),
                GeneralName::IPAddress(b) => match b.len() {
                    4 => {
                        present.extend(<[u8; 4]>::try_from(*b).map(|a| IpAddr::from(a).to_string()))
                    }
                    16 => present
                        .extend(<[u8; 16]>::try_from(*b).map(|a| IpAddr::from(a).to_string())),
                    _ => {}
                },
                _ => {}
            }
        }
    }
    Ok(wanted
        .iter()
        .filter(|w| {
            let w = match w.parse::<IpAddr>() {
                Ok(ip) => ip.to_string(),
                Err(_) => w.to_ascii_lowercase(),
            };
            !present.contains(&w)
        })
        .cloned()
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::ca::{CertificateAuthority, LeafSpec, Usage};

    #[test]
    fn ensure_creates_then_reuses() {
        let dir = std::env::temp_dir().join(format!("smdpp-pki-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let pki = PkiDir::new(&dir);
        let sans = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        let first = pki.ensure(&sans, &["test-mno"]).unwrap();
        assert_eq!(first.created.len(), 8);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.join("ca.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let before = fs::read(dir.join("server.pem")).unwrap();
        let mut more = sans.clone();
        more.push("smdp.example.com".into());
        let second = pki.ensure(&more, &["test-mno", "other-mno"]).unwrap();
        assert_eq!(second.created.len(), 2, "only other-mno is new");
        assert_eq!(second.warnings.len(), 1, "{:?}", second.warnings);
        assert_eq!(fs::read(dir.join("server.pem")).unwrap(), before);
        assert!(pki.issue_client("test-mno").is_err(), "never overwrites");
        assert!(pki.issue_client("../evil").is_err());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn foreign_leaf_is_refused() {
        let dir = std::env::temp_dir().join(format!("smdpp-pki-foreign-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let pki = PkiDir::new(&dir);
        pki.ensure(&[], &[]).unwrap();
        let other = CertificateAuthority::generate("other").unwrap();
        let leaf = other.issue(&LeafSpec::new("x", Usage::Client)).unwrap();
        fs::write(dir.join("x.pem"), leaf.cert_pem).unwrap();
        fs::write(dir.join("x.key"), leaf.key_pem).unwrap();
        let err = pki.ensure(&[], &["x"]).unwrap_err();
        assert!(
            format!("{err:#}").contains("not signed by the CA"),
            "{err:#}"
        );
        fs::remove_dir_all(&dir).unwrap();
    }
}
