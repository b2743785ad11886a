// Package kube turns a kubeconfig file and a context name into Kubernetes
// clients (typed, dynamic, and a REST mapper that resolves kinds), with
// errors that name the file and the contexts it has. Runbook steps and the
// daemon share it; it knows nothing of either.
package kube
