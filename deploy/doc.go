// Package deploy holds certkeeper's deployment files — Kubernetes manifests
// (kubernetes/), a Helm chart (helm/certkeeper), a systemd unit (systemd/)
// and, at the repository root, the Dockerfile — and the tests that check
// them: the chart rendered by Helm's own engine and linter, every manifest
// decoded strictly into the Kubernetes API types, the configuration they
// carry checked by the certkeeper binary the Dockerfile builds (certkeeper
// check), the unit verified by systemd.
//
// It is a module of its own, independent of certkeeper's, so that Helm's and
// Kubernetes' dependencies stay out of it. Run its tests from this
// directory: go test ./...
package deploy
