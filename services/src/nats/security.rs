//! How the service proves itself to NATS and checks the server: TLS (a CA to trust, a client
//! certificate for mutual TLS) and at most one credential (user and password, token, NKey,
//! or a `.creds` file). Files are read and parsed when the settings are checked, so that a
//! wrong path stops the start with the setting's name; no error or `Debug` shows a secret.

use crate::config::ConfigError;
use async_nats::rustls::pki_types::pem::PemObject;
use async_nats::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use secrecy::{ExposeSecret, SecretString};
use std::path::{Path, PathBuf};

pub const CA_FILE: &str = "PROVISIONER_NATS_CA_FILE";
pub const CLIENT_CERT: &str = "PROVISIONER_NATS_CLIENT_CERT";
pub const CLIENT_KEY: &str = "PROVISIONER_NATS_CLIENT_KEY";
pub const CREDS_FILE: &str = "PROVISIONER_NATS_CREDS_FILE";
pub const NKEY_SEED_FILE: &str = "PROVISIONER_NATS_NKEY_SEED_FILE";
pub const USER: &str = "PROVISIONER_NATS_USER";
pub const PASSWORD: &str = "PROVISIONER_NATS_PASSWORD";
pub const TOKEN: &str = "PROVISIONER_NATS_TOKEN";

/// TLS and the credential, checked.
#[derive(Debug, Clone, Default)]
pub struct Security {
    pub tls: Tls,
    pub auth: Auth,
}

/// TLS beyond what a `tls://` URL or the server asks for: the CA that signs the server's
/// certificate (instead of the system's roots), and the client's certificate and key.
#[derive(Debug, Clone, Default)]
pub struct Tls {
    pub ca_file: Option<PathBuf>,
    /// Certificate chain and private key, both PEM.
    pub client: Option<(PathBuf, PathBuf)>,
}

impl Tls {
    /// Whether any TLS file is set: then the connection must be TLS, never plain text (a CA
    /// or client certificate set for a server that does not offer TLS is a mistake).
    pub fn configured(&self) -> bool {
        self.ca_file.is_some() || self.client.is_some()
    }

    pub(super) fn check(ca_file: Option<&Path>, cert: Option<&Path>, key: Option<&Path>) -> Result<Self, ConfigError> {
        let ca_file = ca_file.map(|path| check_certificates(CA_FILE, path)).transpose()?;
        let client = match (cert, key) {
            (None, None) => None,
            (Some(_), None) => return Err(ConfigError::new(CLIENT_KEY, format!("is not set, but {CLIENT_CERT} is"))),
            (None, Some(_)) => return Err(ConfigError::new(CLIENT_CERT, format!("is not set, but {CLIENT_KEY} is"))),
            (Some(cert), Some(key)) => Some((check_certificates(CLIENT_CERT, cert)?, check_key(key)?)),
        };
        Ok(Self { ca_file, client })
    }
}

/// The one credential sent to NATS. `Debug` shows the method and where it came from, never
/// the secret.
#[derive(Debug, Clone, Default)]
pub enum Auth {
    /// None (an open server, or one that maps the TLS client certificate to a user).
    #[default]
    None,
    UserPassword {
        user: String,
        password: SecretString,
        source: &'static str,
    },
    Token {
        token: SecretString,
        source: &'static str,
    },
    /// An NKey user's seed (`SU...`).
    NKey(SecretString),
    /// A `.creds` file's content: the user JWT and its NKey seed (decentralised auth).
    Creds(SecretString),
}

impl Auth {
    /// The setting an operator should look at when NATS refuses this credential.
    pub fn source(&self) -> &'static str {
        match self {
            Self::None => "no credential is set",
            Self::UserPassword { source, .. } | Self::Token { source, .. } => source,
            Self::NKey(_) => NKEY_SEED_FILE,
            Self::Creds(_) => CREDS_FILE,
        }
    }

    /// The options with this credential.
    pub(super) fn apply(&self, options: async_nats::ConnectOptions) -> anyhow::Result<async_nats::ConnectOptions> {
        Ok(match self {
            Self::None => options,
            Self::UserPassword { user, password, .. } => {
                options.user_and_password(user.clone(), password.expose_secret().to_owned())
            }
            Self::Token { token, .. } => options.token(token.expose_secret().to_owned()),
            Self::NKey(seed) => options.nkey(seed.expose_secret().to_owned()),
            // Parsed once already when the settings were checked.
            Self::Creds(creds) => options
                .credentials(creds.expose_secret())
                .map_err(|_| ConfigError::new(CREDS_FILE, "is not a NATS credentials file"))?,
        })
    }
}

