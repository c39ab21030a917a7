//! docker-style random container names (`adjective_surname`), drawn from
//! short lists of kiln's own.

use crate::error::{io, Result};

const ADJECTIVES: &[&str] = &[
    "amber", "brave", "calm", "clever", "eager", "gentle", "happy", "jolly", "keen", "lively",
    "lucid", "merry", "nimble", "proud", "quiet", "quick", "sharp", "steady", "sunny", "swift",
    "tender", "vivid", "warm", "wise", "witty", "zen", "bold", "bright", "cosy", "daring",
];

const SURNAMES: &[&str] = &[
    "babbage",
    "curie",
    "darwin",
    "euler",
    "faraday",
    "gauss",
    "hopper",
    "hypatia",
    "kepler",
    "lovelace",
    "maxwell",
    "meitner",
    "newton",
    "noether",
    "pascal",
    "planck",
    "ramanujan",
    "ritchie",
    "shannon",
    "tesla",
    "thompson",
    "turing",
    "volta",
    "wozniak",
    "yalow",
    "lamarr",
    "franklin",
    "goodall",
    "hamilton",
    "johnson",
];

/// A random name; after a few clashes a number is added, as docker does.
pub(crate) fn random_name(attempt: u32) -> Result<String> {
    let mut bytes = [0u8; 4];
    let mut f = std::fs::File::open("/dev/urandom").map_err(io("open", "/dev/urandom"))?;
    std::io::Read::read_exact(&mut f, &mut bytes).map_err(io("read", "/dev/urandom"))?;
    let a = ADJECTIVES[usize::from(bytes[0]) % ADJECTIVES.len()];
    let s = SURNAMES[usize::from(bytes[1]) % SURNAMES.len()];
    Ok(if attempt > 3 {
        format!("{a}_{s}{}", u16::from_le_bytes([bytes[2], bytes[3]]) % 10)
    } else {
        format!("{a}_{s}")
    })
}
