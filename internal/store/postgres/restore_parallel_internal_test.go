package postgres

import (
	"slices"
	"testing"

	"github.com/linkapp/linkdr/internal/store/postgres/pgarchive"
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

func TestOtherData(t *testing.T) {
	toc := []pgarchive.Entry{
		{ID: 1, Desc: "TABLE", Section: pgarchive.SectionPreData, Tag: "t"},
		{ID: 2, Desc: "COMMENT", Section: 1, Tag: "TABLE t"}, // no section: pre-data here
		{ID: 3, Desc: "TABLE DATA", Section: pgarchive.SectionData, Tag: "t"},
		{ID: 4, Desc: "SEQUENCE SET", Section: pgarchive.SectionData, Tag: "s"},
		{ID: 5, Desc: "COMMENT", Section: 1, Tag: "among data"}, // data, by position
		{ID: 6, Desc: "INDEX", Section: pgarchive.SectionPostData, Tag: "i"},
		{ID: 7, Desc: "ACL", Section: 1, Tag: "TABLE t"},
	}
	want := []string{"4; SEQUENCE SET s", "5; COMMENT among data"}
	if got := otherData(toc); !slices.Equal(got, want) {
		t.Fatalf("otherData = %q, want %q", got, want)
	}
}
