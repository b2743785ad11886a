package testenv

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// NewMoto starts a moto server of the test's own (moto_server, the AWS API emulator that
// ships with this machine's Python) on a free port of 127.0.0.1 and stops it when the test
// ends. It returns the endpoint URL, http://127.0.0.1:PORT. Use it for AWS APIs that no
// server here implements for real, such as Route 53; any access key and region work.
func NewMoto(t testing.TB) string {
	t.Helper()
	bin := Bin(t, "moto_server")
	dir := t.TempDir()
	for attempt := 0; ; attempt++ {
		port := FreePort(t)
		endpoint := fmt.Sprintf("http://127.0.0.1:%d", port)
		logFile := filepath.Join(dir, "log")
		srv, err := startServer("moto_server "+endpoint, logFile, nil, syscall.SIGKILL, bin, "-H", "127.0.0.1", "-p", fmt.Sprint(port))
		if err != nil {
			t.Fatalf("testenv: %v", err)
		}
		t.Cleanup(func() {
			if err := srv.stop(syscall.SIGTERM, 30*time.Second); err != nil {
				t.Errorf("testenv: %v", err)
			}
		})
		err = srv.waitReady(time.Minute, func() error {
			resp, err := http.Get(endpoint + "/moto-api/")
			if err != nil {
				return err
			}
			resp.Body.Close()
			return nil
		})
		if err != nil && attempt < 3 && srv.addrInUse() {
			_ = os.Truncate(logFile, 0)
			continue
		}
		if err != nil {
			t.Fatalf("testenv: %v", err)
		}
		return endpoint
	}
}
