//! COPY and ADD: the sources (the context, another stage or an image via
//! `--from`, URLs ADD fetches first), planned against the destination as
//! it is (the plan is the cache key), then laid onto the step's snapshot
//! as a tar stream through the layer engine's safe apply. The planner
//! itself is `crate::copy`.

use std::fs;
use std::io::BufReader;

use kiln_exec::resolve_user;

use super::{LayerPlan, Step};
use crate::cache::copy_key;
use crate::copy::{self, Attrs, Source};
use crate::download;
use crate::engine::Engine;
use crate::error::{io, BuildError, Result};
use crate::state::StageState;

/// BuildKit's history line for COPY/ADD: the sources and destination as
/// expanded, without the flags (`--chown`, `--chmod`, `--from`, …).
fn copy_history(verb: &str, files: &kiln_dockerfile::Files) -> String {
    let mut words = vec![verb.to_string()];
    words.extend(files.inline.iter().map(|i| format!("<<{}", i.name)));
    words.extend(files.sources.iter().cloned());
    words.push(files.dest.clone());
    format!("{} # buildkit", words.join(" "))
}

/// What COPY and ADD hand to the part they share.
struct CopyInput<'a> {
    files: &'a kiln_dockerfile::Files,
    /// `COPY --parents`.
    parents: bool,
    /// The `--from` source's cache key; empty for the context.
    source_key: String,
    /// The `--from` source's top snapshot: `None` for the context,
    /// `Some(None)` for a stage with no layers.
    tree: Option<Option<String>>,
    history: String,
    /// ADD unpacks local archives.
    extract_archives: bool,
    /// ADD's fetched URLs.
    downloads: &'a [download::Download],
}

