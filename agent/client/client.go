// Package client talks to a running vigil agent's HTTP API: `vigil gate`, `vigil silence`
// and the tests use it, so the API's shapes are written down once on the caller's side.
// It imports no other vigil package.
package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"
)

// Client calls one agent.
type Client struct {
	base      *url.URL
	token     string
	userAgent string
	http      *http.Client
}

// New checks base (the agent's http(s) URL) and returns a client that sends token as a
// bearer token when it is not empty.
func New(base, token, userAgent string) (*Client, error) {
	// A URL or token read from a file or a Kubernetes secret often ends in a newline,
	// which neither a URL nor a header may hold.
	u, err := url.Parse(strings.TrimSuffix(strings.TrimSpace(base), "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%q is not an http(s) URL of an agent, e.g. http://127.0.0.1:9595", base)
	}
	return &Client{base: u, token: strings.TrimSpace(token), userAgent: userAgent, http: &http.Client{}}, nil
}

// Unreachable says why the agent could not be asked, with what to do when the cause is
// on this side: a certificate this machine does not trust, a scheme that is not the
// agent's.
func Unreachable(err error) string {
	var unknown x509.UnknownAuthorityError
	msg := err.Error()
	switch {
	case errors.As(err, &unknown):
		return msg + " (an agent behind a private CA: point SSL_CERT_FILE at its certificate, or at a bundle with it)"
	case strings.Contains(msg, "server gave HTTP response to HTTPS client"):
		return msg + " (the agent speaks plain HTTP: use an http:// URL)"
	case strings.Contains(msg, "first record does not look like a TLS handshake"), strings.Contains(msg, "malformed HTTP response"):
		return msg + " (check the URL's scheme: http:// or https://, as the agent listens)"
	}
	return msg
}

// Permanent says whether err, from a request to the agent, will not go away by asking
// again: a certificate the machine does not trust, TLS spoken to plain HTTP or the other
// way round, a header that cannot be sent, an answer over 8 MiB.
func Permanent(err error) bool {
	var unknown x509.UnknownAuthorityError
	var host x509.HostnameError
	var invalid x509.CertificateInvalidError
	var record tls.RecordHeaderError
	var big *TooBigError
	if errors.As(err, &unknown) || errors.As(err, &host) || errors.As(err, &invalid) || errors.As(err, &record) || errors.As(err, &big) {
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "server gave HTTP response to HTTPS client") || strings.Contains(msg, "invalid header field")
}

// Base is the agent's URL.
func (c *Client) Base() string { return c.base.String() }

// APIError is an answer that is not a success: its status and the agent's message.
type APIError struct {
	Status  int
	Message string
	// RetryAfter is how long the answer's Retry-After asked the caller to wait (0: it
	// did not), as RetryAfter reads it.
	RetryAfter time.Duration
}

func (e *APIError) Error() string { return fmt.Sprintf("HTTP %d: %s", e.Status, e.Message) }

// Do sends one request (body, when not nil, as JSON) within timeout and returns the status
// and at most 8 MiB of the answer. Any status is returned as it is; err is for no answer,
// or one over 8 MiB (a *TooBigError).
func (c *Client) Do(ctx context.Context, method, path string, body any, timeout time.Duration) (int, []byte, error) {
	status, _, raw, err := c.do(ctx, method, path, body, nil, timeout)
	return status, raw, err
}

// do is Do with headers of the caller's, answering the answer's headers too.
func (c *Client) do(ctx context.Context, method, path string, body any, header http.Header, timeout time.Duration) (int, http.Header, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base.String()+path, rd)
	if err != nil {
		return 0, nil, nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if req.Header.Get("Accept") == "" {
		req.Header.Set("Accept", "application/json") // an agent's pages answer their errors as JSON then
	}
	if c.userAgent != "" {
		req.Header.Set("User-Agent", c.userAgent)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	if err == nil && len(b) > maxAnswer {
		// Cut, it is not the answer: not JSON that fails to parse, nor "no answer".
		return resp.StatusCode, resp.Header, b[:maxAnswer], &TooBigError{Method: method, Path: path}
	}
	return resp.StatusCode, resp.Header, b, err
}

// call is Do that decodes a success into out and turns anything else into an APIError.
func (c *Client) call(ctx context.Context, method, path string, body any, want int, out any, timeout time.Duration) ([]byte, error) {
	status, h, raw, err := c.do(ctx, method, path, body, nil, timeout)
	if err != nil {
		return nil, err
	}
	if status != want {
		return raw, &APIError{Status: status, Message: Message(raw), RetryAfter: RetryAfter(h)}
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return raw, fmt.Errorf("unexpected answer from the agent: %s", Clip(string(raw), 300))
		}
	}
	return raw, nil
}

