//! COPY and ADD: the sources (the context, another stage or an image via
//! `--from`, URLs ADD fetches first): keyed by what they write, planned
//! without the destination; when the step runs, planned against the
//! destination as it is (the step's root before the copy) and laid onto it
//! as a tar stream through the layer engine's safe apply. The planner
//! itself is `crate::copy`.

use std::fs;
use std::io::BufReader;

use kiln_exec::resolve_user;

use super::{LayerPlan, Step};
use crate::cache::{clamped_key, copy_input_key, copy_key};
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

/// `--chown` as ids: numbers as they are, names from `root`'s
/// passwd/group.
fn chown_ids(spec: Option<&str>, root: &std::path::Path) -> Result<Option<(u32, u32)>> {
    let Some(spec) = spec else {
        return Ok(None);
    };
    let numeric = |s: &str| s.parse::<u32>().ok();
    let (u, g) = spec
        .split_once(':')
        .map_or((spec, None), |(u, g)| (u, Some(g)));
    Ok(Some(match (numeric(u), g.map(numeric)) {
        (Some(uid), None) => (uid, uid),
        (Some(uid), Some(Some(gid))) => (uid, gid),
        _ => {
            let user = resolve_user(spec, root)?;
            // docker: "a username without groupname … will use the same
            // numeric UID as the GID".
            let gid = if g.is_none() { user.uid } else { user.gid };
            (user.uid, gid)
        }
    }))
}

/// The sha256 of each file a copy from a tree writes, in plan order.
fn tree_file_digests(plan: &[copy::Planned]) -> Result<String> {
    use sha2::{Digest as _, Sha256};
    let mut out = String::new();
    for p in plan.iter().filter_map(|p| p.host_path()) {
        let mut f = fs::File::open(p).map_err(io("read", p))?;
        let mut h = Sha256::new();
        std::io::copy(&mut f, &mut h).map_err(io("read", p))?;
        out.push_str(&format!("{}\n", hex::encode(h.finalize())));
    }
    Ok(out)
}

/// How many of the most recent COPY snapshots a COPY may link files
/// from: the previous build's snapshots of the same COPYs are among them,
/// and reading their records stays a few milliseconds.
const LINK_SOURCES: usize = 8;

