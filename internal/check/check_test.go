package check_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/linkapp/linkdr/internal/check"
	"github.com/linkapp/linkdr/internal/plan"
	"github.com/linkapp/linkdr/internal/testenv"
)

// loadPlan writes a plan with the given checks (and extra top-level YAML)
// and loads it.
func loadPlan(t *testing.T, body string) *plan.Plan {
	t.Helper()
	dir := t.TempDir()
	yaml := `version: 1
name: test
encryption:
  recipients: ["age1xr6u8t73dv7sccmfhau34tvcs4pnjkgyxucrgukk9wpp89zd2fzqn6v5nt"]
  identity_file: ./k
repositories:
  primary: {url: ./repo}
` + body
	path := filepath.Join(dir, "linkdr.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	p, _, err := plan.Load(path)
	if err != nil {
		t.Fatalf("%v\n%s", err, yaml)
	}
	return p
}

func run(t *testing.T, p *plan.Plan, names ...string) check.Results {
	t.Helper()
	res, err := check.Run(context.Background(), p, names)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func want(t *testing.T, r check.Result, status, msg string) {
	t.Helper()
	if r.Status != status || !strings.Contains(r.Message, msg) {
		t.Fatalf("%s: got %s %q (observed %v), want %s containing %q", r.Check, r.Status, r.Message, r.Observed, status, msg)
	}
	if r.OK != (status == check.StatusPass) {
		t.Fatalf("%s: OK=%v with status %s", r.Check, r.OK, status)
	}
}

func TestHTTP(t *testing.T) {
	fail := false
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Probe") != "linkdr" {
			http.Error(w, "missing header", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Region", "us-east-1")
		if fail {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, `{"status":"degraded","checks":{"db":"down"}}`)
			return
		}
		fmt.Fprint(w, `{"status":"ok","checks":{"db":"up"},"version":3}`)
	}))
	defer srv.Close()
	p := loadPlan(t, fmt.Sprintf(`checks:
  health:
    type: http
    url: %s/health
    headers: {X-Probe: linkdr}
    condition: status == 200 && latency < duration("5s") && json.status == "ok" && json.checks.db == "up" && json.version >= 3 && headers["x-region"] == "us-east-1"
  body: {type: http, url: "%s/", headers: {X-Probe: linkdr}, condition: 'body contains "ok"'}
  default: {type: http, url: "%s/"}
`, srv.URL, srv.URL, srv.URL))
	res := run(t, p, "health", "body")
	for _, r := range res {
		want(t, r, check.StatusPass, "")
	}
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
	fail = true
	res = run(t, p, "health")
	want(t, res[0], check.StatusFail, `json=map[checks:map[db:down] status:degraded] latency=`)
	if !strings.Contains(res[0].Message, "status=503") {
		t.Fatalf("message does not show the status: %s", res[0].Message)
	}
	// The default condition rejects a 400 (the header is missing).
	res = run(t, p, "default")
	want(t, res[0], check.StatusFail, "status=400")

	t.Run("Unreachable", func(t *testing.T) {
		port := testenv.FreePort(t)
		p := loadPlan(t, fmt.Sprintf("checks:\n  down: {type: http, url: \"http://127.0.0.1:%d/\", timeout: 2s}\n", port))
		res := run(t, p)
		want(t, res[0], check.StatusError, "connection refused")
		if err := res.Err(); err == nil || !strings.Contains(err.Error(), "down: ") {
			t.Fatalf("Err() = %v", err)
		}
	})
	t.Run("Timeout", func(t *testing.T) {
		block := make(chan struct{})
		slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-block:
			case <-r.Context().Done():
			}
		}))
		defer slow.Close()
		defer close(block)
		p := loadPlan(t, fmt.Sprintf("checks:\n  slow: {type: http, url: %q, timeout: 200ms}\n", slow.URL))
		want(t, run(t, p)[0], check.StatusError, "timed out after 200ms")
	})
}

// certs makes a CA and a server certificate for 127.0.0.1 / localhost
// valid until notAfter, and writes the CA to a file.
func certs(t *testing.T, notAfter time.Time) (tls.Certificate, string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "linkdr test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(365 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: notAfter, DNSNames: []string{"localhost"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o644); err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der, caDER}, PrivateKey: key}, caFile
}

