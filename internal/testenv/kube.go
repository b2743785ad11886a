package testenv

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"testing"
	"time"
)

// KubeInfo describes the shared Kubernetes API server (kube-apiserver v1.34 on etcd, no
// controllers and no kubelet: objects are stored, pods never run).
type KubeInfo struct {
	Server     string // https://127.0.0.1:PORT
	Token      string // bearer token of user admin in group system:masters
	CAFile     string // PEM bundle that verifies the server's self-signed certificate
	Kubeconfig string // kubeconfig file using the three above
}

// Kube returns the shared Kubernetes API server.
func Kube(t testing.TB) KubeInfo {
	t.Helper()
	return KubeInfo{
		Server:     Get(t, "LINKDR_TEST_KUBE_SERVER"),
		Token:      Get(t, "LINKDR_TEST_KUBE_TOKEN"),
		CAFile:     Get(t, "LINKDR_TEST_KUBE_CA_FILE"),
		Kubeconfig: Get(t, "LINKDR_TEST_KUBECONFIG"),
	}
}

// Kubeconfig returns the path of a kubeconfig file for the shared API server (admin token,
// context linkdr-test, namespace default).
func Kubeconfig(t testing.TB) string {
	t.Helper()
	return Get(t, "LINKDR_TEST_KUBECONFIG")
}

// KubeHTTPClient returns an HTTP client that trusts the shared API server's certificate.
// Requests still need the header "Authorization: Bearer " + Kube(t).Token.
func KubeHTTPClient(t testing.TB) *http.Client {
	t.Helper()
	info := Kube(t)
	pem, err := os.ReadFile(info.CAFile)
	if err != nil {
		t.Fatalf("testenv: read kube CA: %v: %s", err, Hint)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("testenv: no certificate in %s", info.CAFile)
	}
	return &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
	}
}

// kubeRequest sends a JSON request to the API server and decodes a JSON answer into out
// (when not nil). A status outside 2xx is an error carrying the server's message.
func kubeRequest(t testing.TB, method, path string, body, out any) (int, error) {
	t.Helper()
	info := Kube(t)
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, info.Server+path, rd)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+info.Token)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := KubeHTTPClient(t).Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode/100 != 2 {
		return resp.StatusCode, fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(data))
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s: decode: %w", method, path, err)
		}
	}
	return resp.StatusCode, nil
}

// NewNamespace creates a namespace with a unique name on the shared API server and deletes
// it when the test ends. (Without a controller manager a deleted namespace stays
// Terminating; names are unique, so that harms nobody.)
func NewNamespace(t testing.TB) string {
	t.Helper()
	name := uniqueName(t, "", '-', 63)
	ns := map[string]any{
		"apiVersion": "v1",
		"kind":       "Namespace",
		"metadata":   map[string]any{"name": name},
	}
	if _, err := kubeRequest(t, http.MethodPost, "/api/v1/namespaces", ns, nil); err != nil {
		t.Fatalf("testenv: create namespace: %v", err)
	}
	t.Cleanup(func() {
		code, err := kubeRequest(t, http.MethodDelete, "/api/v1/namespaces/"+name, nil, nil)
		if err != nil && code != http.StatusNotFound {
			t.Errorf("testenv: delete namespace: %v", err)
		}
	})
	return name
}
