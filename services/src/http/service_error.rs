//! The error format of the service's own API (`/api/v1/...`: the audit, the project's
//! settings), which speaks no vendor's format: `{"error": "<field>: <message>"}` with the
//! problem's status.

use super::problem::Problem;
use poem::http::StatusCode;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object};

#[derive(Object, Debug)]
pub struct ServiceErrorBody {
    error: String,
}

#[derive(ApiResponse, Debug)]
pub enum ServiceApiError {
    /// Bad input (422), a missing or invalid key (401), an unknown or another project's id (404).
    #[oai(status_range = "4XX")]
    Client(StatusCode, Json<ServiceErrorBody>),
    #[oai(status_range = "5XX")]
    Server(StatusCode, Json<ServiceErrorBody>),
}

impl From<Problem> for ServiceApiError {
    fn from(problem: Problem) -> Self {
        let status = problem.default_status();
        let body = Json(ServiceErrorBody { error: problem.describe() });
        if status.is_server_error() { Self::Server(status, body) } else { Self::Client(status, body) }
    }
}
