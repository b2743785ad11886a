package action

import (
	"context"
	"net"
	"strings"
	"testing"
)

// TestReachableKinds covers the target URLs of every store kind: the
// restore steps of the Link plan point at Redis, Qdrant and S3 too.
func TestReachableKinds(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	live := l.Addr().String()
	d, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := d.Addr().String()
	d.Close()
	for _, tc := range []struct {
		url, err string
	}{
		{"redis://" + live, ""},
		{"redis://" + live + ",127.0.0.2:1", ""},
		{"redis://" + dead + "," + live, "does not answer"},
		{"http://" + live, ""},
		{"qdrant://" + dead, "does not answer"},
		{"s3://bucket/prefix?region=us-east-1", ""},
		{"s3://bucket/prefix?endpoint=http://" + live + "&use_path_style=true", ""},
		{"s3://bucket/prefix?endpoint=http://" + dead, "does not answer"},
		{"ftp://example.com/x", "names no port"},
		{"/var/lib/redis", "is not a server URL"},
	} {
		err := reachable(context.Background(), tc.url)
		if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("reachable(%s) = %v, want %q", tc.url, err, tc.err)
		}
	}
}
