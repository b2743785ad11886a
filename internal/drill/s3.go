package drill

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/linkapp/linkdr/internal/drillreport"
	"github.com/linkapp/linkdr/internal/ops"
	"github.com/linkapp/linkdr/internal/repo"
	"github.com/linkapp/linkdr/internal/store"
	"github.com/linkapp/linkdr/internal/store/s3bucket"
)

func init() { RegisterKind("s3", s3Kind{}) }

// CanaryPrefix is where canary objects go, below an s3 store's prefix.
const CanaryPrefix = "linkdr-canary/"

type s3Kind struct{}

func s3Location(env Env) (s3bucket.Location, *s3.Client, error) {
	loc, err := s3bucket.ParseLocation(env.Store.URL.Reveal())
	if err != nil {
		return loc, nil, fmt.Errorf("store %s: %w", env.Store.Name, err)
	}
	c, err := loc.Client(context.Background())
	return loc, c, err
}

// WriteCanary puts <prefix>linkdr-canary/<id> holding the write time.
func (s3Kind) WriteCanary(ctx context.Context, env Env, cn Canary) error {
	loc, c, err := s3Location(env)
	if err != nil {
		return err
	}
	body := []byte(cn.WrittenAt.UTC().Format(time.RFC3339Nano))
	_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(loc.Bucket), Key: aws.String(loc.Prefix + CanaryPrefix + cn.ID),
		Body: bytes.NewReader(body), ContentType: aws.String("text/plain")})
	if err != nil {
		return fmt.Errorf("write canary into %s: %w", loc, err)
	}
	return nil
}

func readS3Canaries(ctx context.Context, c *s3.Client, loc s3bucket.Location) ([]Canary, error) {
	var out []Canary
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String(loc.Bucket), Prefix: aws.String(loc.Prefix + CanaryPrefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list canaries in %s: %w", loc, err)
		}
		for _, o := range page.Contents {
			obj, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(loc.Bucket), Key: o.Key})
			if err != nil {
				return nil, fmt.Errorf("read canary %s: %w", aws.ToString(o.Key), err)
			}
			b, err := io.ReadAll(io.LimitReader(obj.Body, 128))
			obj.Body.Close()
			if err != nil {
				return nil, err
			}
			t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(string(b)))
			if err != nil {
				continue // not one of ours
			}
			out = append(out, Canary{ID: strings.TrimPrefix(aws.ToString(o.Key), loc.Prefix+CanaryPrefix), WrittenAt: t.UTC()})
		}
	}
	return out, nil
}

func (s3Kind) LiveCanaries(ctx context.Context, env Env) ([]Canary, error) {
	loc, c, err := s3Location(env)
	if err != nil {
		return nil, err
	}
	return readS3Canaries(ctx, c, loc)
}

// Scratch is the drill's scratch location for the store, else the prefix
// linkdr-drill-<id>/ at the root of the store's bucket — outside the
// store's prefix, so backups of the live prefix never see it. A store
// that is a whole bucket needs a scratch location.
func (s3Kind) Scratch(ctx context.Context, env Env, m *repo.Manifest) (Scratch, error) {
	live, c, err := s3Location(env)
	if err != nil {
		return nil, err
	}
	var loc s3bucket.Location
	switch {
	case env.ScratchURL != "":
		if loc, err = s3bucket.ParseLocation(env.ScratchURL); err != nil {
			return nil, fmt.Errorf("scratch for %s: %w", env.Store.Name, err)
		}
		loc.Prefix += "linkdr-drill-" + strings.ToLower(env.DrillID) + "/"
	case live.Prefix != "":
		loc = live
		loc.Prefix = "linkdr-drill-" + strings.ToLower(env.DrillID) + "/"
	default:
		return nil, fmt.Errorf("store %s is a whole bucket: restoring into it would mix the copy with live objects (hint: set drills.<drill>.scratch.%s to s3://scratch-bucket/prefix?…)", env.Store.Name, env.Store.Name)
	}
	if loc.Endpoint != live.Endpoint || loc.Region != live.Region {
		if c, err = loc.Client(ctx); err != nil {
			return nil, err
		}
	}
	return &s3Scratch{env: env, loc: loc, client: c}, nil
}

type s3Scratch struct {
	env     Env
	loc     s3bucket.Location
	client  *s3.Client
	checked string
	used    bool
}

