//! The rule table: every rule kiln checks, with its name, description,
//! documentation URL, default level and where it comes from. BuildKit's
//! rules keep BuildKit's names, descriptions and URLs (so `# check=skip=`
//! lines written for `docker build --check` work unchanged); hadolint's
//! keep their DL code as the name.

use serde::Serialize;

/// How serious a finding is: hadolint's levels, most serious first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Error,
    Warning,
    Info,
    Style,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warning => "warning",
            Level::Info => "info",
            Level::Style => "style",
        }
    }
}

impl std::str::FromStr for Level {
    type Err = String;
    fn from_str(s: &str) -> Result<Level, String> {
        match s.to_ascii_lowercase().as_str() {
            "error" => Ok(Level::Error),
            "warning" => Ok(Level::Warning),
            "info" => Ok(Level::Info),
            "style" => Ok(Level::Style),
            _ => Err(format!(
                "unknown level {s:?}: use error, warning, info or style"
            )),
        }
    }
}

/// Whose rule it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// `docker build --check` (BuildKit's linter): governed by the
    /// `# check=` directive.
    BuildKit,
    /// hadolint's rule of the same DL code.
    Hadolint,
    /// kiln's own.
    Kiln,
}

#[derive(Debug, PartialEq, Eq)]
pub struct Rule {
    pub name: &'static str,
    pub description: &'static str,
    /// Documentation; empty when there is none (as for BuildKit's
    /// InvalidBaseImagePlatform).
    pub url: &'static str,
    pub level: Level,
    pub origin: Origin,
}

macro_rules! rules {
    ($($id:ident = $name:literal, $origin:ident, $level:ident, $url:expr, $desc:literal;)*) => {
        $(pub static $id: Rule = Rule {
            name: $name,
            description: $desc,
            url: $url,
            level: Level::$level,
            origin: Origin::$origin,
        };)*
        /// Every rule, in documentation order.
        pub static ALL: &[&Rule] = &[$(&$id),*];
    };
}

macro_rules! bk {
    ($slug:literal) => {
        concat!("https://docs.docker.com/go/dockerfile/rule/", $slug, "/")
    };
}

macro_rules! hl {
    ($code:literal) => {
        concat!("https://github.com/hadolint/hadolint/wiki/", $code)
    };
}

