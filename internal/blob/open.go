package blob

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
)

// Open returns the Store a configuration value names:
//
//	/var/lib/riff/blobs, ./blobs          a folder (NewFS)
//	file:///var/lib/riff/blobs            the same, as a URL
//	s3://bucket                           an S3 bucket (NewS3)
//	s3://bucket?region=eu-west-1&endpoint=http://127.0.0.1:9000&path_style=true&part_size=16777216
//
// The s3 query parameters set the S3Options fields of the same names.
// Credentials never go in the URL; they come from the AWS SDK's default
// chain. An unknown scheme or parameter is an error naming it.
func Open(ctx context.Context, rawURL string) (Store, error) {
	if rawURL == "" {
		return nil, fmt.Errorf("blob: open: empty store URL")
	}
	if !strings.Contains(rawURL, "://") && !strings.HasPrefix(rawURL, "file:") && !strings.HasPrefix(rawURL, "s3:") {
		return NewFS(rawURL)
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("blob: open %q: %w", rawURL, err)
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("blob: open %q: %s", u.Redacted(), fmt.Sprintf(format, args...))
	}
	if u.User != nil {
		return nil, bad("credentials do not belong in the URL; use the AWS default chain")
	}
	if u.Fragment != "" {
		return nil, bad("unexpected fragment %q", u.Fragment)
	}
	switch u.Scheme {
	case "file":
		if u.Host != "" && u.Host != "localhost" {
			return nil, bad("file URLs name a local absolute path, as in file:///var/lib/riff/blobs")
		}
		if u.RawQuery != "" {
			return nil, bad("file URLs take no parameters")
		}
		if u.Path == "" || !filepath.IsAbs(filepath.FromSlash(u.Path)) {
			return nil, bad("file URLs need an absolute path, as in file:///var/lib/riff/blobs")
		}
		return NewFS(filepath.FromSlash(u.Path))
	case "s3":
		if u.Host == "" {
			return nil, bad("no bucket, as in s3://bucket")
		}
		if u.Port() != "" {
			return nil, bad("the host is the bucket name; put the service address in ?endpoint=")
		}
		if u.Path != "" && u.Path != "/" {
			return nil, bad("a key prefix (%q) is not supported; name only the bucket", u.Path)
		}
		var opts S3Options
		for k, vs := range u.Query() {
			if len(vs) != 1 {
				return nil, bad("parameter %q given %d times", k, len(vs))
			}
			v := vs[0]
			switch k {
			case "region":
				opts.Region = v
			case "endpoint":
				e, err := url.Parse(v)
				if err != nil || (e.Scheme != "http" && e.Scheme != "https") || e.Host == "" {
					return nil, bad("endpoint %q is not an http(s) URL", v)
				}
				opts.Endpoint = v
			case "path_style":
				b, err := strconv.ParseBool(v)
				if err != nil {
					return nil, bad("path_style %q is not a boolean", v)
				}
				opts.PathStyle = b
			case "part_size":
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil || n <= 0 {
					return nil, bad("part_size %q is not a positive number of bytes", v)
				}
				opts.PartSize = n
			default:
				return nil, bad("unknown parameter %q (want region, endpoint, path_style, part_size)", k)
			}
		}
		return NewS3(ctx, u.Host, opts)
	case "":
		return NewFS(rawURL)
	default:
		return nil, bad("unknown scheme %q (want a path, file:// or s3://)", u.Scheme)
	}
}