func (s *s3Scratch) Describe() string { return s.loc.String() }

// Restore copies the backup into the scratch prefix and verifies every
// object's key, size and MD5 against the backup's index as it goes.
func (s *s3Scratch) Restore(ctx context.Context, m *repo.Manifest) error {
	s.used = true
	_, res, err := s.env.Ops.Restore(ctx, m.Store, ops.RestoreOptions{Backup: m.ID, Target: s.loc.String(), Verify: true})
	if err != nil {
		return err
	}
	if len(res.Items) > 0 {
		s.checked = res.Items[0].Checked
	}
	return nil
}

func (s *s3Scratch) Compare(ctx context.Context, m *repo.Manifest) (drillreport.Integrity, error) {
	var st s3bucket.Stats
	if err := json.Unmarshal(m.Stats, &st); err != nil {
		return drillreport.Integrity{}, fmt.Errorf("backup %s: manifest stats: %w", m.ID, err)
	}
	n, err := s.count(ctx)
	if err != nil {
		return drillreport.Integrity{}, err
	}
	it := drillreport.IntegrityItem{Name: "objects", ExpectedRows: st.Objects, Rows: n, OK: n == st.Objects}
	in := drillreport.Integrity{OK: it.OK, Items: []drillreport.IntegrityItem{it}, Summary: s.checked}
	if !it.OK {
		it.Problem = fmt.Sprintf("%d objects restored, the backup's manifest says %d", n, st.Objects)
		in.Items[0], in.Summary = it, it.Problem
		return in, fmt.Errorf("%w: %s", store.ErrMismatch, it.Problem)
	}
	return in, nil
}

func (s *s3Scratch) count(ctx context.Context) (int64, error) {
	var n int64
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{Bucket: aws.String(s.loc.Bucket), Prefix: aws.String(s.loc.Prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return n, fmt.Errorf("list %s: %w", s.loc, err)
		}
		n += int64(len(page.Contents))
	}
	return n, nil
}

func (s *s3Scratch) Canaries(ctx context.Context) ([]Canary, error) {
	return readS3Canaries(ctx, s.client, s.loc)
}

// CheckURL: no check type probes S3 objects.
func (s *s3Scratch) CheckURL(string) (string, bool) { return "", false }

// Cleanup deletes every object under the scratch prefix.
func (s *s3Scratch) Cleanup(ctx context.Context) ([]string, error) {
	if !s.used {
		return nil, nil
	}
	var deleted int
	var errs []error
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{Bucket: aws.String(s.loc.Bucket), Prefix: aws.String(s.loc.Prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			errs = append(errs, err)
			break
		}
		if len(page.Contents) == 0 {
			continue
		}
		var ids []types.ObjectIdentifier
		for _, o := range page.Contents {
			ids = append(ids, types.ObjectIdentifier{Key: o.Key})
		}
		out, err := s.client.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String(s.loc.Bucket), Delete: &types.Delete{Objects: ids, Quiet: aws.Bool(true)}})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, e := range out.Errors {
			errs = append(errs, fmt.Errorf("delete %s: %s", aws.ToString(e.Key), aws.ToString(e.Message)))
		}
		deleted += len(ids) - len(out.Errors)
	}
	if n, err := s.count(ctx); err == nil && n > 0 && len(errs) == 0 {
		errs = append(errs, fmt.Errorf("%d objects still under %s", n, s.loc))
	}
	return []string{fmt.Sprintf("%d objects under %s", deleted, s.loc)}, errors.Join(errs...)
}

func (s3Kind) History(prev, cur *repo.Manifest, maxShrink float64) ([]drillreport.HistoryFinding, error) {
	var ps, cs s3bucket.Stats
	if err := json.Unmarshal(prev.Stats, &ps); err != nil {
		return nil, fmt.Errorf("backup %s: manifest stats: %w", prev.ID, err)
	}
	if err := json.Unmarshal(cur.Stats, &cs); err != nil {
		return nil, fmt.Errorf("backup %s: manifest stats: %w", cur.ID, err)
	}
	if f, ok := judgeShrink(prev, cur, counted{"objects", "bucket", "objects", ps.Objects, cs.Objects, true}, maxShrink); ok {
		return []drillreport.HistoryFinding{f}, nil
	}
	return nil, nil
}
