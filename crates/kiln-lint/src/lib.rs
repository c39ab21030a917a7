//! Dockerfile lint: what `kiln lint` and `kiln build --check` report, and
//! the warnings `kiln build` prints before it builds.
//!
//! Three families of rules run over one parse by kiln's own Dockerfile
//! frontend ([`kiln_dockerfile`]):
//!
//! - [`buildkit`]: every rule of BuildKit's `docker build --check`, with
//!   BuildKit's names, messages, URLs and trigger conditions, governed by
//!   the `# check=skip=…;error=true` directive ([`check::CheckConfig`]);
//! - [`hadolint`]: hadolint's best-practice rules people rely on (DL3002,
//!   DL3006, DL3007, DL3009, DL3015, DL3020, DL3025, DL3064, DL4006), with
//!   hadolint's trigger conditions and DL codes;
//! - kiln's own: [`waste`] (a file created in one layer and deleted in a
//!   later one) and [`pinning`] (unpinned base images in a Dockerfile that
//!   asks for reproducibility).
//!
//! [`lint`] gives a [`Report`]; [`output`] prints it as docker's `--check`
//! text, BuildKit's lint JSON or SARIF 2.1.0. Rules that need a base
//! image's config ask a [`BaseImages`] (the store, in `kiln build`); no
//! I/O happens here.

pub mod buildkit;
pub mod check;
mod engine;
pub mod hadolint;
pub mod output;
pub mod pinning;
pub mod report;
pub mod rules;
pub mod shell;
pub mod waste;

pub use engine::{lint, BaseImage, BaseImages, NoBaseImages, Options};
pub use report::{BuildError, Report, Warning};
pub use rules::{Level, Origin, Rule};
