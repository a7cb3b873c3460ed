//! The browser side of an OAuth flow: a client that shows redirects instead of following them.

/// A client that does not follow redirects, so that a test sees where the browser is sent.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// The `Location` of a redirect; fails the test, showing the body, for anything else.
pub async fn location(response: reqwest::Response) -> String {
    let status = response.status();
    assert!(status.is_redirection(), "not a redirect: {status} {}", response.text().await.unwrap());
    response.headers()["location"].to_str().unwrap().to_owned()
}
