//! `kiln-monitor`: the lean per-container monitor kiln execs into once a
//! container runs (see the `kiln-monitor` crate). Shipped beside `kiln`,
//! which looks for it in its own directory.

fn main() -> std::process::ExitCode {
    let code = kiln_monitor::run(std::env::args_os().skip(1));
    std::process::ExitCode::from(code.clamp(0, 255) as u8)
}
