use std::path::PathBuf;

use kiln_core::ErrorKind;

#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// A `-p`/`--publish` value docker would refuse (docker's words).
    #[error("invalid argument {spec:?} for \"-p, --publish\" flag: {reason}")]
    InvalidPort { spec: String, reason: String },
    /// The host port is taken: docker's message.
    #[error("driver failed programming external connectivity on endpoint {endpoint}: Bind for {addr} failed: port is already allocated")]
    PortAllocated { endpoint: String, addr: String },
    #[error("binding {addr} for a published port: {source}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("publishing ports needs root (rootless networking is not there yet): run kiln as root or drop -p/-P")]
    NeedsRoot,
    #[error(
        "no free subnet for the {bridge} bridge: every candidate overlaps a route on this host"
    )]
    NoSubnet { bridge: String },
    #[error("the {bridge} network has no free address left in {subnet}")]
    NoAddress { bridge: String, subnet: String },
    #[error("network {0} not found")]
    NoSuchNetwork(String),
    #[error("network with name {0} already exists")]
    NetworkExists(String),
    #[error("{0}")]
    InvalidNetwork(String),
    #[error("error while removing network: network {name} id {id} has active endpoints")]
    NetworkInUse { name: String, id: String },
    /// `network connect` of a container already on the network.
    #[error("endpoint with name {name} already exists in network {network}")]
    EndpointExists { name: String, network: String },
    /// `network disconnect` of a container not on the network.
    #[error("container {id} is not connected to the network {network}")]
    NotConnected { id: String, network: String },
    #[error("{program} {args}: {message}")]
    Command {
        program: &'static str,
        args: String,
        message: String,
    },
    /// A netlink request the kernel refused (`what` says which, as the
    /// `ip` command doing the same would be written).
    #[error("{what}: {source}")]
    Netlink {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not a network state file kiln can read: {source}", path.display())]
    State {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

impl NetworkError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            NetworkError::InvalidPort { .. } | NetworkError::InvalidNetwork(_) => {
                ErrorKind::InvalidInput
            }
            NetworkError::NoSuchNetwork(_) => ErrorKind::NotFound,
            NetworkError::NetworkExists(_) => ErrorKind::AlreadyExists,
            NetworkError::NetworkInUse { .. } => ErrorKind::Conflict,
            NetworkError::EndpointExists { .. } => ErrorKind::AlreadyExists,
            NetworkError::NotConnected { .. } => ErrorKind::Conflict,
            NetworkError::PortAllocated { .. } => ErrorKind::Conflict,
            NetworkError::NeedsRoot => ErrorKind::Unsupported,
            NetworkError::NoSubnet { .. } | NetworkError::NoAddress { .. } => ErrorKind::Conflict,
            NetworkError::Bind { .. }
            | NetworkError::Command { .. }
            | NetworkError::Netlink { .. }
            | NetworkError::Io { .. }
            | NetworkError::State { .. } => ErrorKind::Io,
        }
    }
}

pub type Result<T, E = NetworkError> = std::result::Result<T, E>;

pub(crate) fn io(
    action: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(std::io::Error) -> NetworkError {
    let path = path.into();
    move |source| NetworkError::Io {
        action,
        path,
        source,
    }
}
