//! The project: a customer of the service, holding API keys and the hosts its OAuth flows may
//! redirect to. Every other aggregate carries the
//! id of the project it belongs to.

mod aggregate;
mod command;
mod error;
mod redirect_hosts;

pub use aggregate::Project;
pub use command::{KeyDigest, ProjectCommand, ProjectName, RateLimit, RedirectHostsChange};
pub use error::ProjectError;
pub use redirect_hosts::{InvalidRedirectHost, RedirectHost, RedirectHosts, parse_redirect_target};
