//! What a platform team deploys: the Helm chart (helm/switchboard) and the plain
//! Kubernetes manifests (k8s/). Both are rendered by the real tools (helm, kubectl
//! kustomize), the objects validated against the Kubernetes schemas, and the settings
//! they hand the services loaded by the real binaries. No cluster runs here: what is
//! checked is the rendered objects, not a deployment (docs/testing.md says what a
//! cluster would add).

mod chart;
mod kustomize;
mod load_job;
mod objects;
mod values_reference;

use std::time::Duration;

/// How long a tool (helm, kubectl, yamllint, kubernetes-validate) may take; each needs
/// a second or two.
const TOOL_TIME: Duration = Duration::from_secs(120);

#[tokio::test]
async fn the_repository_yaml_is_lint_clean() {
    e2e::run_tool("yamllint", &["--strict", "k8s", "helm", "docs/observability/alerts.test.yaml"], TOOL_TIME).await;
}
