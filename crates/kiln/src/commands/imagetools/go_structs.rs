//! buildx runs `imagetools inspect --format` templates on Go structs of
//! `ocispecs` types: `{{json .Manifest}}` writes their fields in struct
//! order, not sorted, and leaves out the `omitempty` ones that are empty.
//! kiln holds the same documents as JSON; this gives each object the field
//! order of the Go type it stands for, so `json` writes what buildx writes.
//! (Fields are found by their Go names through
//! [`kiln_template::Template::json_tag_fields`].)

use kiln_template::Value;

/// The `ocispecs` (or buildx) type a JSON object stands for.
#[derive(Clone, Copy)]
pub(super) enum Shape {
    /// buildx's anonymous struct for an index: the index with its digest
    /// and size.
    Index,
    Descriptor,
    Platform,
    Image,
    ImageConfig,
    RootFs,
    History,
    /// A Go map (`annotations`, `Labels`, and `image` by platform when its
    /// values are images): keys sorted, a missing key is `<no value>`.
    MapOf(&'static Shape),
    /// Anything else: as JSON.
    Plain,
}

impl Shape {
    /// The Go type's fields as JSON tags, in declaration order (embedded
    /// `Platform` fields inline in `Image`, as Go marshals them).
    fn fields(self) -> &'static [&'static str] {
        match self {
            Shape::Index => &[
                "schemaVersion",
                "mediaType",
                "digest",
                "size",
                "manifests",
                "annotations",
            ],
            Shape::Descriptor => &[
                "mediaType",
                "digest",
                "size",
                "urls",
                "annotations",
                "data",
                "platform",
                "artifactType",
            ],
            Shape::Platform => &["architecture", "os", "os.version", "os.features", "variant"],
            Shape::Image => &[
                "created",
                "author",
                "architecture",
                "os",
                "os.version",
                "os.features",
                "variant",
                "config",
                "rootfs",
                "history",
            ],
            Shape::ImageConfig => &[
                "User",
                "ExposedPorts",
                "Env",
                "Entrypoint",
                "Cmd",
                "Volumes",
                "WorkingDir",
                "Labels",
                "StopSignal",
                "ArgsEscaped",
            ],
            Shape::RootFs => &["type", "diff_ids"],
            Shape::History => &["created", "created_by", "author", "comment", "empty_layer"],
            Shape::MapOf(_) | Shape::Plain => &[],
        }
    }

    /// Fields tagged `omitempty` in the Go type.
    fn omit_empty(self) -> &'static [&'static str] {
        match self {
            Shape::Index => &["mediaType", "annotations"],
            Shape::Descriptor => &[
                "mediaType",
                "urls",
                "annotations",
                "data",
                "platform",
                "artifactType",
            ],
            Shape::Platform => &["os.version", "os.features", "variant"],
            Shape::Image => &[
                "created",
                "author",
                "os.version",
                "os.features",
                "variant",
                "config",
                "history",
            ],
            Shape::ImageConfig => Shape::ImageConfig.fields(),
            Shape::History => Shape::History.fields(),
            _ => &[],
        }
    }

    fn child(self, key: &str) -> Shape {
        match (self, key) {
            (Shape::Index, "manifests") => Shape::Descriptor,
            (Shape::Descriptor, "platform") => Shape::Platform,
            (Shape::Image, "config") => Shape::ImageConfig,
            (Shape::Image, "rootfs") => Shape::RootFs,
            (Shape::Image, "history") => Shape::History,
            (Shape::MapOf(inner), _) => *inner,
            (_, "annotations" | "Labels" | "ExposedPorts" | "Volumes") => {
                Shape::MapOf(&Shape::Plain)
            }
            _ => Shape::Plain,
        }
    }

    fn type_name(self) -> &'static str {
        match self {
            Shape::Index => "struct",
            Shape::Descriptor => "v1.Descriptor",
            Shape::Platform => "v1.Platform",
            Shape::Image => "v1.Image",
            Shape::ImageConfig => "v1.ImageConfig",
            Shape::RootFs => "v1.RootFS",
            Shape::History => "v1.History",
            Shape::MapOf(_) | Shape::Plain => "map",
        }
    }
}

/// `v` as template data standing for a Go value of `shape`.
pub(super) fn go_value(v: &serde_json::Value, shape: Shape) -> Value {
    use serde_json::Value as J;
    match (v, shape) {
        (J::Array(items), _) => Value::List(items.iter().map(|i| go_value(i, shape)).collect()),
        (J::Object(o), Shape::MapOf(_)) => Value::Map(
            o.iter()
                .map(|(k, v)| (k.clone(), go_value(v, shape.child(k))))
                .collect(),
        ),
        (J::Object(o), Shape::Plain) => Value::Object(
            o.iter()
                .map(|(k, v)| (k.clone(), go_value(v, Shape::Plain)))
                .collect(),
        ),
        (J::Object(o), _) => {
            let order = shape.fields();
            let rank = |k: &str| order.iter().position(|f| *f == k).unwrap_or(order.len());
            let mut fields: Vec<(String, Value)> = o
                .iter()
                .map(|(k, v)| (k.clone(), go_value(v, shape.child(k))))
                .collect();
            fields.sort_by(|a, b| (rank(&a.0), &a.0).cmp(&(rank(&b.0), &b.0)));
            Value::typed(shape.type_name(), fields, shape.omit_empty())
        }
        _ => Value::from_json(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_take_their_go_types_field_order() {
        let index = serde_json::json!({
            "size": 10, "digest": "sha256:ab", "schemaVersion": 2,
            "manifests": [{"size": 1, "platform": {"variant": "v8", "os": "linux", "architecture": "arm64"},
                           "digest": "sha256:cd", "mediaType": "m"}],
            "mediaType": "application/vnd.oci.image.index.v1+json"
        });
        let v = go_value(&index, Shape::Index);
        assert_eq!(
            v.to_json(),
            r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","digest":"sha256:ab","size":10,"manifests":[{"mediaType":"m","digest":"sha256:cd","size":1,"platform":{"architecture":"arm64","os":"linux","variant":"v8"}}]}"#
        );
    }
}
