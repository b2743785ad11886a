package postgres

import (
	"os"
	"path/filepath"
	"testing"
)

func TestFindStdbuf(t *testing.T) {
	// The test machines are Debian with coreutils: stdbuf is there and
	// works, so backups there run pg_dump through it.
	if got := findStdbuf(); got == "" {
		t.Fatal("findStdbuf found no working stdbuf on PATH (coreutils installs one)")
	}
	path, args := stdbufArgs("/usr/bin/pg_dump", []string{"-Fc"})
	if filepath.Base(path) != "stdbuf" || len(args) != 3 || args[0] != "-o1M" || args[1] != "/usr/bin/pg_dump" || args[2] != "-Fc" {
		t.Fatalf("stdbufArgs = %s %q, want stdbuf -o1M /usr/bin/pg_dump -Fc", path, args)
	}

	t.Run("Missing", func(t *testing.T) {
		t.Setenv("PATH", t.TempDir())
		if got := findStdbuf(); got != "" {
			t.Fatalf("no stdbuf on PATH, found %q", got)
		}
	})
	t.Run("Broken", func(t *testing.T) {
		// What coreutils' stdbuf does when its preload library is missing.
		dir := t.TempDir()
		script := "#!/bin/sh\necho 'stdbuf: failed to find libstdbuf.so' >&2\nexit 125\n"
		if err := os.WriteFile(filepath.Join(dir, "stdbuf"), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
		t.Setenv("PATH", dir+":"+os.Getenv("PATH"))
		if got := findStdbuf(); got != "" {
			t.Fatalf("a stdbuf that fails was taken: %q", got)
		}
	})
}
