//! SPDX 2.3 JSON: the image is the document's root package (purpose
//! `CONTAINER`, `DESCRIBES`d by the document and `CONTAINS` every other
//! package); each package carries its purl as a `PACKAGE-MANAGER`
//! external reference, the file it was read from as `sourceInfo`, and an
//! `OTHER` annotation naming the layer and Dockerfile step that installed
//! it.

use serde_json::{json, Value};

use super::{layer_note, package_id, uuid, Meta};
use crate::Sbom;

/// SPDX ids allow letters, digits, `.` and `-`.
fn spdx_id(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// A licence as written when it reads as an SPDX expression of ids,
/// else `NOASSERTION` (free text such as `ASL 2.0` is not an id).
fn license(ls: &[String]) -> String {
    // Ids joined by AND/OR/WITH: ids at even places, operators between.
    let ok = |l: &str| {
        let words: Vec<&str> = l.split(' ').collect();
        words.len() % 2 == 1
            && words.iter().enumerate().all(|(i, w)| {
                if i % 2 == 1 {
                    matches!(*w, "AND" | "OR" | "WITH")
                } else {
                    w.starts_with(|c: char| c.is_ascii_alphabetic())
                        && w.chars()
                            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+'))
                }
            })
    };
    match ls {
        [l] if ok(l) => l.clone(),
        _ => "NOASSERTION".to_string(),
    }
}

/// The image's root package id.
pub fn root_id(sbom: &Sbom) -> String {
    format!("SPDXRef-DocumentRoot-Image-{}", spdx_id(&sbom.image.name))
}

pub fn document(sbom: &Sbom, meta: &Meta) -> Value {
    let tool = format!("Tool: kiln-{}", meta.tool_version);
    let root = root_id(sbom);
    let image_version = sbom
        .image
        .id
        .clone()
        .unwrap_or_else(|| "NOASSERTION".into());
    let mut root_pkg = json!({
        "name": sbom.image.name,
        "SPDXID": root,
        "versionInfo": image_version,
        "supplier": "NOASSERTION",
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": "NOASSERTION",
        "copyrightText": "NOASSERTION",
        "primaryPackagePurpose": "CONTAINER",
    });
    if let Some(id) = &sbom.image.id {
        let name = sbom
            .image
            .name
            .rsplit('/')
            .next()
            .unwrap_or(&sbom.image.name);
        let name = name.split([':', '@']).next().unwrap_or(name);
        root_pkg["externalRefs"] = json!([{
            "referenceCategory": "PACKAGE-MANAGER",
            "referenceType": "purl",
            "referenceLocator": format!("pkg:oci/{}@{}", crate::purl::escape_name(name), crate::purl::escape_name(id)),
        }]);
    }
    let mut packages = vec![root_pkg];
    let mut relationships = vec![json!({
        "spdxElementId": "SPDXRef-DOCUMENT",
        "relatedSpdxElement": root,
        "relationshipType": "DESCRIBES",
    })];
    for p in &sbom.packages {
        let id = format!(
            "SPDXRef-Package-{}-{}-{}",
            p.ptype.as_str(),
            spdx_id(&p.name),
            package_id(p)
        );
        let lic = license(&p.licenses);
        packages.push(json!({
            "name": p.name,
            "SPDXID": id,
            "versionInfo": p.version,
            "supplier": "NOASSERTION",
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": false,
            "sourceInfo": format!("acquired package info from {}", p.path),
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": lic,
            "copyrightText": "NOASSERTION",
            "externalRefs": [{
                "referenceCategory": "PACKAGE-MANAGER",
                "referenceType": "purl",
                "referenceLocator": p.purl,
            }],
            "annotations": [{
                "annotationDate": meta.created,
                "annotationType": "OTHER",
                "annotator": tool,
                "comment": layer_note(p),
            }],
        }));
        relationships.push(json!({
            "spdxElementId": root,
            "relatedSpdxElement": id,
            "relationshipType": "CONTAINS",
        }));
    }
    let seed = format!(
        "{}{}{}",
        sbom.image.name,
        sbom.image.id.as_deref().unwrap_or(""),
        meta.created
    );
    json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": sbom.image.name,
        "documentNamespace": format!(
            "https://spdx.org/spdxdocs/kiln-image-{}-{}",
            spdx_id(&sbom.image.name),
            uuid(&seed)
        ),
        "creationInfo": {
            "created": meta.created,
            "creators": [tool, "Organization: kiln"],
        },
        "documentDescribes": [root],
        "packages": packages,
        "relationships": relationships,
    })
}

#[cfg(test)]
mod tests {
    use super::license;

    #[test]
    fn licenses_only_as_spdx_expressions() {
        assert_eq!(license(&["MIT".into()]), "MIT");
        assert_eq!(license(&["Apache-2.0 OR MIT".into()]), "Apache-2.0 OR MIT");
        assert_eq!(license(&["ASL 2.0".into()]), "NOASSERTION");
        assert_eq!(license(&[]), "NOASSERTION");
    }
}
