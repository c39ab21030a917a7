//! `kiln generate-key-pair` and `kiln import-key-pair`: cosign's key files
//! (see `kiln_sign::keys`), and the password: `KILN_PASSWORD` (read here
//! only; `COSIGN_PASSWORD` too, so cosign scripts keep working) or a
//! prompt on the terminal, twice when a key is made, as cosign asks.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use kiln_sign::{PrivateKey, SignError};
use zeroize::Zeroizing;

#[derive(clap::Args)]
pub(crate) struct GenerateArgs {
    /// Write PREFIX.key (encrypted private key) and PREFIX.pub
    #[arg(long, default_value = "cosign", value_name = "PREFIX")]
    output_key_prefix: String,
    /// Overwrite existing key files
    #[arg(short, long)]
    force: bool,
}

#[derive(clap::Args)]
pub(crate) struct ImportArgs {
    /// A PEM private key: PKCS#8 (PRIVATE KEY) or SEC1 (EC PRIVATE KEY), ECDSA P-256
    #[arg(short, long, value_name = "FILE")]
    key: PathBuf,
    /// Write PREFIX.key (encrypted private key) and PREFIX.pub
    #[arg(long, default_value = "import-cosign", value_name = "PREFIX")]
    output_key_prefix: String,
    /// Overwrite existing key files
    #[arg(short, long)]
    force: bool,
}

pub(crate) fn generate(args: GenerateArgs) -> anyhow::Result<ExitCode> {
    let key = PrivateKey::generate();
    write_pair(&key, &args.output_key_prefix, args.force)
}

pub(crate) fn import(args: ImportArgs) -> anyhow::Result<ExitCode> {
    let what = args.key.display().to_string();
    let text = std::fs::read_to_string(&args.key).with_context(|| format!("read {what}"))?;
    // A plain PEM has no password; an encrypted cosign key asks for one.
    let key = PrivateKey::from_pem(&text, || password(false, &what), &what)?;
    write_pair(&key, &args.output_key_prefix, args.force)
}

fn write_pair(key: &PrivateKey, prefix: &str, force: bool) -> anyhow::Result<ExitCode> {
    let private = PathBuf::from(format!("{prefix}.key"));
    let public = PathBuf::from(format!("{prefix}.pub"));
    for p in [&private, &public] {
        if p.exists() && !force {
            anyhow::bail!(
                "{} exists: refusing to overwrite it (use --force, or another --output-key-prefix)",
                p.display()
            );
        }
    }
    let pass = password(true, "the new private key")?;
    write_file(&private, key.to_cosign_pem(&pass)?.as_bytes(), 0o600)?;
    eprintln!("Private key written to {}", private.display());
    write_file(&public, key.public().to_pem()?.as_bytes(), 0o644)?;
    eprintln!("Public key written to {}", public.display());
    Ok(ExitCode::SUCCESS)
}

fn write_file(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("write {}", path.display()))?;
    f.write_all(bytes)
        .with_context(|| format!("write {}", path.display()))?;
    Ok(())
}

/// Reads a private key file, asking for its password only if it is
/// encrypted.
pub(crate) fn read_private_key(path: &Path) -> anyhow::Result<PrivateKey> {
    let what = path.display().to_string();
    let text = std::fs::read_to_string(path).with_context(|| format!("read key {what}"))?;
    Ok(PrivateKey::from_pem(
        &text,
        || password(false, &what),
        &what,
    )?)
}

/// Reads a public key file.
pub(crate) fn read_public_key(path: &Path) -> anyhow::Result<kiln_sign::PublicKey> {
    let what = path.display().to_string();
    let text = std::fs::read_to_string(path).with_context(|| format!("read key {what}"))?;
    Ok(kiln_sign::PublicKey::from_pem(&text, &what)?)
}

/// The password: `KILN_PASSWORD` (or cosign's `COSIGN_PASSWORD`), else
/// asked on the terminal (twice for a new key).
fn password(new: bool, what: &str) -> kiln_sign::Result<Zeroizing<Vec<u8>>> {
    for var in ["KILN_PASSWORD", "COSIGN_PASSWORD"] {
        if let Some(v) = std::env::var_os(var) {
            use std::os::unix::ffi::OsStrExt;
            return Ok(Zeroizing::new(v.as_bytes().to_vec()));
        }
    }
    let no_tty = |e: std::io::Error| SignError::Invalid {
        what: format!("password for {what}"),
        reason: format!("no terminal to ask on ({e}): set KILN_PASSWORD"),
    };
    let first = Zeroizing::new(
        rpassword::prompt_password("Enter password for private key: ").map_err(no_tty)?,
    );
    if new {
        let again = Zeroizing::new(
            rpassword::prompt_password("Enter password for private key again: ").map_err(no_tty)?,
        );
        if *first != *again {
            return Err(SignError::Invalid {
                what: "password".into(),
                reason: "the two passwords do not match".into(),
            });
        }
    }
    Ok(Zeroizing::new(first.as_bytes().to_vec()))
}
