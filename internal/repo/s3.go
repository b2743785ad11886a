package repo

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/logging"
	"gocloud.dev/blob"
	"gocloud.dev/blob/s3blob"
)

// openS3 opens s3://bucket/prefix?region=…&endpoint=…&use_path_style=true
// with a client we configure ourselves: the SDK's own logging stays off
// stdout/stderr (a CLI must print one clear line), and unknown query
// parameters are errors rather than silently ignored.
func openS3(ctx context.Context, u *url.URL) (*blob.Bucket, error) {
	q := u.Query()
	var endpoint string
	pathStyle := false
	var opts []func(*config.LoadOptions) error
	opts = append(opts, config.WithLogger(logging.Nop{}), config.WithClientLogMode(0))
	for k, v := range q {
		val := v[0]
		switch k {
		case "region":
			opts = append(opts, config.WithRegion(val))
		case "endpoint":
			endpoint = val
		case "use_path_style", "s3ForcePathStyle":
			pathStyle = val == "true"
		case "profile":
			opts = append(opts, config.WithSharedConfigProfile(val))
		default:
			return nil, fmt.Errorf("unknown S3 URL parameter %q (known: region, endpoint, use_path_style, profile)", k)
		}
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("AWS configuration: %w", err)
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
		o.UsePathStyle = pathStyle
	})
	b, err := s3blob.OpenBucket(ctx, client, u.Host, nil)
	if err != nil {
		return nil, err
	}
	if prefix := strings.Trim(u.Path, "/"); prefix != "" {
		b = blob.PrefixedBucket(b, prefix+"/")
	}
	return b, nil
}

// explainS3 turns the SDK's long error chains into one line that says what
// is wrong and how to fix it.
func explainS3(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	var ne *net.OpError
	var ae smithy.APIError
	switch {
	case strings.Contains(msg, "get credentials") || strings.Contains(msg, "failed to refresh cached credentials"):
		return fmt.Errorf("no S3 credentials found (hint: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a profile, or an IAM role)")
	case errors.As(err, &ne):
		return fmt.Errorf("cannot reach the S3 endpoint: %v (hint: check endpoint= in the repository URL and the network)", ne)
	case errors.As(err, &ae):
		switch ae.ErrorCode() {
		case "NoSuchBucket":
			return fmt.Errorf("%w: the bucket does not exist (hint: create it, or fix the bucket in the repository URL)", ErrNotFound)
		case "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch":
			return fmt.Errorf("S3 refused access: %s (hint: check the credentials and the bucket policy)", ae.ErrorCode())
		}
		return fmt.Errorf("S3 error %s: %s", ae.ErrorCode(), ae.ErrorMessage())
	}
	return err
}
