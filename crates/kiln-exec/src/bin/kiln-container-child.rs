//! The builtin runtime's child process on its own, for this crate's tests
//! (the kiln binary has the same entry point as a hidden subcommand).

fn main() {
    let args: Vec<String> = std::env::args().skip(2).collect();
    std::process::exit(kiln_exec::run_builtin_child(&args));
}
