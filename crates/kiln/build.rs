//! Link options for the `kiln` and `kiln-serve` binaries.
//!
//! `-z pack-relative-relocs` (DT_RELR, binutils ≥ 2.38, glibc ≥ 2.36)
//! stores the position-independent executable's ~47,000 relative
//! relocations as a bitmap of a few kilobytes instead of a 1.1 MB
//! `.rela.dyn` table that the dynamic loader reads, and so keeps resident,
//! at every start: a megabyte of an idle `kiln serve` (issue 15's RSS
//! goal). The binary then needs a C library that reads DT_RELR (it
//! names the `GLIBC_ABI_DT_RELR` version; Debian 12's glibc 2.36 has it,
//! as every glibc since); GNU ld before 2.38 ignores the unknown `-z`
//! option with a warning.

fn main() {
    for bin in ["kiln", "kiln-serve"] {
        println!("cargo:rustc-link-arg-bin={bin}=-Wl,-z,pack-relative-relocs");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
