//! Configuration errors. Every message names the setting, the value that was read, and what to write instead,
//! because the person reading it is an operator looking at a zoo.cfg, not at this code.

use std::path::PathBuf;

/// Why a zoo.cfg (or the `myid` file next to the data) was rejected.
///
/// The messages do not repeat the config file's path; a caller that loaded one should prefix it
/// (`"{path}: {error}"`), as `rzk server` does.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file itself could not be read.
    #[error("cannot read config file {path}: {source}; check the path (zkServer.sh uses conf/zoo.cfg unless given another)")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A required setting is absent.
    #[error("{key} is not set; {fix}")]
    Missing { key: String, fix: String },

    /// A setting has a value that cannot be used.
    #[error("{key}={value}: {problem}; {fix}")]
    Invalid {
        key: String,
        value: String,
        problem: String,
        fix: String,
    },

    /// Two settings that are valid alone contradict each other.
    #[error("{first} conflicts with {second}: {problem}; {fix}")]
    Conflict {
        first: String,
        second: String,
        problem: String,
        fix: String,
    },

    /// Two `server.N` lines name the same server id.
    #[error("server id {id} is defined twice (line {first_line}: {first}; line {second_line}: {second}); every server.N needs its own N, so renumber or delete one")]
    DuplicateServerId {
        id: u64,
        first: String,
        first_line: usize,
        second: String,
        second_line: usize,
    },

    /// The ensemble configuration needs `dataDir/myid` and it is absent.
    #[error("myid file {path} is missing: a member of an ensemble finds its own server.N line through it; write this server's number into it, e.g. `echo {example} > {path}` (configured ids: {ids})")]
    MyidMissing {
        path: PathBuf,
        example: u64,
        ids: String,
    },

    /// `myid` could not be read or does not hold a server number.
    #[error("myid file {path} holds {content:?}, which is not a server id (1-255); write only this server's number, e.g. `echo {example} > {path}`")]
    MyidInvalid {
        path: PathBuf,
        content: String,
        example: u64,
    },

    /// `myid` names a server that has no `server.N` line.
    #[error("myid file {path} says {id}, but there is no server.{id} line (configured ids: {ids}); fix the myid file or add server.{id}=host:quorumPort:electionPort")]
    MyidNotInServers { path: PathBuf, id: u64, ids: String },

    /// A separate config file named by the main one (`dynamicConfigFile`) could not be read.
    #[error("dynamicConfigFile={path}: cannot read it: {source}; fix the path or move the server.N lines into zoo.cfg")]
    DynamicFileRead {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl ConfigError {
    pub(crate) fn invalid(
        key: &str,
        value: &str,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        ConfigError::Invalid {
            key: key.to_string(),
            value: value.to_string(),
            problem: problem.into(),
            fix: fix.into(),
        }
    }

    pub(crate) fn missing(key: &str, fix: impl Into<String>) -> Self {
        ConfigError::Missing {
            key: key.to_string(),
            fix: fix.into(),
        }
    }
}
