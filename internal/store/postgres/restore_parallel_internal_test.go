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
		{ID: 5, Desc: "COMMENT", Section: 1, Tag: "among\n9 data"}, // data, by position; a name with a line break
		{ID: 6, Desc: "INDEX", Section: pgarchive.SectionPostData, Tag: "i"},
		{ID: 7, Desc: "ACL", Section: 1, Tag: "TABLE t"},
	}
	if got, want := useList(otherData(toc)), "4; SEQUENCE SET s\n5; COMMENT among 9 data\n"; got != want {
		t.Fatalf("otherData = %q, want %q", got, want)
	}
}

func TestTablePostData(t *testing.T) {
	pre, data, post := pgarchive.SectionPreData, pgarchive.SectionData, pgarchive.SectionPostData
	toc := []pgarchive.Entry{
		{ID: 1, Desc: "SCHEMA", Section: pre, Tag: "chat"},
		{ID: 2, Desc: "FUNCTION", Section: pre, Tag: "lower_email(text)"},
		{ID: 3, Desc: "TABLE", Section: pre, Tag: "users", Deps: []int{1}},
		{ID: 4, Desc: "TABLE", Section: pre, Tag: "messages", Deps: []int{1}},
		{ID: 5, Desc: "TABLE", Section: pre, Tag: "parent"}, // partitioned: no data of its own
		{ID: 10, Desc: "TABLE DATA", Section: data, Tag: "users", Deps: []int{3}},
		{ID: 11, Desc: "TABLE DATA", Section: data, Tag: "messages", Deps: []int{4}},
		{ID: 20, Desc: "CONSTRAINT", Section: post, Tag: "users users_pkey", Deps: []int{3}},
		{ID: 21, Desc: "INDEX", Section: post, Tag: "users_email_idx", Deps: []int{3, 2, 3}}, // an expression index
		{ID: 22, Desc: "INDEX", Section: post, Tag: "messages_sender_idx", Deps: []int{4}},
		{ID: 23, Desc: "FK CONSTRAINT", Section: post, Tag: "messages messages_sender_fkey", Deps: []int{4, 3, 20}},
		{ID: 24, Desc: "INDEX", Section: post, Tag: "parent_idx", Deps: []int{5}},
		{ID: 25, Desc: "INDEX", Section: post, Tag: "odd", Deps: []int{3, 4}},            // two tables
		{ID: 26, Desc: "CONSTRAINT", Section: post, Tag: "on_index", Deps: []int{3, 21}}, // another post-data entry
		{ID: 27, Desc: "TRIGGER", Section: post, Tag: "users audit", Deps: []int{3, 99}}, // unknown dependency
		{ID: 28, Desc: "COMMENT", Section: 1, Tag: "INDEX users_email_idx", Deps: []int{21}},
		{ID: 29, Desc: "PUBLICATION TABLE", Section: post, Tag: "pub users", Deps: []int{3}},
	}
	got := map[int][]int{}
	for data, entries := range tablePostData(toc) {
		for _, e := range entries {
			got[data] = append(got[data], e.ID)
		}
	}
	want := map[int][]int{10: {20, 21}, 11: {22}}
	if len(got) != len(want) || !slices.Equal(got[10], want[10]) || !slices.Equal(got[11], want[11]) {
		t.Fatalf("tablePostData = %v, want %v", got, want)
	}
	rest := postDataExcept(toc, map[int]bool{20: true, 21: true, 22: true})
	var ids []int
	for _, e := range rest {
		ids = append(ids, e.ID)
	}
	if want := []int{23, 24, 25, 26, 27, 28, 29}; !slices.Equal(ids, want) {
		t.Fatalf("postDataExcept = %v, want %v", ids, want)
	}
}
