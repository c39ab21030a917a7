//! Tag lists and the catalog, sorted and paginated (`n`, `last`, `Link`).

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::error::{ApiError, ApiResult};
use crate::{query, query_value, respond, App};

/// The page of sorted `items` after `last`, at most `n` long, and the
/// `Link` to the next page when there is one.
fn page(
    items: Vec<String>,
    q: &[(String, String)],
    path: &str,
) -> ApiResult<(Vec<String>, Option<String>)> {
    let n = match query_value(q, "n") {
        None => None,
        Some(n) => Some(n.parse::<usize>().map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "PAGINATION_NUMBER_INVALID",
                format!("invalid number of results requested: {n:?}"),
            )
        })?),
    };
    let mut rest: Vec<String> = match query_value(q, "last") {
        Some(last) => items.into_iter().filter(|i| i.as_str() > last).collect(),
        None => items,
    };
    let mut link = None;
    if let Some(n) = n {
        if rest.len() > n {
            rest.truncate(n);
            if let Some(last) = rest.last() {
                let next: String = form_urlencoded::Serializer::new(String::new())
                    .append_pair("n", &n.to_string())
                    .append_pair("last", last)
                    .finish();
                link = Some(format!("<{path}?{next}>; rel=\"next\""));
            }
        }
    }
    Ok((rest, link))
}

fn json_page(body: serde_json::Value, link: Option<String>) -> Response {
    let body = body.to_string();
    let mut headers = vec![
        ("content-type", "application/json".to_string()),
        ("content-length", body.len().to_string()),
    ];
    if let Some(link) = link {
        headers.push(("link", link));
    }
    respond(StatusCode::OK, &headers, Body::from(body))
}

/// `GET /v2/<name>/tags/list`
pub(crate) fn tags(app: &App, name: &str, req: &Request) -> ApiResult {
    let all = app
        .storage
        .tags(name)?
        .ok_or_else(|| ApiError::name_unknown(name))?;
    tag_page(name, all, &query(req))
}

/// A page of `all`, the sorted tags of `name`.
pub(crate) fn tag_page(name: &str, all: Vec<String>, q: &[(String, String)]) -> ApiResult {
    let (tags, link) = page(all, q, &format!("/v2/{name}/tags/list"))?;
    Ok(json_page(
        serde_json::json!({"name": name, "tags": tags}),
        link,
    ))
}

/// `GET /v2/_catalog`
pub(crate) async fn catalog(State(app): State<App>, req: Request) -> Response {
    let result = (|| {
        let (repos, link) = page(app.storage.repositories()?, &query(&req), "/v2/_catalog")?;
        Ok::<_, ApiError>(json_page(serde_json::json!({"repositories": repos}), link))
    })();
    result.unwrap_or_else(IntoResponse::into_response)
}
