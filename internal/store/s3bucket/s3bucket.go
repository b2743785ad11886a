package s3bucket

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/linkapp/linkdr/internal/plan"
	"github.com/linkapp/linkdr/internal/store"
)

func init() { store.Register("s3", New) }

// Media types of the artifacts this kind writes.
const (
	MediaTypePack    = "application/x-tar"
	MediaTypeIndex   = "application/x-linkdr-s3-index+jsonl"
	MediaTypeCatalog = "application/x-linkdr-s3-catalog+jsonl"
)

// Artifact names inside a backup.
const (
	IndexArtifact   = "objects.jsonl"
	CatalogArtifact = "catalog.jsonl"
)

// Bucket is one S3 bucket (or prefix) from the plan.
type Bucket struct {
	name    string
	loc     Location
	replica *Location
	log     *slog.Logger
}

var _ store.Store = (*Bucket)(nil)

// New builds the store from its plan entry.
func New(cfg *plan.Store, env store.Env) (store.Store, error) {
	loc, err := ParseLocation(cfg.URL.Reveal())
	if err != nil {
		return nil, fmt.Errorf("store %s: url: %w", cfg.Name, err)
	}
	b := &Bucket{name: cfg.Name, loc: loc, log: env.Log}
	if b.log == nil {
		b.log = slog.Default()
	}
	if cfg.Replica != nil {
		r, err := ParseLocation(cfg.Replica.URL)
		if err != nil {
			return nil, fmt.Errorf("store %s: replica.url: %w", cfg.Name, err)
		}
		b.replica = &r
	}
	return b, nil
}

// Location is a bucket and key prefix at an S3 endpoint, parsed from
// s3://bucket/prefix?region=…&endpoint=…&use_path_style=true (the same
// form as repository URLs). Credentials come from the standard AWS
// sources (environment, profile, instance role), never from the URL.
type Location struct {
	Bucket    string `json:"bucket"`
	Prefix    string `json:"prefix,omitempty"` // "" or ending in "/"
	Region    string `json:"region,omitempty"`
	Endpoint  string `json:"endpoint,omitempty"`
	PathStyle bool   `json:"path_style,omitempty"`
}

// ParseLocation parses an s3:// URL.
func ParseLocation(raw string) (Location, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return Location{}, fmt.Errorf("invalid URL: %v", err)
	}
	if u.Scheme != "s3" || u.Host == "" {
		return Location{}, fmt.Errorf("want s3://bucket/prefix?region=…, got %q", redact(raw))
	}
	q := u.Query()
	l := Location{Bucket: u.Host, Region: q.Get("region"), Endpoint: q.Get("endpoint")}
	if p := strings.Trim(u.Path, "/"); p != "" {
		l.Prefix = p + "/"
	}
	if v := q.Get("use_path_style"); v != "" {
		if l.PathStyle, err = strconv.ParseBool(v); err != nil {
			return Location{}, fmt.Errorf("use_path_style=%q: want true or false", v)
		}
	}
	for k := range q {
		switch k {
		case "region", "endpoint", "use_path_style":
		default:
			return Location{}, fmt.Errorf("unknown query parameter %q (known: region, endpoint, use_path_style)", k)
		}
	}
	return l, nil
}

// String renders the location as an s3:// URL.
func (l Location) String() string {
	q := url.Values{}
	if l.Region != "" {
		q.Set("region", l.Region)
	}
	if l.Endpoint != "" {
		q.Set("endpoint", l.Endpoint)
	}
	if l.PathStyle {
		q.Set("use_path_style", "true")
	}
	u := url.URL{Scheme: "s3", Host: l.Bucket, Path: "/" + strings.TrimSuffix(l.Prefix, "/"), RawQuery: q.Encode()}
	if l.Prefix == "" {
		u.Path = ""
	}
	return u.String()
}

// Client builds an S3 client for the location.
func (l Location) Client(ctx context.Context) (*s3.Client, error) {
	var opts []func(*config.LoadOptions) error
	if l.Region != "" {
		opts = append(opts, config.WithRegion(l.Region))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("s3 credentials: %w", err)
	}
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		if l.Endpoint != "" {
			o.BaseEndpoint = aws.String(l.Endpoint)
		}
		o.UsePathStyle = l.PathStyle
		// Third-party S3 servers may not know the newer default checksums.
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	}), nil
}

func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<unparseable URL>"
	}
	return u.Redacted()
}

// etag normalises an ETag: S3 returns it quoted.
func etag(p *string) string { return strings.Trim(aws.ToString(p), `"`) }
