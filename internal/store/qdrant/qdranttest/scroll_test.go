package qdranttest

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
)

// TestScrollPagesThroughEveryPoint reads a collection back page by page,
// as the demo does to prove a restore, on a server listening at Addr.
func TestScrollPagesThroughEveryPoint(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	c := New(t, Options{Nodes: 2, Addr: addr})
	if c.URL() != "http://"+addr {
		t.Fatalf("URL %s, want http://%s", c.URL(), addr)
	}
	c.CreateCollection("posts", 3, "Dot")
	var pts []Point
	for i := uint64(1); i <= 25; i++ {
		pts = append(pts, Point{ID: i, Vector: []float32{float32(i), 1, 2}, Payload: map[string]any{"n": fmt.Sprint(i)}})
	}
	c.Upsert("posts", pts)
	seen := map[uint64]bool{}
	var offset any
	for pages := 0; ; pages++ {
		body, _ := json.Marshal(map[string]any{"limit": 10, "offset": offset, "with_vector": true})
		resp, err := http.Post(c.URL()+"/collections/posts/points/scroll", "application/json", strings.NewReader(string(body)))
		if err != nil {
			t.Fatal(err)
		}
		var out struct {
			Result struct {
				Points []struct {
					ID      uint64            `json:"id"`
					Vector  []float32         `json:"vector"`
					Payload map[string]string `json:"payload"`
				} `json:"points"`
				Next *uint64 `json:"next_page_offset"`
			} `json:"result"`
		}
		err = json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("scroll: %d %v", resp.StatusCode, err)
		}
		for _, p := range out.Result.Points {
			if seen[p.ID] || p.Vector[0] != float32(p.ID) || p.Payload["n"] != fmt.Sprint(p.ID) {
				t.Fatalf("point %+v (seen before: %v)", p, seen[p.ID])
			}
			seen[p.ID] = true
		}
		if out.Result.Next == nil {
			if pages != 2 || len(seen) != 25 {
				t.Fatalf("%d pages, %d points", pages+1, len(seen))
			}
			break
		}
		offset = *out.Result.Next
	}
	resp, err := http.Post(c.URL()+"/collections/posts/points/scroll", "application/json", strings.NewReader(`{"filter":{"must":[]}}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("a filter: status %d, want 400 (not supported)", resp.StatusCode)
	}
	if c.Validated() == 0 {
		t.Fatal("no request went through the OpenAPI validator")
	}
}