/// What COPY and ADD hand to the part they share.
struct CopyInput<'a> {
    files: &'a kiln_dockerfile::Files,
    /// `COPY --parents`.
    parents: bool,
    /// The `--from` source's top snapshot: `None` for the context,
    /// `Some(None)` for a stage with no layers.
    tree: Option<Option<String>>,
    /// `COPY --from`'s input key (`cache::copy_input_key`).
    input_key: Option<String>,
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
        let history = copy_history("COPY", &c.files);
        let (tree, input_key) = match &c.from {
            None => (None, None),
            Some(f) => {
                // The source's key first: a hit on the input key needs
                // none of its files (not fetched, not unpacked).
                let source = self
                    .source_state(step.stage, f)
                    .map_err(|e| step.in_step(e))?;
                let input_key = clamped_key(
                    copy_input_key(&state.key, c, &source.key, self.epoch),
                    self.clamp.then_some(self.epoch),
                );
                if !step.no_cache {
                    let known = self
                        .cache
                        .key_of_input(&input_key)
                        .or_else(|| self.remote.key_of_input(&input_key));
                    if let Some(key) = known {
                        if self.try_hit(state, step, &key, &history, Some(&input_key))? {
                            return Ok(());
                        }
                    }
                }
                let top = self
                    .ensure_snapshots(&source)
                    .map_err(|e| step.in_step(e))?;
                (Some(top), Some(input_key))
            }
        };
        let input = CopyInput {
            files: &c.files,
            parents: c.parents,
            tree,
            input_key,
            history,
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
            tree: None,
            input_key: None,
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
            tree,
            input_key,
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
        let workdir = state.working_dir();
        // The cache key: what the copy writes, planned without the
        // destination. Where files land, which directories the copy
        // creates, and whose ids `--chown` names follow from the
        // destination, and the destination from the parent key (as in
        // BuildKit, whose key is the parent's and the sources'); so the
        // key takes `--chown` as written and a cache hit mounts nothing.
        let key_attrs = Attrs {
            chown: None,
            chmod: files.chmod.clone(),
            epoch: self.epoch,
        };
        let key_plan = copy::plan(
            files, &source, &workdir, &key_attrs, parents, downloads, None,
        )?;
        let chown_line = files
            .chown
            .as_deref()
            .map_or(String::new(), |c| format!("chown {c}\n"));
        // A `--from` copy's content key is its files (the planner
        // checksums only the context's; a tree's are hashed here), not
        // the source's key, which is the input key's part: a source that
        // ran again and made the same files hits on it.
        let (from, tree_files) = match tree {
            Some(_) => ("--from", tree_file_digests(&key_plan)?),
            None => ("", String::new()),
        };
        let key = copy_key(
            &state.key,
            &history,
            from,
            &format!("{chown_line}{}{tree_files}", copy::describe(&key_plan)),
        );
        drop(key_plan);
        let dest_dir = if files.dest.starts_with('/') {
            files.dest.clone()
        } else {
            format!("{workdir}/{}", files.dest)
        };
        let plan_layer = LayerPlan {
            key,
            history,
            mountpoints: &[],
            input_key,
        };
        self.layer_step(state, step, plan_layer, |root, snap| {
            // The step's root before the copy is the destination as it is:
            // `--chown` names resolve in its passwd/group, and what exists
            // there decides where files land.
            let attrs = Attrs {
                chown: chown_ids(files.chown.as_deref(), root)?,
                chmod: files.chmod.clone(),
                epoch: self.epoch,
            };
            let plan = copy::plan(
                files,
                &source,
                &workdir,
                &attrs,
                parents,
                downloads,
                Some(root),
            )?;
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
                let bytes = copy::write_tar(&plain, Vec::new(), true)?;
                let open = |id| copy::open_local(&plain, id);
                kiln_layer::apply_local(&bytes[..], root, &opts, &open)?;
                return Ok(());
            }
            // The stream carries paths and metadata only; file contents go
            // from the sources into the root in the kernel (`apply_local`),
            // or, where a committed snapshot already holds the same file
            // from an earlier COPY, are hard-linked from it
            // (`apply_local_linked`; overlay snapshots, as root).
            let upper = opts
                .ownership
                .then(|| self.snaps.link_upper(snap))
                .flatten();
            let known = match &upper {
                // Linking is only a shortcut: a store it cannot read
                // copies as before.
                Some(_) => self
                    .snaps
                    .link_sources(snap, LINK_SOURCES)
                    .inspect_err(|e| tracing::warn!("copy: not linking: {e}"))
                    .unwrap_or_default(),
                None => Default::default(),
            };
            let (reader, writer) = std::io::pipe().map_err(io("create pipe for", root))?;
            let report = std::thread::scope(|s| {
                let plan = &plan;
                let writer_thread = s.spawn(move || copy::write_tar(plan, writer, true).map(drop));
                let open = |id| copy::open_local(plan, id);
                let stream = BufReader::with_capacity(1 << 20, reader);
                let applied = match &upper {
                    Some(upper) => {
                        let links = kiln_layer::Links {
                            upper,
                            known: &known,
                        };
                        kiln_layer::apply_local_linked(stream, root, &opts, &open, links)
                    }
                    None => kiln_layer::apply_local(stream, root, &opts, &open),
                };
                let written = writer_thread
                    .join()
                    .unwrap_or_else(|_| Err(BuildError::Internal("copy writer panicked".into())));
                written?;
                Ok::<_, BuildError>(applied?)
            })?;
            if upper.is_some() {
                tracing::debug!(
                    linked = report.linked,
                    written = report.written.len(),
                    "copy"
                );
                if let Err(e) = self.snaps.record_copied(snap, &report.written) {
                    tracing::warn!("copy: later copies will not link from this one: {e}");
                }
            }
            Ok(())
        })
    }
}
