// Package kube turns a kubeconfig (file and context) into Kubernetes
// clients, the way kubectl would find it: an explicit file, else
// $KUBECONFIG, else ~/.kube/config, else the in-cluster service account.
// Load gives typed and dynamic clients and a REST mapper that resolves
// kinds, with errors that name the file and the contexts it has (runbook
// steps); Config and Client are the short path (daemon, checks). It knows
// nothing of its callers.
package kube