func TestTLS(t *testing.T) {
	cert, caFile := certs(t, time.Now().Add(3*24*time.Hour))
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") }))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	defer srv.Close()
	addr := srv.Listener.Addr().String()
	p := loadPlan(t, fmt.Sprintf(`checks:
  week: {type: tls, address: %q, server_name: localhost, ca_file: %q, condition: "valid && days_left >= 7"}
  days: {type: tls, address: %q, server_name: localhost, ca_file: %q, condition: "valid && days_left > 2.9 && days_left < 3.1"}
  untrusted: {type: tls, address: %q, server_name: localhost}
  https: {type: http, url: "https://localhost:%d/", ca_file: %q, condition: 'status == 200 && body == "ok"'}
`, addr, caFile, addr, caFile, addr, srv.Listener.Addr().(*net.TCPAddr).AddrPort().Port(), caFile))
	res := run(t, p, "week", "days", "untrusted", "https")
	want(t, res[0], check.StatusFail, "valid && days_left >= 7 is false: days_left=")
	if d := res[0].Observed["days_left"].(float64); d < 2.9 || d > 3.1 {
		t.Fatalf("days_left %v, want about 3", d)
	}
	want(t, res[1], check.StatusPass, "valid=true")
	want(t, res[2], check.StatusFail, "certificate signed by unknown authority")
	want(t, res[3], check.StatusPass, "status=200")
}

func TestDNS(t *testing.T) {
	d := testenv.DNS(t)
	zone := strings.TrimSuffix(d.Zone, ".")
	p := loadPlan(t, fmt.Sprintf(`checks:
  api: {type: dns, host: api.%[1]s, server: %[2]q, condition: 'rcode == "NOERROR" && "10.0.1.10" in answers && authoritative'}
  wrong: {type: dns, host: api.%[1]s, server: %[2]q, condition: '"10.0.9.9" in answers'}
  www: {type: dns, host: www.%[1]s, record: CNAME, server: %[2]q, condition: 'answers == ["api.%[1]s."]'}
  missing: {type: dns, host: nope.%[1]s, server: %[2]q}
  nxdomain: {type: dns, host: nope.%[1]s, server: %[2]q, condition: 'rcode == "NXDOMAIN"'}
`, zone, d.Addr))
	res := run(t, p, "api", "wrong", "www", "missing", "nxdomain")
	want(t, res[0], check.StatusPass, `answers=[10.0.1.10]`)
	want(t, res[1], check.StatusFail, `answers=[10.0.1.10]`)
	want(t, res[2], check.StatusPass, "")
	want(t, res[3], check.StatusFail, `rcode="NXDOMAIN"`)
	want(t, res[4], check.StatusPass, "")
}

func TestTCP(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	closed := testenv.FreePort(t)
	p := loadPlan(t, fmt.Sprintf("checks:\n  up: {type: tcp, address: %q}\n  down: {type: tcp, address: \"127.0.0.1:%d\"}\n", l.Addr(), closed))
	res := run(t, p, "up", "down")
	want(t, res[0], check.StatusPass, "connected=true")
	want(t, res[1], check.StatusFail, "connection refused")
}

func TestChecklists(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	closed := testenv.FreePort(t)
	p := loadPlan(t, fmt.Sprintf(`checks:
  a: {type: tcp, address: %q}
  b: {type: tcp, address: "127.0.0.1:%d", required: false}
  c: {type: tcp, address: %q}
checklists:
  infra: {items: [{text: ports, checks: [a, b]}, {text: manual item}]}
  all: {include: [infra], items: [{text: again, checks: [c, a]}]}
`, l.Addr(), closed, l.Addr()))
	names, err := check.Resolve(p, []string{"all"})
	if err != nil || strings.Join(names, ",") != "a,b,c" {
		t.Fatalf("resolve: %v %v", names, err)
	}
	res := run(t, p, "all")
	if len(res) != 3 || res[1].OK || res[1].Required {
		t.Fatalf("results: %+v", res)
	}
	if err := res.Err(); err != nil {
		t.Fatalf("an optional failure failed the run: %v", err)
	}
	if len(res.Failed(false)) != 1 {
		t.Fatalf("failed: %+v", res.Failed(false))
	}
	if _, err := check.Run(context.Background(), p, []string{"nope"}); err == nil || !strings.Contains(err.Error(), `no check or checklist named "nope"`) {
		t.Fatalf("unknown name: %v", err)
	}
}
