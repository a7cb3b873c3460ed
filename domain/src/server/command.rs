use super::{ServerPatch, ServerSpec};
use events::{ProjectId, SealedSecret, ServerId};

/// What can be asked of a server. Every command names the caller's project: a server of
/// another project answers `NotFound`.
#[derive(Debug, Clone)]
pub enum ServerCommand {
    Register { project_id: ProjectId, server_id: ServerId, spec: ServerSpec<SealedSecret> },
    Update { project_id: ProjectId, patch: ServerPatch<SealedSecret> },
    Delete { project_id: ProjectId },
}
