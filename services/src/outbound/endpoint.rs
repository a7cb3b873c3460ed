//! The check of a provider endpoint when it is saved: an early, clear refusal of what the
//! client would refuse anyway. Only IP literals can be judged without resolving the name;
//! a name is judged at connect time, on the addresses it then resolves to.

use super::address::AddressPolicy;
use domain::oauth_app::{OAuthAppFieldError, parse_endpoint};

/// An OAuth provider endpoint (`authorize_url`, `token_url`): https (plain http on loopback
/// with the development flag), and not an IP literal the client would refuse.
pub fn check_endpoint(field: &'static str, raw: &str, allow_loopback: bool) -> Result<String, OAuthAppFieldError> {
    let checked = parse_endpoint(field, raw, allow_loopback)?;
    let url = url::Url::parse(&checked).map_err(|e| OAuthAppFieldError { field, reason: e.to_string() })?;
    let ip = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.into(),
        Some(url::Host::Ipv6(ip)) => ip.into(),
        _ => return Ok(checked),
    };
    AddressPolicy { allow_loopback }
        .check(ip)
        .map(|()| checked)
        .map_err(|refused| OAuthAppFieldError { field, reason: format!("must not point at this host: {refused}") })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_literals_outside_the_policy_are_refused_when_saved() {
        for raw in [
            "https://127.0.0.1:5432/token",
            "https://2130706433/token",
            "https://169.254.169.254/latest/meta-data",
            "https://10.0.0.1/token",
            "https://[::1]/token",
            "https://[::ffff:127.0.0.1]/token",
            "https://[fd00::1]/token",
        ] {
            let refused = check_endpoint("token_url", raw, false).unwrap_err();
            assert_eq!(refused.field, "token_url");
            assert!(refused.reason.starts_with("must not point at this host: "), "{raw}: {}", refused.reason);
        }
        assert!(check_endpoint("token_url", "https://oauth2.googleapis.com/token", false).is_ok());
        assert!(check_endpoint("token_url", "https://8.8.8.8/token", false).is_ok());
        // The development flag allows loopback, and only loopback.
        assert!(check_endpoint("token_url", "http://127.0.0.1:9999/token", true).is_ok());
        assert!(check_endpoint("token_url", "https://169.254.169.254/", true).is_err());
    }
}
