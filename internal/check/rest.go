package check

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/linkapp/linkdr/internal/plan"
)

// getJSON GETs a URL and decodes a JSON answer; a status outside 2xx is an
// error carrying the start of the body.
func getJSON(ctx context.Context, rawURL string, header http.Header, out any) (time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return 0, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Accept", "application/json")
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, unwrapURLError(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	latency := time.Since(start)
	if err != nil {
		return latency, err
	}
	if resp.StatusCode/100 != 2 {
		msg := strings.TrimSpace(string(data))
		if len(msg) > 200 {
			msg = msg[:200]
		}
		return latency, fmt.Errorf("%s: %s", resp.Status, msg)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return latency, fmt.Errorf("decode answer: %w", err)
	}
	return latency, nil
}

// probeQdrant reads GET /collections/{name} (REST, qdrant/openapi.json):
// result.status (green, yellow, grey, red), points_count, segments_count.
func probeQdrant(ctx context.Context, r *Runner, c *plan.Check) (map[string]any, error) {
	base, err := r.target(c)
	if err != nil {
		return nil, err
	}
	h := http.Header{}
	if k := c.APIKey.Reveal(); k != "" {
		h.Set("api-key", k)
	}
	var out struct {
		Status any `json:"status"`
		Result struct {
			Status        string `json:"status"`
			PointsCount   *int   `json:"points_count"`
			SegmentsCount int    `json:"segments_count"`
		} `json:"result"`
	}
	u := strings.TrimRight(base, "/") + "/collections/" + url.PathEscape(c.Collection)
	latency, err := getJSON(ctx, u, h, &out)
	if err != nil {
		return nil, fmt.Errorf("collection %s at %s: %w", c.Collection, redacted(base), err)
	}
	points := 0
	if out.Result.PointsCount != nil {
		points = *out.Result.PointsCount
	}
	return map[string]any{"status": out.Result.Status, "points": points, "segments": out.Result.SegmentsCount, "latency": latency}, nil
}

// probePrometheus runs an instant query. value is the first sample (NaN
// when the result is empty, so any comparison with it fails), samples the
// number of series returned.
func probePrometheus(ctx context.Context, r *Runner, c *plan.Check) (map[string]any, error) {
	base := strings.TrimRight(c.URL.Reveal(), "/")
	q := url.Values{"query": {c.Query}}
	var out struct {
		Status    string `json:"status"`
		Error     string `json:"error"`
		ErrorType string `json:"errorType"`
		Data      struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	latency, err := getJSON(ctx, base+"/api/v1/query?"+q.Encode(), nil, &out)
	if err != nil {
		return nil, fmt.Errorf("query %s: %w", redacted(base), err)
	}
	if out.Status != "success" {
		return nil, fmt.Errorf("query: %s: %s", out.ErrorType, out.Error)
	}
	vars := map[string]any{"value": math.NaN(), "samples": 0, "latency": latency}
	var sample []any
	switch out.Data.ResultType {
	case "scalar":
		if err := json.Unmarshal(out.Data.Result, &sample); err != nil {
			return nil, fmt.Errorf("decode scalar: %w", err)
		}
		vars["samples"] = 1
	case "vector":
		var vec []struct {
			Value []any `json:"value"`
		}
		if err := json.Unmarshal(out.Data.Result, &vec); err != nil {
			return nil, fmt.Errorf("decode vector: %w", err)
		}
		vars["samples"] = len(vec)
		if len(vec) > 0 {
			sample = vec[0].Value
		}
	default:
		return nil, fmt.Errorf("query returned a %s; conditions need an instant vector or scalar", out.Data.ResultType)
	}
	if len(sample) == 2 {
		s, _ := sample[1].(string)
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf("sample value %q: %w", s, err)
		}
		vars["value"] = f
	}
	return vars, nil
}
