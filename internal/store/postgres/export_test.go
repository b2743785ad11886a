package postgres

import "testing"

// SetEarlyPostData changes, for one test, the table size from which
// indexes are built as soon as the table is loaded, so that small test
// tables take that path too.
func SetEarlyPostData(t testing.TB, n int64) {
	old := earlyPostData
	earlyPostData = n
	t.Cleanup(func() { earlyPostData = old })
}
