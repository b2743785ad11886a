package check

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/linkapp/linkdr/internal/plan"
)

// maxBody is how much of a response body a check reads.
const maxBody = 1 << 20

func tlsConfig(r *Runner, caFile, serverName string, insecure bool) (*tls.Config, error) {
	cfg := &tls.Config{ServerName: serverName, InsecureSkipVerify: insecure}
	if caFile != "" {
		pool, err := loadPool(r.Plan.Resolve(caFile))
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

func loadPool(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("ca_file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("ca_file %s holds no PEM certificate", path)
	}
	return pool, nil
}

func probeHTTP(ctx context.Context, r *Runner, c *plan.Check) (map[string]any, error) {
	tc, err := tlsConfig(r, c.CAFile, "", c.InsecureSkipVerify)
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{TLSClientConfig: tc, Proxy: http.ProxyFromEnvironment, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	var body io.Reader
	if c.Body != "" {
		body = strings.NewReader(c.Body)
	}
	req, err := http.NewRequestWithContext(ctx, c.Method, c.URL.Reveal(), body)
	if err != nil {
		return nil, fmt.Errorf("request: %w", err)
	}
	req.Header.Set("User-Agent", "linkdr-check")
	for k, v := range c.Headers {
		req.Header.Set(k, v)
	}
	if c.Body != "" && req.Header.Get("Content-Type") == "" && json.Valid([]byte(c.Body)) {
		req.Header.Set("Content-Type", "application/json")
	}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", c.Method, c.URL, unwrapURLError(err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	latency := time.Since(start)
	if err != nil {
		return nil, fmt.Errorf("read response: %w", err)
	}
	headers := map[string]string{}
	for k, v := range resp.Header {
		headers[strings.ToLower(k)] = strings.Join(v, ", ")
	}
	vars := map[string]any{"status": resp.StatusCode, "latency": latency, "body": string(data), "headers": headers}
	var doc any
	if d := json.NewDecoder(bytes.NewReader(data)); len(bytes.TrimSpace(data)) > 0 {
		d.UseNumber()
		if d.Decode(&doc) == nil {
			vars["json"] = numbers(doc)
		}
	}
	return vars, nil
}

// numbers turns json.Number into float64 (or int when integral), so
// conditions compare JSON numbers like any other.
func numbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return int(i)
		}
		f, _ := x.Float64()
		return f
	case map[string]any:
		for k, e := range x {
			x[k] = numbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = numbers(e)
		}
	}
	return v
}

// unwrapURLError drops net/http's `Get "url": ` prefix, printed already.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
