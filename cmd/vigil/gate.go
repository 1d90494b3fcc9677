package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

type gateFlags struct {
	agent, service, version, environment, commit, token string
	wait                                                time.Duration
	json                                                bool
}

func newGateCmd() *cobra.Command {
	var f gateFlags
	cmd := &cobra.Command{
		Use:   "gate",
		Short: "Register a deploy with an agent and wait for its verdict (a pipeline gate)",
		Long: `gate tells a running vigil agent that a service's new version is going out, waits for
the agent to verify it, prints the verdict with the failing checks and their reasons,
and exits with a code the pipeline acts on:

  0  passed
  1  failed (roll back)
  2  usage error, or the agent could not be reached or refused the deploy
  3  inconclusive, superseded by a newer deploy, or no verdict within --wait

The token comes from --token or $VIGIL_API_TOKEN.`,
		Example: `  vigil gate --agent http://vigil:9090 --service web --version v2 --wait 10m
  VIGIL_API_TOKEN=s3cret vigil gate --agent https://vigil.internal --service api --version "$GIT_SHA" --environment prod`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runGate(cmd, f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.agent, "agent", os.Getenv("VIGIL_AGENT"), "the agent's URL (default $VIGIL_AGENT)")
	fl.StringVar(&f.service, "service", "", "the service being deployed (required)")
	fl.StringVar(&f.version, "version", "", "the version going out (required)")
	fl.StringVar(&f.environment, "environment", "", "the environment, e.g. prod")
	fl.StringVar(&f.commit, "commit", "", "the commit being deployed")
	fl.StringVar(&f.token, "token", "", "API token (default $VIGIL_API_TOKEN)")
	fl.DurationVar(&f.wait, "wait", 10*time.Minute, "how long to wait for the verdict")
	fl.BoolVar(&f.json, "json", false, "print the final deploy as JSON")
	return cmd
}

// gateDeploy is the part of the agent's deploy answer gate reads.
type gateDeploy struct {
	ID      string `json:"id"`
	Service string `json:"service"`
	Version string `json:"version"`
	Status  string `json:"status"`
	Reason  string `json:"reason"`
	Halt    string `json:"halt"`
	URL     string `json:"url"`
	Checks  []struct {
		Name        string   `json:"name"`
		Runs        int      `json:"runs"`
		Failed      int      `json:"failed"`
		Errors      int      `json:"errors"`
		LastOutcome string   `json:"last_outcome"`
		Reasons     []string `json:"reasons"`
		RunURL      string   `json:"run_url"`
	} `json:"checks"`
}

func runGate(cmd *cobra.Command, f gateFlags) error {
	out := cmd.OutOrStdout()
	switch {
	case f.agent == "":
		return exitWith(exitUsage, errors.New("vigil gate: --agent is required (or set $VIGIL_AGENT), e.g. --agent http://127.0.0.1:9090"))
	case f.service == "" || f.version == "":
		return exitWith(exitUsage, errors.New("vigil gate: --service and --version are required"))
	case f.wait <= 0:
		return exitWith(exitUsage, errors.New("vigil gate: --wait must be positive, e.g. 10m"))
	}
	base, err := url.Parse(strings.TrimSuffix(f.agent, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return exitWith(exitUsage, fmt.Errorf("vigil gate: --agent %q is not an http(s) URL", f.agent))
	}
	if f.token == "" {
		f.token = os.Getenv("VIGIL_API_TOKEN")
	}
	deadline := time.Now().Add(f.wait)
	client := &http.Client{Timeout: 0}
	call := func(method, path string, body any, timeout time.Duration) (int, []byte, error) {
		ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
		defer cancel()
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, err := http.NewRequestWithContext(ctx, method, base.String()+path, rd)
		if err != nil {
			return 0, nil, err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("User-Agent", userAgent())
		if f.token != "" {
			req.Header.Set("Authorization", "Bearer "+f.token)
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
		return resp.StatusCode, b, err
	}

	status, body, err := call("POST", "/api/v1/deploys", map[string]string{"service": f.service, "version": f.version,
		"environment": f.environment, "commit": f.commit}, 30*time.Second)
	if err != nil {
		return exitWith(exitUsage, fmt.Errorf("vigil gate: cannot reach the agent at %s: %v", base, err))
	}
	if status != http.StatusAccepted {
		return exitWith(exitUsage, fmt.Errorf("vigil gate: the agent refused the deploy (HTTP %d): %s", status, apiMessage(body)))
	}
	var reg struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(body, &reg); err != nil || reg.ID == "" {
		return exitWith(exitUsage, fmt.Errorf("vigil gate: unexpected answer from the agent: %s", clipBytes(body)))
	}
	fmt.Fprintf(out, "vigil: deploy %s registered: %s %s; waiting up to %s for the verdict\n", reg.ID, f.service, f.version, f.wait)

	var d gateDeploy
	var last []byte // the newest answer about the deploy: what --json prints
	failures := 0
	var lost error // the last poll's failure; nil once the agent answers again
	for {
		left := time.Until(deadline)
		if left <= 0 {
			break
		}
		poll := min(left, 30*time.Second).Round(time.Second)
		if poll < time.Second {
			poll = time.Second
		}
		status, body, err := call("GET", "/api/v1/deploys/"+url.PathEscape(reg.ID)+"?wait="+poll.String(), nil, poll+30*time.Second)
		if err != nil || status >= 500 {
			// The agent may be restarting: verdicts survive restarts, so keep asking.
			failures++
			lost = err
			if lost == nil {
				lost = fmt.Errorf("HTTP %d: %s", status, apiMessage(body))
			}
			if failures >= 10 {
				break
			}
			time.Sleep(min(time.Duration(failures)*time.Second, time.Until(deadline)))
			continue
		}
		failures, lost = 0, nil
		if status != http.StatusOK {
			return exitWith(exitUsage, fmt.Errorf("vigil gate: reading deploy %s failed (HTTP %d): %s", reg.ID, status, apiMessage(body)))
		}
		if err := json.Unmarshal(body, &d); err != nil {
			return exitWith(exitUsage, fmt.Errorf("vigil gate: unexpected answer from the agent: %s", clipBytes(body)))
		}
		last = body
		if d.Status != "verifying" {
			break
		}
	}
	if lost != nil {
		// No answer at the end: whether the deploy passed is unknown, and that is the
		// pipeline's problem to look at (exit 2), not a verification still running (3).
		return exitWith(exitUsage, fmt.Errorf("vigil gate: the agent at %s is unreachable (%v); deploy %s has no verdict from it", base, lost, reg.ID))
	}
	if f.json && last != nil {
		var pretty bytes.Buffer
		_ = json.Indent(&pretty, last, "", "  ")
		fmt.Fprintln(out, pretty.String())
	}
	printVerdict(out, &d)
	switch d.Status {
	case "passed":
		return nil
	case "failed":
		return exitWith(exitFailed, nil)
	case "verifying", "":
		fmt.Fprintf(out, "vigil: no verdict within %s; the agent is still verifying: %s\n", f.wait, d.URL)
	}
	return exitWith(exitUnknown, nil)
}

func printVerdict(w io.Writer, d *gateDeploy) {
	if d.Status == "" || d.Status == "verifying" {
		return
	}
	fmt.Fprintf(w, "vigil: %s %s: %s\n", d.Service, d.Version, strings.ToUpper(d.Status))
	if d.Reason != "" {
		fmt.Fprintf(w, "  %s\n", d.Reason)
	}
	if d.Halt != "" {
		fmt.Fprintf(w, "  halt the rollout: %s\n", d.Halt)
	}
	for _, c := range d.Checks {
		if c.Failed == 0 && c.Errors == 0 && (c.LastOutcome == "pass" || c.LastOutcome == "") {
			continue
		}
		fmt.Fprintf(w, "  ✗ %s (%d of %d runs failed, %d errors)\n", c.Name, c.Failed, c.Runs, c.Errors)
		for i, r := range c.Reasons {
			if i == 3 {
				fmt.Fprintf(w, "      … %d more\n", len(c.Reasons)-3)
				break
			}
			fmt.Fprintf(w, "      %s\n", r)
		}
		if c.RunURL != "" {
			fmt.Fprintf(w, "      %s\n", c.RunURL)
		}
	}
	if d.URL != "" {
		fmt.Fprintf(w, "  details: %s\n", d.URL)
	}
}

func apiMessage(body []byte) string {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		return e.Error
	}
	return clipBytes(body)
}

func clipBytes(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}