rules! {
    STAGE_NAME_CASING = "StageNameCasing", BuildKit, Warning, bk!("stage-name-casing"),
        "Stage names should be lowercase";
    FROM_AS_CASING = "FromAsCasing", BuildKit, Warning, bk!("from-as-casing"),
        "The 'as' keyword should match the case of the 'from' keyword";
    NO_EMPTY_CONTINUATION = "NoEmptyContinuation", BuildKit, Warning, bk!("no-empty-continuation"),
        "Empty continuation lines will become errors in a future release";
    CONSISTENT_INSTRUCTION_CASING = "ConsistentInstructionCasing", BuildKit, Warning, bk!("consistent-instruction-casing"),
        "All commands within the Dockerfile should use the same casing (either upper or lower)";
    DUPLICATE_STAGE_NAME = "DuplicateStageName", BuildKit, Warning, bk!("duplicate-stage-name"),
        "Stage names should be unique";
    RESERVED_STAGE_NAME = "ReservedStageName", BuildKit, Warning, bk!("reserved-stage-name"),
        "Reserved words should not be used as stage names";
    JSON_ARGS_RECOMMENDED = "JSONArgsRecommended", BuildKit, Warning, bk!("json-args-recommended"),
        "JSON arguments recommended for ENTRYPOINT/CMD to prevent unintended behavior related to OS signals";
    MAINTAINER_DEPRECATED = "MaintainerDeprecated", BuildKit, Warning, bk!("maintainer-deprecated"),
        "The MAINTAINER instruction is deprecated, use a label instead to define an image author";
    UNDEFINED_ARG_IN_FROM = "UndefinedArgInFrom", BuildKit, Warning, bk!("undefined-arg-in-from"),
        "FROM command must use declared ARGs";
    WORKDIR_RELATIVE_PATH = "WorkdirRelativePath", BuildKit, Warning, bk!("workdir-relative-path"),
        "Relative workdir without an absolute workdir declared within the build can have unexpected results if the base image changes";
    UNDEFINED_VAR = "UndefinedVar", BuildKit, Warning, bk!("undefined-var"),
        "Variables should be defined before their use";
    MULTIPLE_INSTRUCTIONS_DISALLOWED = "MultipleInstructionsDisallowed", BuildKit, Warning, bk!("multiple-instructions-disallowed"),
        "Multiple instructions of the same type should not be used in the same stage";
    LEGACY_KEY_VALUE_FORMAT = "LegacyKeyValueFormat", BuildKit, Warning, bk!("legacy-key-value-format"),
        "Legacy key/value format with whitespace separator should not be used";
    INVALID_BASE_IMAGE_PLATFORM = "InvalidBaseImagePlatform", BuildKit, Warning, "",
        "Base image platform does not match expected target platform";
    REDUNDANT_TARGET_PLATFORM = "RedundantTargetPlatform", BuildKit, Warning, bk!("redundant-target-platform"),
        "Setting platform to predefined $TARGETPLATFORM in FROM is redundant as this is the default behavior";
    SECRETS_USED_IN_ARG_OR_ENV = "SecretsUsedInArgOrEnv", BuildKit, Warning, bk!("secrets-used-in-arg-or-env"),
        "Sensitive data should not be used in the ARG or ENV commands";
    INVALID_DEFAULT_ARG_IN_FROM = "InvalidDefaultArgInFrom", BuildKit, Warning, bk!("invalid-default-arg-in-from"),
        "Default value for global ARG results in an empty or invalid base image name";
    FROM_PLATFORM_FLAG_CONST_DISALLOWED = "FromPlatformFlagConstDisallowed", BuildKit, Warning, bk!("from-platform-flag-const-disallowed"),
        "FROM --platform flag should not use a constant value";
    COPY_IGNORED_FILE = "CopyIgnoredFile", BuildKit, Warning, bk!("copy-ignored-file"),
        "Attempting to Copy file that is excluded by .dockerignore";
    EXPOSE_PROTO_CASING = "ExposeProtoCasing", BuildKit, Warning, bk!("expose-proto-casing"),
        "Protocol in EXPOSE instruction should be lowercase";
    EXPOSE_INVALID_FORMAT = "ExposeInvalidFormat", BuildKit, Warning, bk!("expose-invalid-format"),
        "IP address and host-port mapping should not be used in EXPOSE instruction. This will become an error in a future release";

    DL3002 = "DL3002", Hadolint, Warning, hl!("DL3002"), "Last USER should not be root";
    DL3006 = "DL3006", Hadolint, Warning, hl!("DL3006"), "Always tag the version of an image explicitly";
    DL3007 = "DL3007", Hadolint, Warning, hl!("DL3007"),
        "Using latest is prone to errors if the image will ever update. Pin the version explicitly to a release tag";
    DL3009 = "DL3009", Hadolint, Info, hl!("DL3009"), "Delete the apt lists (/var/lib/apt/lists) after installing something";
    DL3015 = "DL3015", Hadolint, Info, hl!("DL3015"), "Avoid additional packages by specifying `--no-install-recommends`";
    DL3020 = "DL3020", Hadolint, Error, hl!("DL3020"), "Use COPY instead of ADD for files and folders";
    DL3025 = "DL3025", Hadolint, Warning, hl!("DL3025"), "Use arguments JSON notation for CMD and ENTRYPOINT arguments";
    DL3064 = "DL3064", Hadolint, Warning, hl!("DL3064"),
        "Potentially sensitive data should not be used in the `ARG` or `ENV` commands";
    DL4006 = "DL4006", Hadolint, Warning, hl!("DL4006"),
        "Set the SHELL option -o pipefail before RUN with a pipe in it. If you are using /bin/sh in an alpine image or if your shell is symlinked to busybox then consider explicitly setting your SHELL to /bin/ash, or disable this check";

    DELETED_IN_LATER_LAYER = "DeletedInLaterLayer", Kiln, Warning, "",
        "A file or directory created in one layer and deleted in a later one still takes space in the image";
    BASE_NOT_PINNED = "BaseImageNotPinned", Kiln, Warning, "",
        "A Dockerfile that asks for a reproducible build should pin its base images by digest";
}

/// The rule of that name, if kiln has one.
pub fn by_name(name: &str) -> Option<&'static Rule> {
    ALL.iter().copied().find(|r| r.name == name)
}
