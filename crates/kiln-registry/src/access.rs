//! Who may do what: `[[access]]` rules granting actions (`pull`, `push`,
//! `delete`, `catalog`) on repository patterns to users, and what a
//! request needs.
//!
//! One model serves both auth schemes: with Basic auth the middleware asks
//! [`granted`] about the request's user directly; the token server asks it
//! which of a token request's scopes to put in the token (the scopes
//! intersected with the rules), and the middleware then reads the token.

use serde::Deserialize;

use crate::policy::glob;

/// What a grant allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Read manifests, blobs, tags and referrers.
    Pull,
    /// Upload blobs and manifests, tag.
    Push,
    /// Delete manifests, tags and blobs.
    Delete,
    /// List the repositories (`/v2/_catalog`, scope `registry:catalog:*`).
    Catalog,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Pull => "pull",
            Action::Push => "push",
            Action::Delete => "delete",
            Action::Catalog => "*",
        }
    }

    /// A scope's action name (`*` is every action).
    pub fn parse_scope(s: &str) -> Option<Vec<Action>> {
        Some(match s {
            "pull" => vec![Action::Pull],
            "push" => vec![Action::Push],
            "delete" => vec![Action::Delete],
            "*" => vec![Action::Pull, Action::Push, Action::Delete],
            _ => return None,
        })
    }
}

/// One `[[access]]` entry: `users` may do `actions` on repositories
/// matching `repository` (`*` any run of characters, `/` included; `?`
/// one character; default every repository). A user is a name from the
/// htpasswd file, `*` (any signed-in user) or `anonymous` (no
/// credentials). Rules add up; what no rule grants is denied. Without any
/// rule, signed-in users may do everything and anonymous may pull.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    #[serde(default = "every_repository")]
    pub repository: String,
    pub users: Vec<String>,
    pub actions: Vec<Action>,
}

fn every_repository() -> String {
    "*".into()
}

/// The user a request acts for (`None`: anonymous).
pub(crate) type User<'a> = Option<&'a str>;

/// The name logs and tokens use for no credentials.
pub(crate) const ANONYMOUS: &str = "anonymous";

impl Rule {
    fn names(&self, user: User) -> bool {
        self.users.iter().any(|u| match user {
            None => u == ANONYMOUS,
            Some(name) => u == "*" || u == name,
        })
    }
}

/// Whether `rules` let `user` do `action` on `repo` (for
/// [`Action::Catalog`], `repo` is ignored).
pub(crate) fn granted(rules: &[Rule], user: User, repo: &str, action: Action) -> bool {
    if rules.is_empty() {
        return user.is_some() || action == Action::Pull;
    }
    rules.iter().any(|r| {
        r.names(user)
            && r.actions.contains(&action)
            && (action == Action::Catalog || glob(r.repository.as_bytes(), repo.as_bytes()))
    })
}

/// What a request on the registry's API needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Need {
    /// `/v2/`: any authenticated caller (docker's login check).
    Login,
    /// An action on a repository.
    Repo(String, Action),
    /// `/v2/_catalog`.
    Catalog,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(repo: &str, users: &[&str], actions: &[Action]) -> Rule {
        Rule {
            repository: repo.into(),
            users: users.iter().map(|s| s.to_string()).collect(),
            actions: actions.to_vec(),
        }
    }

    #[test]
    fn without_rules_users_do_anything_and_anonymous_pulls() {
        assert!(granted(&[], Some("a"), "x", Action::Delete));
        assert!(granted(&[], Some("a"), "", Action::Catalog));
        assert!(granted(&[], None, "x", Action::Pull));
        assert!(!granted(&[], None, "x", Action::Push));
        assert!(!granted(&[], None, "", Action::Catalog));
    }

    #[test]
    fn rules_grant_by_user_and_pattern() {
        let rules = [
            rule("team-a/*", &["alice"], &[Action::Pull, Action::Push]),
            rule("*", &["*"], &[Action::Pull]),
            rule("public/*", &["anonymous"], &[Action::Pull]),
            rule("*", &["admin"], &[Action::Delete, Action::Catalog]),
        ];
        assert!(granted(&rules, Some("alice"), "team-a/app", Action::Push));
        assert!(granted(&rules, Some("alice"), "team-a/x/y", Action::Push));
        assert!(!granted(&rules, Some("alice"), "team-b/app", Action::Push));
        assert!(granted(&rules, Some("bob"), "team-b/app", Action::Pull));
        assert!(!granted(&rules, Some("bob"), "team-a/app", Action::Push));
        assert!(granted(&rules, None, "public/x", Action::Pull));
        assert!(!granted(&rules, None, "team-a/app", Action::Pull));
        assert!(!granted(
            &rules,
            Some("alice"),
            "team-a/app",
            Action::Delete
        ));
        assert!(granted(&rules, Some("admin"), "team-a/app", Action::Delete));
        assert!(granted(&rules, Some("admin"), "", Action::Catalog));
        assert!(!granted(&rules, Some("alice"), "", Action::Catalog));
        // "*" is every signed-in user, not anonymous.
        assert!(!granted(&rules, None, "team-b/app", Action::Pull));
    }

    #[test]
    fn scope_actions() {
        assert_eq!(Action::parse_scope("pull"), Some(vec![Action::Pull]));
        assert_eq!(Action::parse_scope("*").unwrap().len(), 3);
        assert_eq!(Action::parse_scope("fly"), None);
    }
}