impl Engine<'_> {
    pub(crate) fn copy_step(
        &self,
        step: &Step<'_>,
        state: &mut StageState,
        c: &kiln_dockerfile::Copy,
    ) -> Result<()> {
        let (source_key, tree) = match &c.from {
            None => (String::new(), None),
            Some(f) => {
                let (k, chain) = self.source_of(step.stage, f).map_err(|e| step.in_step(e))?;
                (k, Some(chain))
            }
        };
        let input = CopyInput {
            files: &c.files,
            parents: c.parents,
            source_key,
            tree,
            history: copy_history("COPY", &c.files),
            extract_archives: false,
            downloads: &[],
        };
        self.copy_files(step, state, input)
            .map_err(|e| step.in_step(e))
    }

    /// ADD: URLs are fetched first (their checksums and names join the
    /// plan like local files); git sources are not supported yet.
    pub(crate) fn add_step(
        &self,
        step: &Step<'_>,
        state: &mut StageState,
        a: &kiln_dockerfile::Add,
    ) -> Result<()> {
        if let Some(git) = a.files.sources.iter().find(|s| download::is_git(s)) {
            return Err(step.fail(format!(
                "{git}: ADD from git is not supported yet; clone in a RUN step or COPY a checkout"
            )));
        }
        let (urls, local): (Vec<String>, Vec<String>) = a
            .files
            .sources
            .iter()
            .cloned()
            .partition(|s| download::is_url(s));
        if a.checksum.is_some() && (urls.len() != 1 || !local.is_empty()) {
            return Err(step.fail("--checksum needs exactly one source, an http(s) URL".into()));
        }
        let fetch_dir = tempfile::Builder::new()
            .prefix("add-url")
            .tempdir_in(&self.tmp)
            .map_err(io("create", &self.tmp))?;
        let mut downloads = Vec::new();
        for (i, url) in urls.iter().enumerate() {
            let dir = fetch_dir.path().join(i.to_string());
            fs::create_dir_all(&dir).map_err(io("create", &dir))?;
            let d = download::download(url, &dir, a.checksum.as_deref(), self.epoch, self.clamp)
                .map_err(|e| step.in_step(e))?;
            downloads.push(d);
        }
        let mut files = a.files.clone();
        files.sources = local;
        let input = CopyInput {
            files: &files,
            parents: false,
            source_key: String::new(),
            tree: None,
            history: copy_history("ADD", &a.files),
            extract_archives: true,
            downloads: &downloads,
        };
        self.copy_files(step, state, input)
            .map_err(|e| step.in_step(e))
    }

    /// COPY and ADD alike once ADD has fetched its URLs: plan the writes
    /// against the destination as it is, then lay them as one tar stream.
    fn copy_files(
        &self,
        step: &Step<'_>,
        state: &mut StageState,
        input: CopyInput<'_>,
    ) -> Result<()> {
        let CopyInput {
            files,
            parents,
            source_key,
            tree,
            history,
            extract_archives,
            downloads,
        } = input;
        // The source tree (another stage or an image), mounted read-only.
        let view_dir = tempfile::Builder::new()
            .prefix("view")
            .tempdir_in(&self.tmp)
            .map_err(io("create", &self.tmp))?;
        let view = match &tree {
            Some(Some(top)) => Some(self.view(top, view_dir.path())?),
            Some(None) => None, // an empty stage
            None => None,
        };
        let empty = view_dir.path().join("empty");
        let source = match (&tree, &view) {
            (None, _) => Source::Context(&self.ctx),
            (Some(_), Some(v)) => Source::Tree(v.path()),
            (Some(_), None) => {
                fs::create_dir_all(&empty).map_err(io("create", &empty))?;
                Source::Tree(&empty)
            }
        };
        // The destination as it is before the copy (the current top
        // snapshot, read-only): chown names resolve against its
        // passwd/group, and what exists there decides where files land and
        // which directories the copy creates. The cache key needs the plan,
        // so this comes before the step runs.
        let top = self.ensure_snapshots(state)?;
        let dest_at = tempfile::Builder::new()
            .prefix("view")
            .tempdir_in(&self.tmp)
            .map_err(io("create", &self.tmp))?;
        let dest_view = match &top {
            Some(t) => Some(self.view(t, dest_at.path())?),
            None => None,
        };
        let dest_root = dest_view.as_ref().map(|v| v.path().to_path_buf());
        let chown = match &files.chown {
            None => None,
            Some(spec) => {
                let numeric = |s: &str| s.parse::<u32>().ok();
                let (u, g) = spec
                    .split_once(':')
                    .map_or((spec.as_str(), None), |(u, g)| (u, Some(g)));
                let ids = match (numeric(u), g.map(numeric)) {
                    (Some(uid), None) => (uid, uid),
                    (Some(uid), Some(Some(gid))) => (uid, gid),
                    _ => {
                        let root = dest_root
                            .clone()
                            .unwrap_or_else(|| dest_at.path().to_path_buf());
                        let user = resolve_user(spec, &root)?;
                        // docker: "a username without groupname … will use
                        // the same numeric UID as the GID".
                        let gid = if g.is_none() { user.uid } else { user.gid };
                        (user.uid, gid)
                    }
                };
                Some(ids)
            }
        };
        let attrs = Attrs {
            chown,
            chmod: files.chmod.clone(),
            epoch: self.epoch,
        };
        let workdir = state.working_dir();
        let plan = copy::plan(
            files,
            &source,
            &workdir,
            &attrs,
            parents,
            downloads,
            dest_root.as_deref(),
        )?;
        drop(dest_view);
        let key = copy_key(&state.key, &history, &source_key, &copy::describe(&plan));
        let dest_dir = if files.dest.starts_with('/') {
            files.dest.clone()
        } else {
            format!("{workdir}/{}", files.dest)
        };
        let plan_layer = LayerPlan {
            key,
            history,
            mountpoints: &[],
        };
        self.layer_step(state, step, plan_layer, |root| {
            let opts = kiln_layer::ApplyOptions::for_current_user();
            // ADD of a local archive: its contents, not the file.
            if extract_archives {
                let (archives, plain): (Vec<_>, Vec<_>) =
                    plan.iter().cloned().partition(|p| p.is_archive());
                for a in &archives {
                    // `is_archive` read the file, so it has a host path.
                    let Some(p) = a.host_path() else { continue };
                    let f = fs::File::open(p).map_err(io("open archive", p))?;
                    let tar_stream =
                        crate::archive::retarget_archive(BufReader::new(f), &dest_dir)?;
                    kiln_layer::apply(&tar_stream[..], root, &opts)?;
                }
                let bytes = copy::write_tar(&plain, Vec::new())?;
                kiln_layer::apply(&bytes[..], root, &opts)?;
                return Ok(());
            }
            let (reader, writer) = std::io::pipe().map_err(io("create pipe for", root))?;
            std::thread::scope(|s| {
                let plan = &plan;
                let writer_thread = s.spawn(move || copy::write_tar(plan, writer).map(drop));
                let applied =
                    kiln_layer::apply(BufReader::with_capacity(1 << 20, reader), root, &opts);
                let written = writer_thread
                    .join()
                    .unwrap_or_else(|_| Err(BuildError::Internal("copy writer panicked".into())));
                written?;
                applied?;
                Ok(())
            })
        })
    }
}
