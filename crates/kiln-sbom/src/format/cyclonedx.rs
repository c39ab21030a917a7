//! CycloneDX 1.6 JSON: the image is `metadata.component` (type
//! `container`) and depends on every package component; each component
//! has its purl, licences, syft's `syft:package:type` and
//! `syft:location:0:path` properties, and kiln's `kiln:layer`,
//! `kiln:layer:digest` and `kiln:layer:step` (the layer and Dockerfile
//! step that installed it).

use serde_json::{json, Value};

use super::{package_id, uuid, Meta};
use crate::Sbom;

pub fn document(sbom: &Sbom, meta: &Meta) -> Value {
    let root_ref = "image-root".to_string();
    let mut root = json!({
        "bom-ref": root_ref,
        "type": "container",
        "name": sbom.image.name,
    });
    if let Some(id) = &sbom.image.id {
        root["version"] = json!(id);
    }
    let mut components = Vec::new();
    let mut refs = Vec::new();
    for p in &sbom.packages {
        let r = format!("{}?package-id={}", p.purl, package_id(p));
        let mut props = vec![
            json!({"name": "syft:package:type", "value": p.ptype.as_str()}),
            json!({"name": "syft:location:0:path", "value": p.path}),
            json!({"name": "kiln:layer", "value": p.layer.to_string()}),
        ];
        if let Some(d) = &p.layer_digest {
            props.push(json!({"name": "kiln:layer:digest", "value": d}));
        }
        props.push(json!({"name": "kiln:layer:step", "value": p.step}));
        let mut c = json!({
            "bom-ref": r,
            "type": "library",
            "name": p.name,
            "version": p.version,
            "purl": p.purl,
            "properties": props,
        });
        if !p.licenses.is_empty() {
            c["licenses"] = Value::Array(
                p.licenses
                    .iter()
                    .map(|l| json!({"license": {"name": l}}))
                    .collect(),
            );
        }
        refs.push(r);
        components.push(c);
    }
    if let Some(d) = &sbom.distro {
        components.push(json!({
            "bom-ref": format!("os:{}", d.qualifier()),
            "type": "operating-system",
            "name": d.id,
            "version": d.version_id,
            "description": d.pretty_name,
        }));
    }
    let seed = format!(
        "{}{}{}",
        sbom.image.name,
        sbom.image.id.as_deref().unwrap_or(""),
        meta.created
    );
    json!({
        "$schema": "http://cyclonedx.org/schema/bom-1.6.schema.json",
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": format!("urn:uuid:{}", uuid(&seed)),
        "version": 1,
        "metadata": {
            "timestamp": meta.created,
            "tools": {"components": [{
                "type": "application",
                "author": "kiln",
                "name": "kiln",
                "version": meta.tool_version,
            }]},
            "component": root,
        },
        "components": components,
        "dependencies": [{"ref": root_ref, "dependsOn": refs}],
    })
}
