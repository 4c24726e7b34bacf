//! A client for the API server: of a kubeconfig context, or of the current one (or of the
//! pod's service account, in a cluster).

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

pub struct Connection {
    pub client: Client,
    /// The namespace the context defaults to.
    pub namespace: String,
    /// How the console's header names it: the context, or the server.
    pub label: String,
}

pub async fn connect(context: Option<&str>) -> Result<Connection, String> {
    let config = match context {
        Some(context) => {
            let options = KubeConfigOptions {
                context: Some(context.to_string()),
                ..Default::default()
            };
            let kubeconfig = Kubeconfig::read().map_err(|e| format!("kubeconfig: {e}"))?;
            Config::from_custom_kubeconfig(kubeconfig, &options)
                .await
                .map_err(|e| format!("kubeconfig context {context}: {e}"))?
        }
        None => Config::infer()
            .await
            .map_err(|e| format!("no Kubernetes configuration: {e}"))?,
    };
    let label = context
        .map(String::from)
        .or_else(|| Kubeconfig::read().ok()?.current_context)
        .unwrap_or_else(|| config.cluster_url.to_string());
    let namespace = config.default_namespace.clone();
    let client = Client::try_from(config).map_err(|e| e.to_string())?;
    Ok(Connection {
        client,
        namespace,
        label,
    })
}
