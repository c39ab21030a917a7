//! The analysis as JSON: dive's `--json` export shape (`layer[]` with each
//! layer's file list, `image` with size, wasted bytes, score and the
//! inefficient files, largest first), and kiln's own richer report
//! (`--format json`: layers with digests and steps, dive's numbers, and
//! the waste by cause with the steps responsible and a fix for each).

use serde_json::{json, Value};

use crate::analysis::Analysis;
use crate::entry::FileInfo;

fn file_info(info: Option<&FileInfo>) -> Value {
    let d = FileInfo::default();
    let i = info.unwrap_or(&d);
    json!({
        "path": i.path,
        "typeFlag": i.type_flag,
        "linkName": i.link_name,
        "size": i.size,
        "fileMode": i.mode,
        "uid": i.uid,
        "gid": i.gid,
        "isDir": i.is_dir,
    })
}

/// dive's export document (`runtime/export` of dive 0.13).
pub fn dive_export(a: &Analysis) -> Value {
    let layers: Vec<Value> = a
        .layers
        .iter()
        .map(|l| {
            let files: Vec<Value> = l
                .tree
                .post_order()
                .into_iter()
                .map(|id| file_info(l.tree.nodes[id].info.as_ref()))
                .collect();
            json!({
                "index": l.index,
                "id": l.id(),
                "digestId": l.digest.as_ref().map(ToString::to_string).unwrap_or_default(),
                "sizeBytes": l.size,
                "command": l.command(),
                "fileList": files,
            })
        })
        .collect();
    let refs: Vec<Value> = a
        .efficiency
        .inefficient
        .iter()
        .map(|p| json!({"count": p.layers.len(), "sizeBytes": p.cumulative, "file": p.path}))
        .collect();
    json!({
        "layer": layers,
        "image": {
            "sizeBytes": a.size_bytes,
            "inefficientBytes": a.wasted_bytes,
            "efficiencyScore": a.efficiency.score,
            "fileReference": refs,
        }
    })
}

fn finite(f: f64) -> Value {
    if f.is_finite() {
        json!(f)
    } else {
        Value::Null
    }
}

/// kiln's report.
pub fn report(a: &Analysis) -> Value {
    let step = |i: usize| json!({"layer": i, "step": a.step(i)});
    let layers: Vec<Value> = a
        .layers
        .iter()
        .map(|l| {
            json!({
                "index": l.index,
                "digest": l.digest.as_ref().map(ToString::to_string),
                "diffId": l.diff_id,
                "createdBy": l.created_by,
                "sizeBytes": l.size,
                "entries": l.tree.entries,
            })
        })
        .collect();
    let inefficient: Vec<Value> = a
        .efficiency
        .inefficient
        .iter()
        .map(|p| {
            json!({
                "path": p.path,
                "count": p.layers.len(),
                "sizeBytes": p.cumulative,
                "layers": p.layers,
            })
        })
        .collect();
    let groups: Vec<Value> = a
        .waste
        .groups
        .iter()
        .map(|g| {
            json!({
                "cause": g.cause,
                "label": g.cause.label(),
                "path": g.path,
                "files": g.files,
                "bytes": g.bytes,
                "addedBy": step(g.added_in),
                "removedBy": g.removed_in.map(step),
                "fix": g.cause.fix(g.removed_in.is_some()),
            })
        })
        .collect();
    let by_cause: Vec<Value> = a
        .waste
        .by_cause
        .iter()
        .map(|(c, b)| json!({"cause": c, "label": c.label(), "bytes": b}))
        .collect();
    json!({
        "image": a.name,
        "configDigest": a.config_digest.as_ref().map(ToString::to_string),
        "sizeBytes": a.size_bytes,
        "userSizeBytes": a.user_size_bytes,
        "efficiency": a.efficiency.score,
        "wastedBytes": a.wasted_bytes,
        "userWastedPercent": finite(a.wasted_user_percent),
        "inefficientFiles": inefficient,
        "layers": layers,
        "waste": {
            "totalBytes": a.waste.total,
            "byCause": by_cause,
            "groups": groups,
        },
    })
}
