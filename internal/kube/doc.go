// Package kube turns a kubeconfig (file and context) into a client-go
// clientset, the way kubectl would find it: an explicit file, else
// $KUBECONFIG, else ~/.kube/config, else the in-cluster service account.
package kube
