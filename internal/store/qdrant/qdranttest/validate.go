package qdranttest

import (
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

//go:embed testdata/openapi.json
var openapiJSON []byte

var (
	routerOnce sync.Once
	router     routers.Router
	routerErr  error
)

// loadRouter parses the OpenAPI document once per test binary.
func loadRouter() (routers.Router, error) {
	routerOnce.Do(func() {
		doc, err := openapi3.NewLoader().LoadFromData(openapiJSON)
		if err != nil {
			routerErr = fmt.Errorf("load openapi.json: %w", err)
			return
		}
		if err := doc.Validate(context.Background()); err != nil {
			routerErr = fmt.Errorf("openapi.json is not valid: %w", err)
			return
		}
		doc.Servers = nil // match any host: the servers listen on random ports
		router, routerErr = gorillamux.NewRouter(doc)
	})
	return router, routerErr
}

// validator checks every request and response against the document.
type validator struct {
	t       TB
	collect bool
	router  routers.Router

	mu         sync.Mutex
	n          int
	violations []string
}

func newValidator(t TB, collect bool) *validator {
	r, err := loadRouter()
	if err != nil {
		t.Fatalf("qdranttest: %v", err)
	}
	return &validator{t: t, collect: collect, router: r}
}

func (v *validator) fail(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	v.mu.Lock()
	v.violations = append(v.violations, msg)
	v.mu.Unlock()
	if !v.collect {
		v.t.Errorf("qdranttest: OpenAPI violation: %s", msg)
	}
}

func (v *validator) count() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.n
}

func (v *validator) list() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]string(nil), v.violations...)
}

// wrap validates the request, lets next answer it into a recorder,
// validates the response, and only then sends it.
func (v *validator) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		what := r.Method + " " + r.URL.RequestURI()
		v.mu.Lock()
		v.n++
		v.mu.Unlock()
		route, params, err := v.router.FindRoute(r)
		if err != nil {
			v.fail("request %s: no such operation in the document: %v", what, err)
			next.ServeHTTP(w, r)
			return
		}
		in := &openapi3filter.RequestValidationInput{
			Request: r, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc},
		}
		if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
			v.fail("request %s: %v", what, err)
		}
		strictRequest(v, route, r, what)
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		out := &openapi3filter.ResponseValidationInput{
			RequestValidationInput: in, Status: rec.Code, Header: rec.Header(),
			Body:    io.NopCloser(bytes.NewReader(rec.Body.Bytes())),
			Options: &openapi3filter.Options{IncludeResponseStatus: true},
		}
		if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
			v.fail("response %d to %s: %v", rec.Code, what, err)
		}
		for k, vals := range rec.Header() {
			w.Header()[k] = vals
		}
		w.WriteHeader(rec.Code)
		w.Write(rec.Body.Bytes())
	})
}

// strictRequest adds what the document implies but kin-openapi does not
// enforce: no query parameters the operation does not declare, and a
// multipart body with exactly the declared fields.
func strictRequest(v *validator, route *routers.Route, r *http.Request, what string) {
	declared := map[string]bool{}
	for _, p := range route.PathItem.Parameters {
		declared[p.Value.Name] = true
	}
	for _, p := range route.Operation.Parameters {
		if p.Value.In == openapi3.ParameterInQuery {
			declared[p.Value.Name] = true
		}
	}
	for k := range r.URL.Query() {
		if !declared[k] {
			v.fail("request %s: query parameter %q is not declared for this operation", what, k)
		}
	}
	rb := route.Operation.RequestBody
	if rb == nil || rb.Value == nil {
		return
	}
	mt := rb.Value.Content.Get("multipart/form-data")
	if mt == nil || mt.Schema == nil || mt.Schema.Value == nil {
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		v.fail("request %s: read body: %v", what, err)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	mr, err := (&http.Request{Header: r.Header, Body: io.NopCloser(bytes.NewReader(body))}).MultipartReader()
	if err != nil {
		v.fail("request %s: not a multipart body: %v", what, err)
		return
	}
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			return
		}
		if err != nil {
			v.fail("request %s: multipart: %v", what, err)
			return
		}
		if _, ok := mt.Schema.Value.Properties[p.FormName()]; !ok {
			v.fail("request %s: multipart field %q is not in the document (fields: %v)", what, p.FormName(), keys(mt.Schema.Value.Properties))
		}
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func urlUnescape(s string) (string, error) { return url.PathUnescape(s) }
