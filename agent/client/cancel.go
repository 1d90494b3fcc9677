package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// Cancelled is the agent's answer to a cancel: the deploy, and whether it is cancelled (by
// this cancel or an earlier one). A deploy decided before the cancel is not: Deploy then
// holds its verdict, which stands.
type Cancelled struct {
	Cancelled bool
	Deploy    *Deploy
	// Raw is the agent's answer as it came (vigil cancel --json prints it).
	Raw []byte
}

// CancelDeploy ends the verification of deploy id as cancelled (its rollout was called
// off), with reason (may be ""). A cancel is the same however many times it arrives, so
// while the agent gives no answer or answers 502, 503 or 504 it is sent again, as
// RegisterDeploy sends a deploy again, for up to retryFor (0: once). A refusal (no such
// deploy, a bad reason) is an *APIError.
func (c *Client) CancelDeploy(ctx context.Context, id, reason string, retryFor time.Duration, onRetry func(err error, wait time.Duration)) (*Cancelled, error) {
	body := struct {
		Reason string `json:"reason,omitempty"`
	}{reason}
	return c.cancel(ctx, "/api/v1/deploys/"+url.PathEscape(id)+"/cancel", body, retryFor, onRetry)
}

// CancelServiceDeploy is CancelDeploy for the deploy of version of service verifying now,
// for a caller that does not know its id.
func (c *Client) CancelServiceDeploy(ctx context.Context, service, version, reason string, retryFor time.Duration, onRetry func(err error, wait time.Duration)) (*Cancelled, error) {
	body := struct {
		Version string `json:"version"`
		Reason  string `json:"reason,omitempty"`
	}{version, reason}
	return c.cancel(ctx, "/api/v1/services/"+url.PathEscape(service)+"/deploys/cancel", body, retryFor, onRetry)
}

func (c *Client) cancel(ctx context.Context, path string, body any, retryFor time.Duration, onRetry func(err error, wait time.Duration)) (*Cancelled, error) {
	status, raw, err := c.retrying(ctx, http.MethodPost, path, body, nil, retryFor, onRetry)
	if err != nil {
		return nil, err
	}
	out := &Cancelled{Raw: raw, Deploy: &Deploy{}}
	switch status {
	case http.StatusOK:
		out.Cancelled = true
		err = json.Unmarshal(raw, out.Deploy)
	case http.StatusConflict:
		var decided struct {
			Deploy *Deploy `json:"deploy"`
		}
		err = json.Unmarshal(raw, &decided)
		if err == nil && decided.Deploy == nil {
			err = fmt.Errorf("no deploy in it")
		}
		out.Deploy = decided.Deploy
	default:
		return nil, &APIError{Status: status, Message: Message(raw)}
	}
	if err != nil || out.Deploy.Status == "" {
		return nil, fmt.Errorf("unexpected answer from the agent: %s", Clip(string(raw), 300))
	}
	return out, nil
}
