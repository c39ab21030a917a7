//! npm packages: a `package.json` with a name and a version (syft's rule;
//! files without them, such as `{"type": "module"}` markers, are not
//! packages).

use crate::package::{Found, PkgType};

pub fn parse(bytes: &[u8]) -> Option<Found> {
    let v: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    let name = v.get("name")?.as_str().filter(|s| !s.is_empty())?;
    let version = v.get("version")?.as_str().filter(|s| !s.is_empty())?;
    let mut f = Found::new(PkgType::Npm, name, version);
    let license = match v.get("license") {
        Some(serde_json::Value::String(s)) => Some(s.clone()),
        Some(o) => o.get("type").and_then(|t| t.as_str()).map(str::to_string),
        None => None,
    };
    f.licenses = license.into_iter().collect();
    Some(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_and_version_needed() {
        let f = parse(br#"{"name":"left-pad","version":"1.3.0","license":"WTFPL"}"#).unwrap();
        assert_eq!(f.licenses, ["WTFPL"]);
        assert!(parse(br#"{"type":"module"}"#).is_none());
        assert!(parse(b"not json").is_none());
    }
}