// Message is the agent's error message in an answer, or the answer itself, clipped.
func Message(body []byte) string {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		return e.Error
	}
	return Clip(strings.TrimSpace(string(body)), 300)
}

// Clip cuts s to at most n bytes on a rune boundary, marking the cut with "…".
func Clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// DeployRequest is the body of POST /api/v1/deploys.
type DeployRequest struct {
	Service     string   `json:"service,omitempty"`
	Services    []string `json:"services,omitempty"`
	Version     string   `json:"version"`
	Environment string   `json:"environment,omitempty"`
	Commit      string   `json:"commit,omitempty"`
	// Links are what the pipeline wants people to open from the verdict: the CI run, the diff.
	Links []Link `json:"links,omitempty"`
}

// Link is a named URL passed with a deploy.
type Link struct {
	Name string `json:"name"`
	URL  string `json:"url"`
}

// Deploy is a deploy as the agent answers it.
type Deploy struct {
	ID          string `json:"id"`
	Service     string `json:"service"`
	Version     string `json:"version"`
	Environment string `json:"environment"`
	Status      string `json:"status"`
	Reason      string `json:"reason"`
	Halt        string `json:"halt"`
	// RollbackOf is the failed deploy this one rolled back ("" when it is not a rollback).
	RollbackOf string `json:"rollback_of"`
	// SupersededBy is the newer deploy of the service that superseded this one ("" when none).
	SupersededBy string `json:"superseded_by"`
	// ReadyMS is how long after registration every check had passed once (nil until then).
	ReadyMS *int64        `json:"ready_ms"`
	URL     string        `json:"url"`
	Links   []Link        `json:"links"`
	Checks  []DeployCheck `json:"checks"`
	// Locations are the verifying agents' reports, each for its location.
	Locations []LocationReport `json:"locations"`
}

// LocationReport is one agent's verdict on a deploy, for its location.
type LocationReport struct {
	Location   string    `json:"location"`
	Agent      string    `json:"agent"`
	Status     string    `json:"status"`
	Reason     string    `json:"reason"`
	ReportedAt time.Time `json:"reported_at"`
}

// DeployCheck is one check's runs in a deploy's verification.
type DeployCheck struct {
	Name        string   `json:"name"`
	Kind        string   `json:"kind"`
	Runs        int      `json:"runs"`
	Passed      int      `json:"passed"`
	Failed      int      `json:"failed"`
	Errors      int      `json:"errors"`
	LastOutcome string   `json:"last_outcome"`
	Reasons     []string `json:"reasons"`
	RunURL      string   `json:"run_url"`
	TraceID     string   `json:"trace_id"`
	TraceURL    string   `json:"trace_url"`
	// UsualReadyMS is the check's usual startup: the median of how long after registration
	// it first passed in the service's last deploys that passed (nil until three show it).
	UsualReadyMS *int64 `json:"usual_ready_ms"`
}

// RegisterDeploy registers a deploy and returns its id (the first, for several services).
// It sends the registration under an Idempotency-Key of its own and, while the agent gives
// no answer or answers 502, 503 or 504 (restarting, its store refusing writes for a
// moment, a proxy in front of it), sends it again under the same key until retryFor has
// passed, waiting 1 s, then twice as long each time up to 10 s (or the agent's
// Retry-After, up to 30 s); onRetry, when not nil, is told of each. The agent registers
// the deploy once however many times it arrives, a registration whose answer was lost
// included. Any other answer ends it: a refusal is an *APIError.
func (c *Client) RegisterDeploy(ctx context.Context, req DeployRequest, retryFor time.Duration, onRetry func(err error, wait time.Duration)) (string, error) {
	var k [16]byte
	_, _ = rand.Read(k[:])
	header := http.Header{"Idempotency-Key": {"vigil-" + hex.EncodeToString(k[:])}}
	status, raw, err := c.retrying(ctx, http.MethodPost, "/api/v1/deploys", req, header, retryFor, onRetry)
	switch {
	case err != nil:
		return "", err
	case status != http.StatusAccepted:
		return "", &APIError{Status: status, Message: Message(raw)}
	}
	var out struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(raw, &out); err != nil || out.ID == "" {
		return "", fmt.Errorf("the agent registered the deploy but named no id: %s", Clip(string(raw), 300))
	}
	return out.ID, nil
}

