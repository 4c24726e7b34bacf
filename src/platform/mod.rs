//! Where clusters run. `local` runs them as processes on this machine; `kube` on Kubernetes.
//! What differs between the two lives here; everything else is shared.

pub mod health;
pub mod kube;
pub mod local;
pub mod psql;

use crate::api::ManifestError;

/// Choose rustls's cryptography (ring) before the first HTTP or Kubernetes client is made:
/// rustls refuses to guess when the build enables more than one provider, or none, as test
/// builds do (kube-fake-client's dependencies).
pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The outcome of `apply`, as kubectl reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Created,
    Configured,
    Unchanged,
}

impl Applied {
    pub fn as_str(self) -> &'static str {
        match self {
            Applied::Created => "created",
            Applied::Configured => "configured",
            Applied::Unchanged => "unchanged",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    #[error("postgrescluster {namespace}/{name} not found")]
    NotFound { namespace: String, name: String },

    #[error("{0}")]
    Invalid(ManifestError),

    #[error("the stored manifest {path} is invalid (edited by hand?):\n{error}")]
    StoredManifest { path: String, error: ManifestError },

    #[error("postgrescluster {namespace}/{name} is being deleted")]
    BeingDeleted { namespace: String, name: String },

    /// A write based on an older read: someone changed the manifest in between.
    #[error(
        "postgrescluster {}/{} changed since it was read (resourceVersion {expected}, now {}): nothing was written",
        current.namespace(), current.name(), current.metadata.resource_version.as_deref().unwrap_or("?")
    )]
    Conflict {
        expected: String,
        current: Box<crate::api::PostgresCluster>,
    },

    #[error("{0}")]
    Refused(String),

    #[error("{package} is not installed: {what}. Install it with `apt-get install {package}`")]
    MissingPackage { package: String, what: String },

    #[error(transparent)]
    File(#[from] local::files::FileError),

    #[error("{0}")]
    Operator(String),
}
