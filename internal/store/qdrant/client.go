package qdrant

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Client speaks Qdrant's REST API to one node.
type Client struct {
	base   *url.URL
	apiKey string
	http   *http.Client
	// Timeout bounds every call except snapshot transfers, which are
	// bounded by the caller's context only (they may take hours).
	Timeout time.Duration
}

// NewClient parses a node URL: http://host:6333, https://…, or
// qdrant://host:6333 (plain HTTP).
func NewClient(raw, apiKey string) (*Client, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("invalid Qdrant URL: %v", err)
	}
	switch u.Scheme {
	case "http", "https":
	case "qdrant":
		u.Scheme = "http"
	default:
		return nil, fmt.Errorf("Qdrant URL %q: want http://host:6333, https://… or qdrant://host:6333", u.Redacted())
	}
	if u.Host == "" {
		return nil, fmt.Errorf("Qdrant URL %q has no host", u.Redacted())
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawQuery, u.Fragment = "", ""
	return &Client{base: u, apiKey: apiKey, http: &http.Client{}, Timeout: time.Minute}, nil
}

// URL is the node's base URL.
func (c *Client) URL() string { return c.base.String() }

// APIError is an error answer from Qdrant, with the server's own message.
type APIError struct {
	Method, Path string
	Status       int
	// Message is status.error of Qdrant's error envelope, or the body as
	// text when the server answered something else.
	Message string
}

func (e *APIError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	return fmt.Sprintf("qdrant %s %s: %d: %s", e.Method, e.Path, e.Status, msg)
}

// IsNotFound reports a 404 from Qdrant (no such collection or snapshot).
func IsNotFound(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Status == http.StatusNotFound
}

// envelope is Qdrant's response wrapper: {result, status, time}. status
// is "ok", "accepted", or {"error": "…"}.
type envelope struct {
	Result json.RawMessage `json:"result"`
	Status json.RawMessage `json:"status"`
	Time   float64         `json:"time"`
}

func (c *Client) newRequest(ctx context.Context, method, path string, query url.Values, body io.Reader) (*http.Request, error) {
	u := *c.base
	u.Path += path
	u.RawPath = c.base.EscapedPath() + escapePath(path)
	u.RawQuery = query.Encode()
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, err
	}
	if c.apiKey != "" {
		req.Header.Set("api-key", c.apiKey)
	}
	return req, nil
}

// escapePath escapes each segment (collection names may hold anything).
func escapePath(p string) string {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		parts[i] = url.PathEscape(s)
	}
	return strings.Join(parts, "/")
}

// do sends a request and returns the response when it is 2xx; otherwise
// an *APIError with the server's message.
func (c *Client) do(req *http.Request) (*http.Response, error) {
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("qdrant %s %s: %w", req.Method, req.URL.Path, err)
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	ae := &APIError{Method: req.Method, Path: req.URL.Path, Status: resp.StatusCode, Message: strings.TrimSpace(string(b))}
	var env envelope
	if json.Unmarshal(b, &env) == nil {
		var st struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(env.Status, &st) == nil && st.Error != "" {
			ae.Message = st.Error
		}
	}
	return nil, ae
}

// call does a JSON request and decodes the envelope's result into out.
func (c *Client) call(ctx context.Context, method, path string, query url.Values, in, out any) error {
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := c.newRequest(ctx, method, path, query, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var env envelope
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
		return fmt.Errorf("qdrant %s %s: decode response: %w", method, path, err)
	}
	if out == nil {
		return nil
	}
	if resp.StatusCode == http.StatusAccepted || len(env.Result) == 0 || string(env.Result) == "null" {
		return fmt.Errorf("qdrant %s %s: no result (status %s)", method, path, env.Status)
	}
	if err := json.Unmarshal(env.Result, out); err != nil {
		return fmt.Errorf("qdrant %s %s: decode result: %w", method, path, err)
	}
	return nil
}

// VersionInfo is GET /.
type VersionInfo struct {
	Title   string `json:"title"`
	Version string `json:"version"`
	Commit  string `json:"commit,omitempty"`
}

// Version asks the node what it is. GET / answers without the envelope.
func (c *Client) Version(ctx context.Context) (*VersionInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	req, err := c.newRequest(ctx, http.MethodGet, "/", nil, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var v VersionInfo
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		return nil, fmt.Errorf("qdrant GET /: decode: %w", err)
	}
	return &v, nil
}

// Collections lists collection names.
func (c *Client) Collections(ctx context.Context) ([]string, error) {
	var res struct {
		Collections []struct {
			Name string `json:"name"`
		} `json:"collections"`
	}
	if err := c.call(ctx, http.MethodGet, "/collections", nil, nil, &res); err != nil {
		return nil, err
	}
	out := make([]string, len(res.Collections))
	for i, c := range res.Collections {
		out[i] = c.Name
	}
	return out, nil
}

// CollectionInfo is the part of GET /collections/{name} linkdr uses.
type CollectionInfo struct {
	Status        string          `json:"status"`
	PointsCount   *int64          `json:"points_count"`
	SegmentsCount int64           `json:"segments_count"`
	Config        json.RawMessage `json:"config"`
}

