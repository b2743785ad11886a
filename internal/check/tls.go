package check

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"time"

	"github.com/linkapp/linkdr/internal/plan"
)

// probeTLS completes a handshake without trusting the peer, then verifies
// the chain itself: an expired or untrusted certificate is an observation
// (valid=false with verify_error), not a probe error, so days_left is
// known either way.
func probeTLS(ctx context.Context, r *Runner, c *plan.Check) (map[string]any, error) {
	host, _, err := net.SplitHostPort(c.Address)
	if err != nil {
		return nil, fmt.Errorf("address %q: want host:port", c.Address)
	}
	name := c.ServerName
	if name == "" {
		name = host
	}
	var roots *x509.CertPool
	if c.CAFile != "" {
		if roots, err = loadPool(r.Plan.Resolve(c.CAFile)); err != nil {
			return nil, err
		}
	}
	start := time.Now()
	d := &tls.Dialer{Config: &tls.Config{ServerName: name, InsecureSkipVerify: true}}
	conn, err := d.DialContext(ctx, "tcp", c.Address)
	if err != nil {
		return nil, fmt.Errorf("TLS handshake with %s: %w", c.Address, err)
	}
	latency := time.Since(start)
	state := conn.(*tls.Conn).ConnectionState()
	conn.Close()
	if len(state.PeerCertificates) == 0 {
		return nil, fmt.Errorf("%s sent no certificate", c.Address)
	}
	leaf := state.PeerCertificates[0]
	inter := x509.NewCertPool()
	for _, ct := range state.PeerCertificates[1:] {
		inter.AddCert(ct)
	}
	now := r.now()
	_, verr := leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: roots, Intermediates: inter, CurrentTime: now})
	vars := map[string]any{
		"valid": verr == nil, "days_left": leaf.NotAfter.Sub(now).Hours() / 24, "expires": leaf.NotAfter.UTC(),
		"subject": leaf.Subject.String(), "issuer": leaf.Issuer.String(), "dns_names": leaf.DNSNames,
		"latency": latency, "verify_error": "",
	}
	if verr != nil {
		vars["verify_error"] = verr.Error()
		vars["error"] = verr.Error()
	}
	return vars, nil
}
