//! `.dockerignore` decisions for a 100,000-file context.
//! Run: `cargo bench -p kiln-dockerfile --bench ignore`.

use kiln_dockerfile::ignore::Matcher;

fn main() {
    divan::main();
}

const DOCKERIGNORE: &str = "\
# typical project ignore file
.git
**/node_modules
**/*.log
target/
dist
*.tmp
docs/**/*.md
!docs/README.md
**/__pycache__
.env*
coverage/
";

fn paths() -> Vec<String> {
    let mut out = Vec::with_capacity(100_000);
    let dirs = [
        "src",
        "docs/guide",
        "node_modules/pkg/lib",
        "target/release",
        "app/__pycache__",
        "tests/data",
    ];
    let exts = ["rs", "md", "js", "log", "py", "tmp"];
    for i in 0..100_000 {
        out.push(format!(
            "{}/sub{}/file{i}.{}",
            dirs[i % dirs.len()],
            i % 97,
            exts[i % exts.len()]
        ));
    }
    out
}

#[divan::bench]
fn excludes_100k_paths(bencher: divan::Bencher) {
    let m = Matcher::parse(DOCKERIGNORE).expect("valid");
    let paths = paths();
    bencher.bench(|| {
        paths
            .iter()
            .filter(|p| m.excludes(divan::black_box(p)))
            .count()
    });
}
