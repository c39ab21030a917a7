//! How `kiln build` shows its progress: plain lines (BuildKit's `--progress
//! plain`: `#N [stage] step`, output lines, `#N DONE 1.2s` / `#N CACHED`),
//! or on a terminal a live view: one line per running step with a spinner,
//! its elapsed time and its latest output line, left in place with its
//! time (or CACHED) when it ends.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use kiln_build::Progress;

/// Plain progress lines on stderr, BuildKit's style.
pub(crate) struct PlainProgress {
    quiet: bool,
    start: Instant,
    out: Mutex<std::io::Stderr>,
}

impl PlainProgress {
    pub(crate) fn new(quiet: bool) -> PlainProgress {
        PlainProgress {
            quiet,
            start: Instant::now(),
            out: Mutex::new(std::io::stderr()),
        }
    }
}

impl Progress for PlainProgress {
    fn step(&self, id: usize, stage: &str, text: &str) {
        if !self.quiet {
            if let Ok(mut o) = self.out.lock() {
                let _ = writeln!(o, "#{id} [{stage}] {text}");
            }
        }
    }
    fn done(&self, id: usize, cached: bool, took: Duration) {
        if !self.quiet {
            if let Ok(mut o) = self.out.lock() {
                let _ = if cached {
                    writeln!(o, "#{id} CACHED")
                } else {
                    writeln!(o, "#{id} DONE {:.1}s", took.as_secs_f64())
                };
            }
        }
    }
    fn output(&self, id: usize, line: &str) {
        if !self.quiet {
            if let Ok(mut o) = self.out.lock() {
                let _ = writeln!(o, "#{id} {:.3} {line}", self.start.elapsed().as_secs_f64());
            }
        }
    }
    fn warn(&self, message: &str) {
        if let Ok(mut o) = self.out.lock() {
            let _ = writeln!(o, "WARNING: {message}");
        }
    }
}

/// The live terminal view.
pub(crate) struct TtyProgress {
    multi: MultiProgress,
    steps: Mutex<HashMap<usize, (ProgressBar, String)>>,
}

impl TtyProgress {
    pub(crate) fn new() -> TtyProgress {
        TtyProgress {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            steps: Mutex::new(HashMap::new()),
        }
    }
}

/// The last output line, shortened to fit beside the step.
fn tail(line: &str) -> String {
    let line = line.trim_end();
    let n = line.chars().count();
    if n <= 60 {
        line.to_string()
    } else {
        let skip = n - 59;
        format!("…{}", line.chars().skip(skip).collect::<String>())
    }
}

impl Progress for TtyProgress {
    fn step(&self, id: usize, stage: &str, text: &str) {
        let bar = self.multi.add(ProgressBar::new_spinner());
        bar.set_style(
            ProgressStyle::with_template("{spinner} #{prefix} {msg} {elapsed:.dim}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_prefix(id.to_string());
        let header = format!("[{stage}] {text}");
        bar.set_message(header.clone());
        bar.enable_steady_tick(Duration::from_millis(120));
        self.steps
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, (bar, header));
    }

    fn done(&self, id: usize, cached: bool, took: Duration) {
        let Some((bar, header)) = self
            .steps
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id)
        else {
            return;
        };
        let end = if cached {
            "CACHED".to_string()
        } else {
            format!("{:.1}s", took.as_secs_f64())
        };
        bar.set_style(
            ProgressStyle::with_template("✔ #{prefix} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.finish_with_message(format!("{header} {end}"));
    }

    fn output(&self, id: usize, line: &str) {
        if let Some((bar, header)) = self
            .steps
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
        {
            bar.set_message(format!("{header}  › {}", tail(line)));
        }
    }

    fn warn(&self, message: &str) {
        let _ = self.multi.println(format!("WARNING: {message}"));
    }
}

impl Drop for TtyProgress {
    fn drop(&mut self) {
        // A failed build leaves steps running: stop their spinners.
        for (_, (bar, header)) in self.steps.lock().unwrap_or_else(|e| e.into_inner()).drain() {
            bar.abandon_with_message(format!("{header} ERROR"));
        }
    }
}
