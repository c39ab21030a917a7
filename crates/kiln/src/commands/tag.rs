use std::process::ExitCode;

use kiln_store::Store;

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Existing image: name, ID or ID prefix
    source: String,
    /// New name: REPOSITORY[:TAG]
    target: String,
}

pub(crate) fn run(store: &Store, args: Args) -> anyhow::Result<ExitCode> {
    let target = super::parse_tag_name(&args.target)?;
    let (record, _) = store.resolve(&args.source)?;
    store.name_image(&record.entry, &[target])?;
    Ok(ExitCode::SUCCESS)
}
