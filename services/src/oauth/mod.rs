//! OAuth: projects' own OAuth apps ("white-labeling") and the browser flow that connects a
//! user's account to an instance (authorize, then callback), with PKCE and a signed,
//! encrypted, expiring, single-use `state`.

mod answer;
mod apps;
mod flow;
mod refresh;
mod spent;
mod state;

pub use answer::OAuthAnswer;
pub use apps::{OAuthAppRecord, OAuthApps, OAuthAppsView};
pub use flow::{AuthorizeRequest, CallbackQuery, FlowError, FlowParts, OAuthFlow, Outcome, provider_for_toolkit};
pub use refresh::{MARGIN_SECS, RefreshFailure, TokenRefresher};
pub use spent::SpentStates;
pub use state::{ClientRef, FlowTarget, StateClaims, StateError, StateSealer};
