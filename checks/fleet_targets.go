package checks

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/tidwall/gjson"
	"github.com/vigil-monitor/vigil/configs"
)

const (
	fleetMaxInstances   = 10_000
	fleetDiscoveryBytes = 4 << 20
)

// fleetTargets are the instances of a fleet check: a static list of base URLs, or the list
// a discovery URL answers, read again every run through a gjson path. Finding the
// instances is apart from probing them, as cloudprober keeps targets apart from probes.
type fleetTargets struct {
	client    *HTTPClient
	static    []string
	discovery *Request // nil for a static list
	path      string
}

func newFleetTargets(client *HTTPClient, t configs.FleetTargets, timeout time.Duration) *fleetTargets {
	ft := &fleetTargets{client: client, path: t.Path}
	for _, u := range t.Static {
		if u = instanceURL(u); !slices.Contains(ft.static, u) {
			ft.static = append(ft.static, u)
		}
	}
	if t.URL != "" {
		ft.discovery = &Request{Method: http.MethodGet, URL: t.URL, Header: headerOf(t.Headers), Timeout: timeout,
			MaxBodyBytes: fleetDiscoveryBytes, FollowRedirects: true}
	}
	return ft
}

// instanceURL is how an instance is known, in a run and in the baseline: its base URL
// without trailing slashes. Its requests go to the same paths either way (probeInstance
// trims them), so http://a:8080/ listed beside http://a:8080 is one instance, not two, and
// a registry that changes how it writes it does not make it missing and new.
func instanceURL(s string) string {
	if t := strings.TrimRight(s, "/"); strings.Contains(t, "://") {
		return t
	}
	return s
}

// list gives this run's instances. Its request and answer go to t; nil leaves them out
// (discovery asked again while instances are waited for).
func (f *fleetTargets) list(ctx context.Context, t *Transcript) ([]string, error) {
	if f.discovery == nil {
		return f.static, nil
	}
	resp, err := f.client.Do(ctx, f.discovery, t)
	if err != nil {
		return nil, fmt.Errorf("discovery: %w", err)
	}
	switch {
	case resp.Status != http.StatusOK:
		body := Trim(string(resp.Body), 200) // t is nil when the answer is only for vigil
		if t != nil {
			body = t.Excerpt(string(resp.Body), 200)
		}
		return nil, fmt.Errorf("discovery %s answered %d: %s", f.discovery.URL, resp.Status, body)
	case resp.Truncated:
		return nil, fmt.Errorf("discovery %s answered more than %d bytes; is it the right URL?", f.discovery.URL, fleetDiscoveryBytes)
	}
	list, err := ParseTargets(resp.Body, f.path)
	if err != nil {
		return nil, fmt.Errorf("discovery %s: %w", f.discovery.URL, err)
	}
	return list, nil
}

// ParseTargets reads instance base URLs from a discovery answer: the gjson path must give a
// URL string or a list of them (nested lists from # queries are flattened).
func ParseTargets(body []byte, path string) ([]string, error) {
	if !gjson.ValidBytes(body) {
		return nil, fmt.Errorf("the answer is not JSON: %s", Trim(string(body), 120))
	}
	r := gjson.GetBytes(body, path)
	if !r.Exists() {
		return nil, fmt.Errorf("path %q finds nothing in the answer: %s", path, Trim(string(body), 200))
	}
	var out []string
	seen := map[string]bool{}
	var walk func(r gjson.Result, depth int) error
	walk = func(r gjson.Result, depth int) error {
		if r.IsArray() {
			if depth > 3 {
				return fmt.Errorf("path %q gives lists nested too deep", path)
			}
			var err error
			r.ForEach(func(_, v gjson.Result) bool {
				err = walk(v, depth+1)
				return err == nil
			})
			return err
		}
		if r.Type != gjson.String {
			return fmt.Errorf("path %q gives %s, not a URL string; point it at the URL field, e.g. instances.#.url", path, Trim(r.Raw, 80))
		}
		s := strings.TrimSpace(r.Str)
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("discovered %q, which is not an absolute http(s) URL", Trim(s, 100))
		}
		s = instanceURL(u.Scheme + s[len(u.Scheme):]) // a scheme is case-insensitive: HTTP://a is http://a
		if !seen[s] {
			if len(out) == fleetMaxInstances {
				return fmt.Errorf("more than %d instances discovered; split the fleet into several checks", fleetMaxInstances)
			}
			seen[s] = true
			out = append(out, s)
		}
		return nil
	}
	if err := walk(r, 0); err != nil {
		return nil, err
	}
	return out, nil
}

// relisted asks discovery again, to see which instances left the fleet during a run, and
// gives the URLs it lists now. A list of none says nothing of who left: the instances
// that answered healthy a moment ago would have gone too, all at once, and a registry
// catching up in a rollout, an endpoints list recreated or a cache answering before it
// filled lists none for a moment. It is an error, as an answer that is not a list is.
func (f *fleetTargets) relisted(ctx context.Context, t *Transcript) (map[string]bool, error) {
	again, err := f.list(ctx, t)
	if err != nil {
		return nil, err
	}
	if len(again) == 0 {
		return nil, fmt.Errorf("discovery lists no instance now, which says nothing of who left (a registry catching up, an endpoints list recreated)")
	}
	listed := make(map[string]bool, len(again))
	for _, u := range again {
		listed[u] = true
	}
	return listed, nil
}
