//! WORKDIR: sets the working directory and creates what is missing of
//! it, owned by the stage's USER as BuildKit does (so `USER 1000` then
//! `WORKDIR /w` gives 1000 a directory it can write to).

use kiln_dockerfile::config::{ConfigEdit, Frontend};
use kiln_dockerfile::Command;
use kiln_exec::resolve_user;

use super::{LayerPlan, Step};
use crate::cache::workdir_key;
use crate::engine::Engine;
use crate::error::{io, Result};
use crate::state::StageState;

impl Engine<'_> {
    pub(crate) fn workdir_step(
        &self,
        step: &Step<'_>,
        state: &mut StageState,
        w: &str,
    ) -> Result<()> {
        // The config and the history line get docker's WORKDIR rule from
        // the one config editor (an absolute path kept as written); the
        // directories made are the cleaned path.
        let mut edit = ConfigEdit::new(Frontend::BuildKit);
        let env = state.env();
        state.edit_config(|cfg| edit.apply(cfg, &Command::Workdir(w.to_string()), &env));
        let dir = state.config["config"]["WorkingDir"]
            .as_str()
            .unwrap_or("/")
            .to_string();
        let made = state.working_dir();
        let user = state.user();
        let plan = LayerPlan {
            key: workdir_key(&state.key, &dir, &user),
            history: format!("WORKDIR {dir}"),
            mountpoints: &[],
            input_key: None,
        };
        let epoch = self.epoch;
        self.layer_step(state, step, plan, |root, _snap| {
            let owner = resolve_user(&user, root)?;
            let mut tar = tar::Builder::new(Vec::new());
            let mut path = String::new();
            for part in made.split('/').filter(|p| !p.is_empty()) {
                if !path.is_empty() {
                    path.push('/');
                }
                path.push_str(part);
                if crate::paths::resolve_in_root(root, &path)
                    .symlink_metadata()
                    .is_ok()
                {
                    continue;
                }
                let mut h = tar::Header::new_gnu();
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_uid(owner.uid.into());
                h.set_gid(owner.gid.into());
                h.set_mtime(epoch);
                h.set_size(0);
                tar.append_data(&mut h, format!("{path}/"), std::io::empty())
                    .map_err(io("make", &dir))?;
            }
            let bytes = tar.into_inner().map_err(io("make", &dir))?;
            kiln_layer::apply(
                &bytes[..],
                root,
                &kiln_layer::ApplyOptions::for_current_user(),
            )?;
            Ok(())
        })
    }
}
