//! The project: a customer of the service, holding API keys. Every other aggregate carries the
//! id of the project it belongs to.

mod aggregate;
mod command;
mod error;

pub use aggregate::Project;
pub use command::{KeyDigest, ProjectCommand, ProjectName};
pub use error::ProjectError;