/// The raw credential settings, each optional; [`Auth::check`] allows one at most.
pub(super) struct Credentials<'a> {
    /// `user:password@` (or `token@`) of the `NATS_URL`s, identical in all of them.
    pub url: Option<UrlCredentials>,
    pub user: Option<&'a str>,
    pub password: Option<&'a str>,
    pub token: Option<&'a str>,
    pub nkey_seed_file: Option<&'a Path>,
    pub creds_file: Option<&'a Path>,
}

/// The user info of a NATS URL: `user:password` or a bare token.
#[derive(Clone, PartialEq, Eq)]
pub(super) enum UrlCredentials {
    UserPassword(String, String),
    Token(String),
}

impl Auth {
    pub(super) fn check(given: Credentials<'_>) -> Result<Self, ConfigError> {
        let url_source = match &given.url {
            Some(UrlCredentials::UserPassword(..)) => Some("the user and password in NATS_URL"),
            Some(UrlCredentials::Token(_)) => Some("the token in NATS_URL"),
            None => None,
        };
        let set: Vec<&'static str> = [
            url_source,
            (given.user.is_some() || given.password.is_some()).then_some(USER),
            given.token.map(|_| TOKEN),
            given.nkey_seed_file.map(|_| NKEY_SEED_FILE),
            given.creds_file.map(|_| CREDS_FILE),
        ]
        .into_iter()
        .flatten()
        .collect();
        if let [first, second, ..] = set[..] {
            return Err(ConfigError::new(
                second,
                format!("is set, and so is {first}: NATS takes one credential, choose one"),
            ));
        }
        if let (Some(url), Some(source)) = (given.url, url_source) {
            return Ok(match url {
                UrlCredentials::UserPassword(user, password) => {
                    Self::UserPassword { user, password: password.into(), source }
                }
                UrlCredentials::Token(token) => Self::Token { token: token.into(), source },
            });
        }
        match (given.user, given.password) {
            (Some(user), Some(password)) => {
                return Ok(Self::UserPassword {
                    user: user.to_owned(),
                    password: password.into(),
                    source: "PROVISIONER_NATS_USER and PROVISIONER_NATS_PASSWORD",
                });
            }
            (Some(_), None) => return Err(ConfigError::new(PASSWORD, format!("is not set, but {USER} is"))),
            (None, Some(_)) => return Err(ConfigError::new(USER, format!("is not set, but {PASSWORD} is"))),
            (None, None) => {}
        }
        if let Some(token) = given.token {
            return Ok(Self::Token { token: token.into(), source: TOKEN });
        }
        if let Some(path) = given.nkey_seed_file {
            return check_nkey_seed(path).map(Self::NKey);
        }
        if let Some(path) = given.creds_file {
            return check_creds(path).map(Self::Creds);
        }
        Ok(Self::None)
    }
}

/// The file's content; an error names the setting and the path (never the content).
fn read(setting: &'static str, path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path)
        .map_err(|e| ConfigError::new(setting, format!("({}) cannot be read: {}", path.display(), io_reason(&e))))
}

/// An io error's reason, without the path the standard library may add.
fn io_reason(error: &std::io::Error) -> String {
    match error.kind() {
        std::io::ErrorKind::NotFound => "no such file".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => error.to_string(),
    }
}

/// A PEM file holding at least one certificate (a CA bundle, or a client's chain).
fn check_certificates(setting: &'static str, path: &Path) -> Result<PathBuf, ConfigError> {
    let pem = read(setting, path)?;
    let certificates = CertificateDer::pem_slice_iter(pem.as_bytes()).collect::<Result<Vec<_>, _>>();
    match certificates {
        Ok(certificates) if !certificates.is_empty() => Ok(path.to_owned()),
        _ => Err(ConfigError::new(setting, format!("({}) holds no PEM certificate", path.display()))),
    }
}

/// A PEM private key (PKCS#8, PKCS#1 or SEC1). The parser's message is not shown: it could
/// quote the key.
fn check_key(path: &Path) -> Result<PathBuf, ConfigError> {
    let pem = read(CLIENT_KEY, path)?;
    PrivateKeyDer::from_pem_slice(pem.as_bytes())
        .map(|_| path.to_owned())
        .map_err(|_| ConfigError::new(CLIENT_KEY, format!("({}) holds no PEM private key", path.display())))
}

