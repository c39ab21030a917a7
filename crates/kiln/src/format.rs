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

/// Go's `time.Time.String()` of a UTC time with whole seconds, as docker's
/// `CreatedAt` of `images` shows it: `2024-05-01 12:00:00 +0000 UTC`.
pub(crate) fn go_time(created: Option<&str>) -> String {
    let Some(t) = created.and_then(kiln_core::parse_rfc3339) else {
        return "0001-01-01 00:00:00 +0000 UTC".into();
    };
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let whole = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
    let s = kiln_core::rfc3339(whole);
    format!(
        "{} +0000 UTC",
        s.trim_end_matches('Z').replacen('T', " ", 1)
    )
}

/// RFC 3339 in UTC with whole seconds, as docker's history `CreatedAt`.
pub(crate) fn rfc3339_secs(created: Option<&str>) -> String {
    let Some(t) = created.and_then(kiln_core::parse_rfc3339) else {
        return "0001-01-01T00:00:00Z".into();
    };
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    kiln_core::rfc3339(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
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
        assert_eq!(
            go_time(Some("2024-05-01T12:00:00.5Z")),
            "2024-05-01 12:00:00 +0000 UTC"
        );
        assert_eq!(
            rfc3339_secs(Some("2024-05-01T12:00:00.5Z")),
            "2024-05-01T12:00:00Z"
        );
    }
}