// Collection describes one collection.
func (c *Client) Collection(ctx context.Context, name string) (*CollectionInfo, error) {
	var ci CollectionInfo
	if err := c.call(ctx, http.MethodGet, "/collections/"+name, nil, nil, &ci); err != nil {
		return nil, err
	}
	return &ci, nil
}

// DeleteCollection drops a collection; it reports whether it existed.
func (c *Client) DeleteCollection(ctx context.Context, name string) (bool, error) {
	var existed bool
	err := c.call(ctx, http.MethodDelete, "/collections/"+name, nil, nil, &existed)
	return existed, err
}

// Count counts a collection's points exactly (cluster-wide).
func (c *Client) Count(ctx context.Context, name string) (int64, error) {
	var res struct {
		Count int64 `json:"count"`
	}
	if err := c.call(ctx, http.MethodPost, "/collections/"+name+"/points/count", nil, map[string]any{"exact": true}, &res); err != nil {
		return 0, err
	}
	return res.Count, nil
}

// ClusterStatus is GET /cluster, reduced to what linkdr records.
type ClusterStatus struct {
	Status string `json:"status"` // "enabled" or "disabled"
	PeerID uint64 `json:"peer_id,omitempty"`
	Peers  map[string]struct {
		URI string `json:"uri"`
	} `json:"peers,omitempty"`
}

// Cluster reports whether the node is part of a distributed deployment.
func (c *Client) Cluster(ctx context.Context) (*ClusterStatus, error) {
	var cs ClusterStatus
	if err := c.call(ctx, http.MethodGet, "/cluster", nil, nil, &cs); err != nil {
		return nil, err
	}
	return &cs, nil
}

// LocalShard is one shard a node holds.
type LocalShard struct {
	ShardID     uint32 `json:"shard_id"`
	PointsCount int64  `json:"points_count"`
	State       string `json:"state"`
}

// CollectionCluster is GET /collections/{name}/cluster, reduced.
type CollectionCluster struct {
	PeerID      uint64       `json:"peer_id"`
	ShardCount  int          `json:"shard_count"`
	LocalShards []LocalShard `json:"local_shards"`
}

// CollectionCluster lists the shards of a collection on this node.
func (c *Client) CollectionCluster(ctx context.Context, name string) (*CollectionCluster, error) {
	var cc CollectionCluster
	if err := c.call(ctx, http.MethodGet, "/collections/"+name+"/cluster", nil, nil, &cc); err != nil {
		return nil, err
	}
	return &cc, nil
}

// SnapshotDescription describes a snapshot on the server.
type SnapshotDescription struct {
	Name         string `json:"name"`
	CreationTime string `json:"creation_time,omitempty"`
	Size         int64  `json:"size"`
	Checksum     string `json:"checksum,omitempty"`
}

var waitTrue = url.Values{"wait": {"true"}}

// CreateSnapshot snapshots a collection on this node and waits for it.
func (c *Client) CreateSnapshot(ctx context.Context, collection string) (*SnapshotDescription, error) {
	var sd SnapshotDescription
	cc := *c
	cc.Timeout = 24 * time.Hour // snapshotting a large collection takes a while
	if err := cc.call(ctx, http.MethodPost, "/collections/"+collection+"/snapshots", waitTrue, nil, &sd); err != nil {
		return nil, err
	}
	return &sd, nil
}

// DownloadSnapshot streams a snapshot file. The caller closes it.
func (c *Client) DownloadSnapshot(ctx context.Context, collection, snapshot string) (io.ReadCloser, error) {
	req, err := c.newRequest(ctx, http.MethodGet, "/collections/"+collection+"/snapshots/"+snapshot, nil, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.do(req)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// DeleteSnapshot removes a snapshot from the server.
func (c *Client) DeleteSnapshot(ctx context.Context, collection, snapshot string) error {
	var ok bool
	return c.call(ctx, http.MethodDelete, "/collections/"+collection+"/snapshots/"+snapshot, waitTrue, nil, &ok)
}

// UploadSnapshot streams a snapshot to the node, which recovers the
// collection from it (creating it if needed, replacing its data on this
// node otherwise) with priority "snapshot". checksum, when set, is the
// snapshot's SHA-256: the server refuses a snapshot that does not match.
func (c *Client) UploadSnapshot(ctx context.Context, collection, filename string, r io.Reader, checksum string) error {
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		part, err := mw.CreateFormFile("snapshot", filename)
		if err == nil {
			_, err = io.Copy(part, r)
		}
		if err == nil {
			err = mw.Close()
		}
		pw.CloseWithError(err)
	}()
	q := url.Values{"wait": {"true"}, "priority": {"snapshot"}}
	if checksum != "" {
		q.Set("checksum", checksum)
	}
	req, err := c.newRequest(ctx, http.MethodPost, "/collections/"+collection+"/snapshots/upload", q, pr)
	if err != nil {
		pr.CloseWithError(err)
		return err
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	resp, err := c.do(req)
	if err != nil {
		pr.CloseWithError(err)
		return err
	}
	defer resp.Body.Close()
	var env envelope
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
		return fmt.Errorf("qdrant POST %s: decode response: %w", req.URL.Path, err)
	}
	if string(env.Result) != "true" {
		return fmt.Errorf("qdrant POST %s: recovery not confirmed (status %s, result %s)", req.URL.Path, env.Status, env.Result)
	}
	return nil
}