// Deploy reads a deploy, waiting up to wait (long-poll) while it is verifying. It returns
// the raw answer too (vigil gate --json prints it).
func (c *Client) Deploy(ctx context.Context, id string, wait time.Duration) (*Deploy, []byte, error) {
	path := "/api/v1/deploys/" + url.PathEscape(id)
	if wait > 0 {
		path += "?wait=" + wait.String()
	}
	var d Deploy
	raw, err := c.call(ctx, http.MethodGet, path, nil, http.StatusOK, &d, wait+30*time.Second)
	if err != nil {
		return nil, raw, err
	}
	return &d, raw, nil
}

// SilenceRequest is the body of POST /api/v1/silences: one of Check or Service, for
// Duration (a Go duration, at most 30 days), with the Reason people will see.
type SilenceRequest struct {
	Check     string `json:"check,omitempty"`
	Service   string `json:"service,omitempty"`
	Duration  string `json:"duration"`
	Reason    string `json:"reason"`
	CreatedBy string `json:"created_by,omitempty"`
}

// Silence is a silence as the agent answers it.
type Silence struct {
	ID        string    `json:"id"`
	Check     string    `json:"check"`
	Service   string    `json:"service"`
	StartsAt  time.Time `json:"starts_at"`
	EndsAt    time.Time `json:"ends_at"`
	Reason    string    `json:"reason"`
	CreatedBy string    `json:"created_by"`
}

// AddSilence mutes a check or a service for a while.
func (c *Client) AddSilence(ctx context.Context, req SilenceRequest) (*Silence, error) {
	var out Silence
	if _, err := c.call(ctx, http.MethodPost, "/api/v1/silences", req, http.StatusCreated, &out, 30*time.Second); err != nil {
		return nil, err
	}
	return &out, nil
}

// Silences lists the silences that have not ended.
func (c *Client) Silences(ctx context.Context) ([]Silence, error) {
	var out struct {
		Silences []Silence `json:"silences"`
	}
	if _, err := c.call(ctx, http.MethodGet, "/api/v1/silences", nil, http.StatusOK, &out, 30*time.Second); err != nil {
		return nil, err
	}
	return out.Silences, nil
}

// DeleteSilence ends a silence now.
func (c *Client) DeleteSilence(ctx context.Context, id string) error {
	_, err := c.call(ctx, http.MethodDelete, "/api/v1/silences/"+url.PathEscape(id), nil, http.StatusNoContent, nil, 30*time.Second)
	return err
}

// CheckInfo is a check as GET /api/v1/checks lists it.
type CheckInfo struct {
	Name     string   `json:"name"`
	Kind     string   `json:"kind"`
	Services []string `json:"services"`
}

// Checks lists the agent's checks.
func (c *Client) Checks(ctx context.Context) ([]CheckInfo, error) {
	var out struct {
		Checks []CheckInfo `json:"checks"`
	}
	if _, err := c.call(ctx, http.MethodGet, "/api/v1/checks", nil, http.StatusOK, &out, 30*time.Second); err != nil {
		return nil, err
	}
	return out.Checks, nil
}

// Preflight is GET /api/v1/services/{name}/preflight's answer: whether a deploy of Version
// may go out now, what blocks it, and what to know before it does.
type Preflight struct {
	Service  string          `json:"service"`
	Version  string          `json:"version"`
	Clear    bool            `json:"clear"`
	Blocked  []PreflightNote `json:"blocked"`
	Warnings []PreflightNote `json:"warnings"`
}

// PreflightNote is one reason to stop or to look, by rule (version_failed, rollout_halted;
// verifying, last_deploy_failed, checks_failing, no_baseline, muted).
type PreflightNote struct {
	Rule    string `json:"rule"`
	Message string `json:"message"`
	Deploy  string `json:"deploy"`
	URL     string `json:"url"`
	Check   string `json:"check"`
}

// Preflight asks the agent whether version of service may be deployed now. A blocked
// answer (409) is an answer, not an error; the raw answer is returned too (--json). While
// the agent gives no answer or answers 502, 503 or 504 it is asked again, as RegisterDeploy
// sends a deploy again, for up to retryFor (0: once).
func (c *Client) Preflight(ctx context.Context, service, version string, retryFor time.Duration, onRetry func(err error, wait time.Duration)) (*Preflight, []byte, error) {
	status, raw, err := c.retrying(ctx, http.MethodGet, "/api/v1/services/"+url.PathEscape(service)+"/preflight?version="+url.QueryEscape(version), nil, nil, retryFor, onRetry)
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		return nil, nil, apiErr
	}
	if err != nil {
		return nil, nil, err
	}
	if status != http.StatusOK && status != http.StatusConflict {
		return nil, raw, &APIError{Status: status, Message: Message(raw)}
	}
	var p Preflight
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, raw, fmt.Errorf("unexpected answer from the agent: %s", Clip(string(raw), 300))
	}
	return &p, raw, nil
}
