package drill

import (
	"fmt"

	"github.com/linkapp/linkdr/internal/drillreport"
	"github.com/linkapp/linkdr/internal/repo"
)

// counted is one part of a store — a table, a collection, a Redis
// database, a bucket's objects — as two consecutive backups counted it.
type counted struct {
	name    string // as the report names it
	what    string // "table", "collection", …: for the missing case
	unit    string // "rows", "points", "keys", "objects"
	before  int64  // in the previous backup
	now     int64  // in this one
	present bool   // this backup has the part at all
}

// judgeShrink is the history check every kind shares: a part that held
// at least minRowsForShrink and vanished, or shrank by more than
// maxShrink, is suspicious. ok is false when the part is too small to judge.
func judgeShrink(prev, cur *repo.Manifest, c counted, maxShrink float64) (f drillreport.HistoryFinding, ok bool) {
	if c.before < minRowsForShrink {
		return f, false
	}
	f = drillreport.HistoryFinding{Name: c.name, PreviousBackup: prev.ID, PreviousRows: c.before, Rows: c.now, OK: true}
	f.Shrink = max(0, 1-float64(c.now)/float64(c.before))
	switch {
	case !c.present:
		f.OK, f.Shrink = false, 1
		f.Problem = fmt.Sprintf("%s is missing from backup %s; backup %s had %d %s", c.what, cur.ID, prev.ID, c.before, c.unit)
	case f.Shrink > maxShrink:
		f.OK = false
		f.Problem = fmt.Sprintf("%d %s in backup %s, %d in the previous backup %s: shrank %.0f%%, more than max_table_shrink %.0f%%",
			c.now, c.unit, cur.ID, c.before, prev.ID, 100*f.Shrink, 100*maxShrink)
	}
	return f, true
}
