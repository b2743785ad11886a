package qdrant_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/linkapp/linkdr/internal/ops"
	"github.com/linkapp/linkdr/internal/repo"
	"github.com/linkapp/linkdr/internal/store"
	"github.com/linkapp/linkdr/internal/store/qdrant"
	"github.com/linkapp/linkdr/internal/store/qdrant/qdranttest"
)

func seed(c *qdranttest.Cluster, name string, n int) {
	c.CreateCollection(name, 4, "Cosine")
	pts := make([]qdranttest.Point, n)
	for i := range pts {
		pts[i] = qdranttest.Point{ID: uint64(i + 1), Vector: []float32{float32(i), 0.5, 0.25, 1}, Payload: map[string]any{"user": fmt.Sprint(i)}}
	}
	c.Upsert(name, pts)
}

// runner makes a plan with one qdrant store; extra is more YAML for it.
func runner(t *testing.T, url, extra string) *ops.Runner {
	t.Helper()
	return ops.TestRunner(t, "", fmt.Sprintf("  vectors:\n    kind: qdrant\n    url: %s\n    backups: [{method: snapshot}]\n%s", url, extra))
}

func stats(t *testing.T, m *repo.Manifest) qdrant.Stats {
	t.Helper()
	var st qdrant.Stats
	if err := json.Unmarshal(m.Stats, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

func TestRoundTrip(t *testing.T) {
	ctx := context.Background()
	c := qdranttest.New(t, qdranttest.Options{APIKey: "s3cret", YellowPolls: 3})
	seed(c, "profiles", 300)
	seed(c, "messages", 50)
	keyFile := filepath.Join(t.TempDir(), "key")
	os.WriteFile(keyFile, []byte("s3cret\n"), 0o600)
	r := runner(t, c.URL(), "    api_key_file: "+keyFile+"\n")

	m, err := r.Backup(ctx, "vectors", "")
	if err != nil {
		t.Fatal(err)
	}
	st := stats(t, m)
	if len(st.Collections) != 2 || st.Collections[0].Name != "messages" || st.Collections[1].Points != 300 {
		t.Fatalf("stats: %+v", st)
	}
	if !strings.Contains(string(st.Collections[1].Config), `"distance":"Cosine"`) {
		t.Fatalf("config not recorded: %s", st.Collections[1].Config)
	}
	// The artifact is the snapshot byte for byte: its plaintext SHA-256
	// is the server's checksum.
	a, _ := m.Artifact(st.Collections[1].Snapshots[0].Artifact)
	if a.PlainSHA256 != st.Collections[1].Snapshots[0].Checksum || a.MediaType != qdrant.MediaTypeSnapshot {
		t.Fatalf("artifact %+v, snapshot %+v", a, st.Collections[1].Snapshots[0])
	}
	if left := c.Snapshots("profiles"); len(left) != 0 {
		t.Fatalf("server-side snapshots not deleted: %v", left)
	}
	rp, err := r.OpenRepo(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Verify(ctx, rp, m); err != nil {
		t.Fatal(err)
	}
	rp.Close()

	t.Run("SameNameAfterLoss", func(t *testing.T) {
		want := c.Points("profiles")
		c.DeleteCollection("profiles")
		c.DeleteCollection("messages")
		_, res, err := r.Restore(ctx, "vectors", ops.RestoreOptions{Verify: true})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Items) != 2 || res.Items[1].Checked != "300 points, status green, config params match" {
			t.Fatalf("result: %+v", res.Items)
		}
		if got := c.Points("profiles"); !reflect.DeepEqual(got, want) {
			t.Fatalf("restored %d points, want %d", len(got), len(want))
		}
	})

	t.Run("RenamedOnAnotherServer", func(t *testing.T) {
		other := qdranttest.New(t, qdranttest.Options{APIKey: "s3cret", YellowPolls: 1})
		target := strings.Replace(other.URL(), "http://", "qdrant://", 1)
		_, _, err := r.Restore(ctx, "vectors", ops.RestoreOptions{Target: target, Select: []string{"profiles"}, Rename: map[string]string{"profiles": "profiles_copy"}, Verify: true})
		if err != nil {
			t.Fatal(err)
		}
		if got := other.Points("profiles_copy"); !reflect.DeepEqual(got, c.Points("profiles")) {
			t.Fatalf("restored %d points", len(got))
		}
		if len(other.Points("messages")) != 0 {
			t.Fatal("--select restored more than asked")
		}
		var upload string
		for _, q := range other.Requests() {
			if strings.HasPrefix(q, "POST /collections/profiles_copy/snapshots/upload") {
				upload = q
			}
		}
		if upload != "POST /collections/profiles_copy/snapshots/upload?checksum="+a.PlainSHA256+"&priority=snapshot&wait=true" {
			t.Fatalf("upload request: %q", upload)
		}
	})

	t.Run("ErrTargetNotEmpty", func(t *testing.T) {
		_, _, err := r.Restore(ctx, "vectors", ops.RestoreOptions{Select: []string{"messages"}})
		if !errors.Is(err, store.ErrTargetNotEmpty) || !strings.Contains(err.Error(), `collection "messages" already exists`) {
			t.Fatalf("got %v", err)
		}
		c.Upsert("messages", []qdranttest.Point{{ID: 999, Vector: []float32{1, 1, 1, 1}}})
		if _, _, err := r.Restore(ctx, "vectors", ops.RestoreOptions{Select: []string{"messages"}, Force: true, Verify: true}); err != nil {
			t.Fatal(err)
		}
		if _, ok := c.Points("messages")[999]; ok || len(c.Points("messages")) != 50 {
			t.Fatalf("--force did not replace the collection: %d points", len(c.Points("messages")))
		}
	})

	if c.Validated() < 20 {
		t.Fatalf("only %d requests went through the OpenAPI validator", c.Validated())
	}
}

func TestErrChecksumMismatch(t *testing.T) {
	ctx := context.Background()
	c := qdranttest.New(t, qdranttest.Options{})
	seed(c, "profiles", 10)
	r := runner(t, c.URL(), "")
	c.CorruptNextDownload()
	_, err := r.Backup(ctx, "vectors", "")
	if !errors.Is(err, qdrant.ErrChecksumMismatch) || !strings.Contains(err.Error(), "the server reported") {
		t.Fatalf("corrupt download: %v", err)
	}
	rp, _ := r.OpenRepo(ctx, "")
	defer rp.Close()
	if all, _ := rp.Backups(ctx, "vectors"); len(all) != 0 {
		t.Fatalf("a backup with a bad snapshot became visible: %v", all)
	}
	if left := c.Snapshots("profiles"); len(left) != 0 {
		t.Fatalf("server-side snapshot left behind after the failure: %v", left)
	}

	// The server checks the checksum of an upload too, and says so.
	cl, _ := qdrant.NewClient(c.URL(), "")
	err = cl.UploadSnapshot(ctx, "x", "x.snapshot", bytes.NewReader([]byte("not this")), strings.Repeat("ab", 32))
	var ae *qdrant.APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusBadRequest || !strings.Contains(ae.Message, "Checksum mismatch") {
		t.Fatalf("upload with a wrong checksum: %v", err)
	}
}

func TestServerErrors(t *testing.T) {
	ctx := context.Background()
	c := qdranttest.New(t, qdranttest.Options{APIKey: "right"})
	seed(c, "profiles", 10)

	t.Run("Message", func(t *testing.T) {
		r := runner(t, c.URL(), "    api_key: right\n")
		c.FailNext(http.MethodPost, "/snapshots", http.StatusInternalServerError, "Service internal error: No space left on device (os error 28)")
		_, err := r.Backup(ctx, "vectors", "")
		if err == nil || !strings.Contains(err.Error(), "qdrant POST /collections/profiles/snapshots: 500: Service internal error: No space left on device (os error 28)") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("UnknownCollection", func(t *testing.T) {
		r := runner(t, c.URL(), "    api_key: right\n    collections: [nope]\n")
		_, err := r.Backup(ctx, "vectors", "")
		if !qdrant.IsNotFound(err) || !strings.Contains(err.Error(), "Not found: Collection `nope` doesn't exist!") || !strings.Contains(err.Error(), "stores.vectors.collections") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("WrongAPIKey", func(t *testing.T) {
		r := runner(t, c.URL(), "    api_key: wrong\n")
		_, err := r.Backup(ctx, "vectors", "")
		if err == nil || !strings.Contains(err.Error(), "403: Invalid API key or JWT") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("RestoreFailure", func(t *testing.T) {
		r := runner(t, c.URL(), "    api_key: right\n")
		if _, err := r.Backup(ctx, "vectors", ""); err != nil {
			t.Fatal(err)
		}
		c.FailNext(http.MethodPost, "/snapshots/upload", http.StatusInternalServerError, "Service internal error: failed to unpack snapshot")
		_, _, err := r.Restore(ctx, "vectors", ops.RestoreOptions{Rename: map[string]string{"profiles": "p2"}})
		if err == nil || !strings.Contains(err.Error(), "500: Service internal error: failed to unpack snapshot") {
			t.Fatalf("got %v", err)
		}
	})
}

func TestDistributed(t *testing.T) {
	ctx := context.Background()
	c := qdranttest.New(t, qdranttest.Options{Nodes: 3, YellowPolls: 2})
	seed(c, "profiles", 100)

	// Without every node in the plan, shards would be lost: refuse.
	_, err := runner(t, c.URL(), "").Backup(ctx, "vectors", "")
	if err == nil || !strings.Contains(err.Error(), "cluster of 3 peers but the plan names 1 node") {
		t.Fatalf("backup of a cluster through one node: %v", err)
	}

	r := runner(t, c.URL(), fmt.Sprintf("    nodes: [%s]\n", strings.Join(c.NodeURLs(), ", ")))
	m, err := r.Backup(ctx, "vectors", "")
	if err != nil {
		t.Fatal(err)
	}
	st := stats(t, m)
	snaps := st.Collections[0].Snapshots
	if len(snaps) != 3 || len(m.Artifacts) != 3 || st.Collections[0].Points != 100 {
		t.Fatalf("stats: %+v", st)
	}
	var total int64
	for i, s := range snaps {
		if len(s.LocalShards) != 1 || s.LocalShards[0].ShardID != uint32(i) || s.Artifact != fmt.Sprintf("profiles.node%d.snapshot", i) {
			t.Fatalf("node %d: %+v", i, s)
		}
		total += s.LocalShards[0].PointsCount
	}
	if total != 100 {
		t.Fatalf("local shards hold %d points", total)
	}
	want := c.Points("profiles")
	c.DeleteCollection("profiles")
	if _, _, err := r.Restore(ctx, "vectors", ops.RestoreOptions{Verify: true}); err != nil {
		t.Fatal(err)
	}
	if got := c.Points("profiles"); !reflect.DeepEqual(got, want) {
		t.Fatalf("restored %d points, want %d", len(got), len(want))
	}
	// A one-node target cannot take three nodes' shards.
	one := qdranttest.New(t, qdranttest.Options{})
	_, _, err = r.Restore(ctx, "vectors", ops.RestoreOptions{Target: one.URL()})
	if err == nil || !strings.Contains(err.Error(), "backed up as 3 node snapshot(s) but the target has 1 node(s)") {
		t.Fatalf("got %v", err)
	}
}

// TestValidatorCatchesViolations proves the OpenAPI check can fail: a
// wrong enum value, an undeclared parameter and a wrong multipart field.
func TestValidatorCatchesViolations(t *testing.T) {
	c := qdranttest.New(t, qdranttest.Options{CollectViolations: true})
	body := "--XX\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n\r\nhi\r\n--XX--\r\n"
	req, _ := http.NewRequest(http.MethodPost, c.URL()+"/collections/x/snapshots/upload?priority=latest&force=1", strings.NewReader(body))
	req.Header.Set("Content-Type", "multipart/form-data; boundary=XX")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	v := strings.Join(c.Violations(), "\n")
	for _, want := range []string{`parameter "priority" in query has an error`, `query parameter "force" is not declared`, `multipart field "file" is not in the document`} {
		if !strings.Contains(v, want) {
			t.Errorf("violation %q not found in:\n%s", want, v)
		}
	}
}
