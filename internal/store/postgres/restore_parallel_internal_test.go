package postgres

import (
	"slices"
	"testing"
)

func TestIndexEnv(t *testing.T) {
	for _, c := range []struct{ in, want []string }{
		{[]string{"A=1"}, []string{"A=1", "PGOPTIONS=-c max_parallel_maintenance_workers=0"}},
		{[]string{"PGOPTIONS=-c work_mem=1GB", "B=2"}, []string{"PGOPTIONS=-c work_mem=1GB -c max_parallel_maintenance_workers=0", "B=2"}},
		// The operator's own setting wins.
		{[]string{"PGOPTIONS=-c max_parallel_maintenance_workers=4"}, []string{"PGOPTIONS=-c max_parallel_maintenance_workers=4"}},
	} {
		in := slices.Clone(c.in)
		if got := indexEnv(in); !slices.Equal(got, c.want) {
			t.Errorf("indexEnv(%q) = %q, want %q", c.in, got, c.want)
		}
		if !slices.Equal(in, c.in) {
			t.Errorf("indexEnv changed its input: %q", in)
		}
	}
}