/// A user's NKey seed (`SU...`), alone in its file.
fn check_nkey_seed(path: &Path) -> Result<SecretString, ConfigError> {
    let seed = SecretString::from(read(NKEY_SEED_FILE, path)?.trim().to_owned());
    let refused = || ConfigError::new(NKEY_SEED_FILE, format!("({}) holds no NKey user seed (SU...)", path.display()));
    let pair = nkeys::KeyPair::from_seed(seed.expose_secret()).map_err(|_| refused())?;
    if !matches!(pair.key_pair_type(), nkeys::KeyPairType::User) {
        return Err(refused());
    }
    Ok(seed)
}

/// A `.creds` file: a user JWT and its NKey seed, in the form `nsc` writes.
fn check_creds(path: &Path) -> Result<SecretString, ConfigError> {
    let creds = SecretString::from(read(CREDS_FILE, path)?);
    async_nats::ConnectOptions::new().credentials(creds.expose_secret()).map_err(|_| {
        ConfigError::new(CREDS_FILE, format!("({}) is not a NATS credentials file (user JWT and seed)", path.display()))
    })?;
    Ok(creds)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none<'a>() -> Credentials<'a> {
        Credentials { url: None, user: None, password: None, token: None, nkey_seed_file: None, creds_file: None }
    }

    #[test]
    fn two_credentials_are_refused_naming_both_and_neither_value() {
        let both = Credentials { token: Some("hunter2"), user: Some("ann"), password: Some("pw-secret"), ..none() };
        let err = Auth::check(both).unwrap_err().to_string();
        assert!(err.contains(USER) && err.contains(TOKEN), "{err}");
        assert!(!err.contains("hunter2") && !err.contains("pw-secret"), "{err}");
    }

    #[test]
    fn a_user_without_a_password_names_the_missing_one() {
        let err = Auth::check(Credentials { user: Some("ann"), ..none() }).unwrap_err();
        assert_eq!(err.setting, PASSWORD);
    }

    #[test]
    fn a_secret_never_shows_in_debug() {
        let auth = Auth::check(Credentials { token: Some("hunter2"), ..none() }).unwrap();
        assert!(!format!("{auth:?}").contains("hunter2"), "{auth:?}");
        let auth = Auth::check(Credentials { user: Some("ann"), password: Some("pw-secret"), ..none() }).unwrap();
        assert!(!format!("{auth:?}").contains("pw-secret"), "{auth:?}");
    }

    #[test]
    fn a_missing_or_wrong_file_names_its_setting_without_its_content() {
        let dir = std::env::temp_dir().join(format!("nats-security-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = dir.join("missing.pem");
        let err = Tls::check(Some(&missing), None, None).unwrap_err();
        assert_eq!(err.setting, CA_FILE);
        assert!(err.to_string().contains("no such file"), "{err}");

        let not_a_seed = dir.join("seed");
        std::fs::write(&not_a_seed, "SUhunter2-not-a-seed").unwrap();
        let err = Auth::check(Credentials { nkey_seed_file: Some(&not_a_seed), ..none() }).unwrap_err();
        assert_eq!(err.setting, NKEY_SEED_FILE);
        assert!(!err.to_string().contains("hunter2"), "{err}");

        let account_seed = dir.join("account-seed");
        std::fs::write(&account_seed, nkeys::KeyPair::new_account().seed().unwrap()).unwrap();
        let err = Auth::check(Credentials { nkey_seed_file: Some(&account_seed), ..none() }).unwrap_err();
        assert!(err.to_string().contains("user seed"), "{err}");

        let user_seed = dir.join("user-seed");
        std::fs::write(&user_seed, format!("{}\n", nkeys::KeyPair::new_user().seed().unwrap())).unwrap();
        let auth = Auth::check(Credentials { nkey_seed_file: Some(&user_seed), ..none() }).unwrap();
        assert!(matches!(auth, Auth::NKey(_)));

        let creds = dir.join("x.creds");
        std::fs::write(&creds, "hunter2").unwrap();
        let err = Auth::check(Credentials { creds_file: Some(&creds), ..none() }).unwrap_err();
        assert_eq!(err.setting, CREDS_FILE);
        assert!(!err.to_string().contains("hunter2"), "{err}");

        let only_cert = Tls::check(None, Some(&missing), None).unwrap_err();
        assert_eq!(only_cert.setting, CLIENT_KEY);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
