//! `kiln top CONTAINER [ps OPTIONS]`: the container's processes, as the
//! host's `ps` shows them (docker's default `-ef` columns).

use std::process::ExitCode;

use kiln_container::ContainerError;
use kiln_store::Store;

#[derive(clap::Args)]
pub(crate) struct Args {
    /// The container (ID, prefix or name)
    container: String,
    /// Options for ps (default -ef)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    ps_options: Vec<String>,
}

/// docker's top table: Go's tabwriter with minimum width 20, padding 3.
fn table(titles: &[String], rows: &[Vec<String>]) -> String {
    let mut widths = vec![0usize; titles.len()];
    for row in std::iter::once(titles).chain(rows.iter().map(Vec::as_slice)) {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count() + 3).max(20);
        }
    }
    let mut out = String::new();
    for row in std::iter::once(titles).chain(rows.iter().map(Vec::as_slice)) {
        for (i, cell) in row.iter().enumerate() {
            out.push_str(cell);
            if i + 1 < row.len() {
                let pad = widths[i] - cell.chars().count();
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push('\n');
    }
    out
}

pub(crate) fn run(store: &Store, args: Args) -> anyhow::Result<ExitCode> {
    let engine = super::engine(store)?;
    match engine.top(&args.container, &args.ps_options) {
        Ok(top) => {
            print!("{}", table(&top.titles, &top.processes));
            Ok(ExitCode::SUCCESS)
        }
        Err(e @ ContainerError::NotRunning(_)) => {
            eprintln!("Error response from daemon: {e}");
            Ok(ExitCode::FAILURE)
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_at_least_twenty_wide() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let t = table(&s(&["UID", "PID", "CMD"]), &[s(&["root", "12", "sleep 9"])]);
        assert_eq!(
            t,
            "UID                 PID                 CMD\nroot                12                  sleep 9\n"
        );
    }
}
