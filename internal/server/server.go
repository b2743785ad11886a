// Package server is the HTTP face of `linkdr serve`: liveness and
// readiness probes, Prometheus metrics, a JSON API and a dashboard that
// is one server-rendered HTML page with inline SVG (no JavaScript, no
// external assets) refreshing itself. Every endpoint but /healthz,
// /readyz and (when configured) /metrics needs the bearer token.
package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/linkapp/linkdr/internal/daemon"
	"github.com/linkapp/linkdr/internal/leader"
	"github.com/linkapp/linkdr/internal/ops"
	"github.com/linkapp/linkdr/internal/repo"
	"github.com/linkapp/linkdr/internal/schedule"
)

// Backend is what the server shows and drives (a *daemon.Daemon).
type Backend interface {
	Posture() *ops.Posture
	Observe() leader.Observation
	Ready() error
	Jobs() []schedule.JobStatus
	Runs() []daemon.RunRecord
	TriggerBackup(ctx context.Context, store, method string, wait bool) (daemon.TriggerResult, error)
	Backups(ctx context.Context, repository, store string) ([]*repo.Manifest, error)
	Backup(ctx context.Context, repository, ref string) (*repo.Manifest, error)
}

var _ Backend = (*daemon.Daemon)(nil)

// Options configure the handler.
type Options struct {
	Backend  Backend
	Registry *prometheus.Registry
	// Token is required (Authorization: Bearer, or the session cookie the
	// login page sets) on every endpoint but the probes. Never empty.
	Token string
	// MetricsPublic serves /metrics without the token.
	MetricsPublic bool
	// Secure marks the session cookie Secure (HTTPS).
	Secure  bool
	Version string
	Name    string // the plan's name, for titles
	Log     *slog.Logger
	Now     func() time.Time
}

const cookieName = "linkdr_token"

type server struct {
	Options
	tokenSum [32]byte
}

// Handler builds the HTTP handler.
func Handler(o Options) http.Handler {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	s := &server{Options: o, tokenSum: sha256.Sum256([]byte(o.Token))}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", s.readyz)
	metrics := promhttp.HandlerFor(o.Registry, promhttp.HandlerOpts{Registry: o.Registry})
	if o.MetricsPublic {
		mux.Handle("GET /metrics", metrics)
	} else {
		mux.Handle("GET /metrics", s.auth(metrics, false))
	}
	mux.HandleFunc("GET /login", s.loginPage)
	mux.HandleFunc("POST /login", s.login)
	mux.Handle("GET /api/v1/status", s.auth(http.HandlerFunc(s.status), false))
	mux.Handle("GET /api/v1/backups", s.auth(http.HandlerFunc(s.backups), false))
	mux.Handle("GET /api/v1/backups/{ref...}", s.auth(http.HandlerFunc(s.backup), false))
	mux.Handle("POST /api/v1/backups", s.auth(http.HandlerFunc(s.trigger), true))
	mux.Handle("GET /{$}", s.auth(http.HandlerFunc(s.dashboard), false))
	return logRequests(o.Log, mux)
}

// auth lets a request through with the right token: in the Authorization
// header, or (for GET, from a browser) in the session cookie. A
// ?token= on a page sets the cookie and redirects to the same page
// without it, so the token does not stay in the address bar or history.
// headerOnly refuses the cookie (state-changing requests: no CSRF).
func (s *server) auth(next http.Handler, headerOnly bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && s.valid(tok) {
			next.ServeHTTP(w, r)
			return
		}
		if !headerOnly {
			if q := r.URL.Query().Get("token"); q != "" && s.valid(q) {
				s.setCookie(w, q)
				u := *r.URL
				v := u.Query()
				v.Del("token")
				u.RawQuery = v.Encode()
				http.Redirect(w, r, u.RequestURI(), http.StatusSeeOther)
				return
			}
			if c, err := r.Cookie(cookieName); err == nil && s.valid(c.Value) {
				next.ServeHTTP(w, r)
				return
			}
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="linkdr"`)
		if r.URL.Path == "/" {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.WriteHeader(http.StatusUnauthorized)
			renderLogin(w, s.Name, "")
			return
		}
		writeError(w, http.StatusUnauthorized, "missing or wrong bearer token (send Authorization: Bearer TOKEN)")
	})
}

func (s *server) valid(tok string) bool {
	sum := sha256.Sum256([]byte(tok))
	return subtle.ConstantTimeCompare(sum[:], s.tokenSum[:]) == 1
}

func (s *server) setCookie(w http.ResponseWriter, tok string) {
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: tok, Path: "/", HttpOnly: true, Secure: s.Secure,
		SameSite: http.SameSiteStrictMode, MaxAge: 12 * 3600})
}

func (s *server) loginPage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	renderLogin(w, s.Name, "")
}

func (s *server) login(w http.ResponseWriter, r *http.Request) {
	if tok := r.PostFormValue("token"); s.valid(tok) {
		s.setCookie(w, tok)
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusUnauthorized)
	renderLogin(w, s.Name, "Wrong token.")
}

func (s *server) readyz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if err := s.Backend.Ready(); err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "not ready: %v\n", err)
		return
	}
	fmt.Fprintln(w, "ready")
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.code = code
	s.ResponseWriter.WriteHeader(code)
}

func logRequests(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, code: 200}
		next.ServeHTTP(rec, r)
		if r.URL.Path == "/healthz" || r.URL.Path == "/readyz" || r.URL.Path == "/metrics" {
			return
		}
		log.Debug("http", "method", r.Method, "path", r.URL.Path, "status", rec.code, "duration", time.Since(start).Round(time.Microsecond))
	})
}

// Listen serves h on addr (TLS when certFile and keyFile are set) until
// ctx is done, then shuts down, giving open requests a few seconds.
func Listen(ctx context.Context, addr, certFile, keyFile string, h http.Handler, log *slog.Logger) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return fmt.Errorf("serve: TLS certificate: %w", err)
		}
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("serve: listen on %s: %w (hint: set serve.listen in the plan or --listen)", addr, err)
	}
	scheme := "http"
	if srv.TLSConfig != nil {
		scheme = "https"
		ln = tls.NewListener(ln, srv.TLSConfig)
	}
	log.Info("listening", "url", fmt.Sprintf("%s://%s/", scheme, ln.Addr()))
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
