//! Klavis's browser-facing OAuth endpoints (no API key: the instance id is the credential):
//! `/oauth/{provider}/authorize` and `/oauth/{provider}/callback`.

use crate::http::context::RequestContext;
use crate::oauth::{AuthorizeRequest, CallbackQuery, OAuthAnswer, OAuthFlow};
use poem::Request;
use poem_openapi::param::{Path, Query};
use poem_openapi::{OpenApi, Tags};

#[derive(Tags)]
enum OAuthTags {
    /// Klavis-compatible OAuth flow (browser-facing).
    OAuth,
}

pub struct KlavisOAuthApi {
    flow: OAuthFlow,
}

impl KlavisOAuthApi {
    pub fn new(flow: OAuthFlow) -> Self {
        Self { flow }
    }
}

#[OpenApi(tag = "OAuthTags::OAuth")]
impl KlavisOAuthApi {
    /// Send the user's browser to the provider's consent page (with PKCE and a signed,
    /// expiring, single-use state). Open it in a browser. A `redirect_url` must be on the
    /// project's redirect allow-list (`/api/v1/project/redirect-hosts`); otherwise a plain
    /// 400 page answers and nothing is redirected.
    #[oai(path = "/oauth/:provider/authorize", method = "get")]
    async fn authorize(
        &self,
        provider: Path<String>,
        instance_id: Query<String>,
        redirect_url: Query<Option<String>>,
        /// Comma- or space-separated.
        scope: Query<Option<String>>,
        client_id: Query<Option<String>>,
    ) -> OAuthAnswer {
        let request = AuthorizeRequest {
            provider: provider.0,
            instance_id: instance_id.0,
            redirect_url: redirect_url.0,
            scope: scope.0,
            client_id: client_id.0,
        };
        self.flow.authorize(request).await.into()
    }

    /// Where the provider sends the browser back: exchanges the code, stores the tokens
    /// (encrypted) on the instance, then redirects to the caller's `redirect_url` with
    /// `instance_id` and `status`, or shows a plain page.
    #[oai(path = "/oauth/:provider/callback", method = "get")]
    async fn callback(
        &self,
        req: &Request,
        provider: Path<String>,
        code: Query<Option<String>>,
        state: Query<Option<String>>,
        error: Query<Option<String>>,
        error_description: Query<Option<String>>,
    ) -> OAuthAnswer {
        let query = CallbackQuery {
            provider: provider.0,
            code: code.0,
            state: state.0,
            error: error.0,
            error_description: error_description.0,
        };
        let meta = RequestContext::of(req).metadata("oauth-callback".into());
        self.flow.callback(query, &meta).await.into()
    }
}
