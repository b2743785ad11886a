// Command serve runs the qdranttest server outside a test: the
// OpenAPI-validated stand-in for Qdrant that linkdr's tests use, for
// `make demo` on machines where no Qdrant can be installed. It is not
// Qdrant. It seeds collections with deterministic points, prints its URL,
// and serves until SIGINT or SIGTERM.
//
//	go run ./internal/store/qdrant/qdranttest/serve -addr 127.0.0.1:6333 -seed posts:8:2000
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/linkapp/linkdr/internal/store/qdrant/qdranttest"
)

// process is the TB of a long-running server: an OpenAPI violation is
// logged (the demo then shows it), a fatal error ends the process.
type process struct{ cleanups []func() }

func (*process) Helper()                           {}
func (p *process) Cleanup(f func())                { p.cleanups = append(p.cleanups, f) }
func (*process) Errorf(format string, args ...any) { log.Printf(format, args...) }
func (*process) Fatalf(format string, args ...any) { log.Fatalf(format, args...) }

func main() {
	log.SetFlags(0)
	log.SetPrefix("qdranttest: ")
	addr := flag.String("addr", "127.0.0.1:6333", "host:port to listen on")
	apiKey := flag.String("api-key", "", "API key required on every request (api-key header)")
	var seeds []string
	flag.Func("seed", "create a collection with points: name:dimensions:points (repeatable)", func(s string) error {
		seeds = append(seeds, s)
		return nil
	})
	urlFile := flag.String("url-file", "", "write the server's URL to this file once it listens")
	flag.Parse()

	p := &process{}
	c := qdranttest.New(p, qdranttest.Options{Addr: *addr, APIKey: *apiKey})
	for _, s := range seeds {
		if err := seed(c, s); err != nil {
			log.Fatalf("-seed %s: %v", s, err)
		}
	}
	fmt.Printf("qdranttest %s at %s: linkdr's OpenAPI-conformant test server for Qdrant, not Qdrant\n", qdranttest.Version, c.URL())
	if *urlFile != "" {
		if err := os.WriteFile(*urlFile, []byte(c.URL()+"\n"), 0o644); err != nil {
			log.Fatal(err)
		}
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	for i := len(p.cleanups) - 1; i >= 0; i-- {
		p.cleanups[i]()
	}
}

// seed makes name:dim:n, n points whose vectors and payloads follow from
// their ids, so two runs seed the same data.
func seed(c *qdranttest.Cluster, spec string) error {
	f := strings.Split(spec, ":")
	if len(f) != 3 {
		return fmt.Errorf("want name:dimensions:points")
	}
	dim, err := strconv.Atoi(f[1])
	if err != nil || dim < 1 {
		return fmt.Errorf("dimensions %q: want a positive number", f[1])
	}
	n, err := strconv.Atoi(f[2])
	if err != nil || n < 0 {
		return fmt.Errorf("points %q: want a number", f[2])
	}
	c.CreateCollection(f[0], dim, "Cosine")
	pts := make([]qdranttest.Point, 0, 1000)
	for i := 1; i <= n; i++ {
		v := make([]float32, dim)
		for j := range v {
			v[j] = float32((i*31+j*17)%1000) / 1000
		}
		pts = append(pts, qdranttest.Point{ID: uint64(i), Vector: v, Payload: map[string]any{
			"user": fmt.Sprintf("u%d", i%5000), "lang": []string{"en", "de", "es"}[i%3], "likes": i % 97,
		}})
		if len(pts) == cap(pts) || i == n {
			c.Upsert(f[0], pts)
			pts = pts[:0]
		}
	}
	return nil
}
