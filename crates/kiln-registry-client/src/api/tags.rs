//! The tag list of a repository.

use super::{check, read_capped};
use crate::client::{Client, Repo};
use crate::error::{RegistryError, Result};
use crate::manifest::MAX_MANIFEST_BYTES;

impl Client {
    /// Every tag of the repository, following the registry's pagination
    /// (`Link: <…>; rel="next"`). Capped in pages and bytes: a registry
    /// could otherwise keep kiln reading forever.
    pub async fn list_tags(&self, repo: &Repo) -> Result<Vec<String>> {
        #[derive(serde::Deserialize)]
        struct Page {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        const MAX_PAGES: usize = 1000;
        let what = format!("tag list of {repo}");
        let mut url = self.url(repo, "tags/list");
        let mut tags = Vec::new();
        for _ in 0..MAX_PAGES {
            let resp = self
                .send(&repo.registry, &[repo.pull_scope()], || {
                    self.http().get(&url)
                })
                .await?;
            let resp = check(resp, repo, &what, "pull").await?;
            let next = resp
                .headers()
                .get(reqwest::header::LINK)
                .and_then(|v| v.to_str().ok())
                .and_then(next_link)
                .map(|l| self.location_of(repo, &l, &what))
                .transpose()?;
            // Credentials go only to the registry asked: a next page
            // elsewhere is refused.
            if let Some(n) = &next {
                if !n.starts_with(&format!("{}/", self.base_url(&repo.registry))) {
                    return Err(RegistryError::Invalid {
                        what,
                        reason: format!("next page {n:?} is on another host"),
                    });
                }
            }
            let bytes = read_capped(resp, MAX_MANIFEST_BYTES, &what, &repo.registry).await?;
            let page: Page =
                serde_json::from_slice(&bytes).map_err(|e| RegistryError::Invalid {
                    what: what.clone(),
                    reason: e.to_string(),
                })?;
            tags.extend(page.tags.unwrap_or_default());
            match next {
                Some(n) => url = n,
                None => return Ok(tags),
            }
        }
        Err(RegistryError::Invalid {
            what,
            reason: format!("more than {MAX_PAGES} pages"),
        })
    }
}

/// The target of a `rel="next"` link in a `Link` header.
fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        let is_next = params
            .split(';')
            .any(|p| matches!(p.trim(), "rel=\"next\"" | "rel=next"));
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        is_next.then(|| target.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::next_link;

    #[test]
    fn finds_the_next_page_in_a_link_header() {
        assert_eq!(
            next_link(r#"</v2/a/tags/list?n=1&last=x>; rel="next""#).as_deref(),
            Some("/v2/a/tags/list?n=1&last=x")
        );
        assert_eq!(
            next_link(r#"<http://x/prev>; rel="prev", <http://x/next>; rel=next"#).as_deref(),
            Some("http://x/next")
        );
        assert_eq!(next_link(r#"</v2/a>; rel="prev""#), None);
        assert_eq!(next_link("garbage"), None);
    }
}
