//! `--format` as docker reads it, for every listing command: empty or
//! `table` → the command's default table; `json` → one JSON document per
//! item (kiln's machine output, which docker also accepts); `table TEMPLATE`
//! → a Go template per item under a header row; anything else → a Go
//! template per item. Templates run on kiln-template.

use kiln_template::{tabwrite, Template, Value};

pub(crate) enum OutputFormat {
    Json,
    Template { template: Template, table: bool },
}

impl OutputFormat {
    /// Reads a `--format` value; `default_table` is the command's table
    /// template (docker's `table {{.A}}\t{{.B}}` form).
    pub(crate) fn parse(format: Option<&str>, default_table: &str) -> anyhow::Result<OutputFormat> {
        let format = match format.map(str::trim) {
            None | Some("") | Some("table") => default_table,
            Some("json") => return Ok(OutputFormat::Json),
            Some(f) => f,
        };
        let (body, table) = match format.strip_prefix("table") {
            Some(rest) => (rest, true),
            None => (format, false),
        };
        // docker's preFormat: trims spaces and reads `\t` and `\n` typed
        // literally on a command line as tab and newline.
        let body = body
            .trim_matches(' ')
            .replace("\\t", "\t")
            .replace("\\n", "\n");
        Ok(OutputFormat::Template {
            template: Template::parse(&body)?,
            table,
        })
    }

    /// The text for `items`: JSON lines, or the template once per item
    /// (each followed by a newline); tables get docker's header row and
    /// column alignment. `headers` maps each field to docker's column name.
    pub(crate) fn render(
        &self,
        items: &[Value],
        json: &[serde_json::Value],
        headers: &[(&str, &str)],
    ) -> anyhow::Result<String> {
        match self {
            OutputFormat::Json => Ok(json.iter().map(|j| format!("{j}\n")).collect()),
            OutputFormat::Template { template, table } => {
                let mut out = String::new();
                if *table {
                    let names = Value::Map(
                        headers
                            .iter()
                            .map(|(k, v)| (k.to_string(), Value::Str(v.to_string())))
                            .collect(),
                    );
                    out.push_str(&template.execute_header(&names)?);
                    out.push('\n');
                }
                for item in items {
                    out.push_str(&template.execute(item)?);
                    out.push('\n');
                }
                Ok(if *table { tabwrite(&out) } else { out })
            }
        }
    }
}

/// How a listing prints an image's creation time, with whole seconds in
/// UTC as docker does.
#[derive(Debug, Clone, Copy)]
pub(crate) enum TimeStyle {
    /// RFC 3339 (`2024-05-01T12:00:00Z`): `history`'s `CreatedAt`.
    Rfc3339,
    /// Go's `time.Time.String()` (`2024-05-01 12:00:00 +0000 UTC`):
    /// `images`' `CreatedAt`.
    Go,
}

/// A config's `created` in `style`; Go's zero time when it has none.
pub(crate) fn created_at(created: Option<&str>, style: TimeStyle) -> String {
    let secs = created
        .and_then(kiln_core::parse_rfc3339)
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs());
    let rfc3339 = match secs {
        Some(secs) => {
            kiln_core::rfc3339(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
        }
        None => "0001-01-01T00:00:00Z".into(),
    };
    match style {
        TimeStyle::Rfc3339 => rfc3339,
        TimeStyle::Go => format!(
            "{} +0000 UTC",
            rfc3339.trim_end_matches('Z').replacen('T', " ", 1)
        ),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn table_json_and_templates() {
        let rows = [Value::strings(
            "*t",
            &[("ID", "abc".into()), ("Size", "1MB".into())],
        )];
        let json = [serde_json::json!({"ID": "abc"})];
        let headers = [("ID", "IMAGE ID"), ("Size", "SIZE")];
        let render = |f: Option<&str>| {
            OutputFormat::parse(f, "table {{.ID}}\t{{.Size}}")
                .unwrap()
                .render(&rows, &json, &headers)
                .unwrap()
        };
        assert_eq!(render(None), "IMAGE ID   SIZE\nabc        1MB\n");
        assert_eq!(render(Some("table")), render(None));
        assert_eq!(render(Some("json")), "{\"ID\":\"abc\"}\n");
        assert_eq!(render(Some("{{.ID}}:{{.Size}}")), "abc:1MB\n");
        assert_eq!(
            render(Some(r"table {{.Size}}\t{{.ID}}")),
            "SIZE      IMAGE ID\n1MB       abc\n"
        );
    }

    #[test]
    fn times_like_go() {
        let t = Some("2024-05-01T12:00:00.5Z");
        assert_eq!(
            created_at(t, TimeStyle::Go),
            "2024-05-01 12:00:00 +0000 UTC"
        );
        assert_eq!(created_at(t, TimeStyle::Rfc3339), "2024-05-01T12:00:00Z");
        assert_eq!(
            created_at(None, TimeStyle::Go),
            "0001-01-01 00:00:00 +0000 UTC"
        );
        assert_eq!(
            created_at(Some("0001-01-01T00:00:00Z"), TimeStyle::Rfc3339),
            "0001-01-01T00:00:00Z"
        );
    }
}
