package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/vigil-monitor/vigil/agent/client"
)

type gateFlags struct {
	agent, service, version, environment, commit, token string
	wait, registerRetry                                 time.Duration
	json                                                bool
	links                                               []string
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
  3  inconclusive, superseded by a newer deploy, cancelled (its rollout was called
     off: vigil cancel), no verdict within --wait, or a rollback that failed too (the
     deploy before it failed, and this one put the version that passed before it
     back: rolling it back again would not help)
  130, 143  interrupted by SIGINT or SIGTERM (Ctrl-C, a cancelled job): the wait ends,
     the verification does not; gate says so and prints the deploy as it stands

An agent that cannot be reached, or answers 502, 503 or 504 (restarting, its store
refusing writes for a moment), is asked again for up to --register-retry; the deploy is
sent under an Idempotency-Key, so a registration whose answer was lost is not registered
twice. The token comes from --token or $VIGIL_API_TOKEN.`,
		Example: `  vigil gate --agent http://vigil:9595 --service web --version v2 --wait 10m
  VIGIL_API_TOKEN=s3cret vigil gate --agent https://vigil.internal --service api --version "$GIT_SHA" --environment prod`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runGate(cmd, f) },
	}
	fl := cmd.Flags()
	stringOnce(fl, &f.agent, "agent", "", os.Getenv("VIGIL_AGENT"), "the agent's URL (default $VIGIL_AGENT)")
	stringOnce(fl, &f.service, "service", "", "", "the service being deployed (required)")
	stringOnce(fl, &f.version, "version", "", "", "the version going out (required)")
	stringOnce(fl, &f.environment, "environment", "", "", "the environment, e.g. prod")
	stringOnce(fl, &f.commit, "commit", "", "", "the commit being deployed")
	stringOnce(fl, &f.token, "token", "", "", "API token (default $VIGIL_API_TOKEN)")
	fl.DurationVar(&f.wait, "wait", 10*time.Minute, "how long to wait for the verdict")
	fl.DurationVar(&f.registerRetry, "register-retry", time.Minute, "how long to keep sending the deploy to an agent that does not take it (unreachable, restarting); 0 sends it once")
	fl.BoolVar(&f.json, "json", false, "print the final deploy as JSON")
	fl.StringArrayVar(&f.links, "link", nil, "a link people open from the verdict, NAME=URL (repeatable), e.g. --link \"CI run=$CI_JOB_URL\"")
	return cmd
}

// parseLinks reads --link NAME=URL values.
func parseLinks(values []string) ([]client.Link, error) {
	var out []client.Link
	for _, v := range values {
		name, u, ok := strings.Cut(v, "=")
		name, u = strings.TrimSpace(name), strings.TrimSpace(u)
		pu, err := url.Parse(u)
		if !ok || name == "" || err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			return nil, fmt.Errorf("vigil gate: --link %q: write NAME=URL with an http(s) URL, e.g. --link diff=https://git.example/compare/v1...v2", v)
		}
		out = append(out, client.Link{Name: name, URL: u})
	}
	return out, nil
}

func runGate(cmd *cobra.Command, f gateFlags) error {
	out := cmd.OutOrStdout()
	text := out // what gate says; with --json, stdout holds the JSON alone and this goes to stderr
	if f.json {
		text = cmd.ErrOrStderr()
	}
	switch {
	case f.agent == "":
		return agentRequired("gate")
	case f.service == "" || f.version == "":
		return exitWith(exitUsage, errors.New("vigil gate: --service and --version are required"))
	case f.wait <= 0:
		return exitWith(exitUsage, errors.New("vigil gate: --wait must be positive, e.g. 10m"))
	case f.registerRetry < 0:
		return exitWith(exitUsage, errors.New("vigil gate: --register-retry must be 0 (send the deploy once) or positive, e.g. 1m"))
	}
	links, err := parseLinks(f.links)
	if err != nil {
		return exitWith(exitUsage, err)
	}
	c, err := newClient("gate", f.agent, f.token)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(f.wait)
	// A runner cancelling the job (SIGTERM; GitHub Actions sends SIGINT first) or a
	// person's Ctrl-C ends the wait, not the verification: gate says what it leaves behind.
	ctx, stop := notifyInterrupt(cmd.Context())
	defer stop()
	// An agent restarting (its own rollout, a node drained) or a store refusing writes for
	// a moment is ridden out for up to --register-retry; the registration is sent again
	// under the same key, so an answer lost on the way registers nothing twice.
	id, err := c.RegisterDeploy(ctx, client.DeployRequest{Service: f.service, Version: f.version, Environment: f.environment, Commit: f.commit, Links: links},
		min(f.registerRetry, f.wait), func(err error, wait time.Duration) {
			fmt.Fprintf(cmd.ErrOrStderr(), "vigil: the agent at %s did not take the deploy (%s); sending it again in %s\n", agentURL(c), shown(err.Error(), shownField), wait)
		})
	var apiErr *client.APIError
	if sig, ok := interruption(ctx); ok && err != nil { // registered, it is reported below as any interrupted wait
		return exitWith(sig.code(), fmt.Errorf("vigil gate: %v before the agent at %s answered the registration: %s %s may or may not be registered (GET /api/v1/deploys?service=%s shows it)",
			sig, agentURL(c), f.service, f.version, f.service))
	}
	switch {
	case errors.As(err, &apiErr) && apiErr.Status >= 500:
		return exitWith(exitUsage, fmt.Errorf("vigil gate: the agent at %s did not take the deploy (HTTP %d): %s", agentURL(c), apiErr.Status, shown(apiErr.Message, shownField)))
	case errors.As(err, &apiErr):
		return exitWith(exitUsage, fmt.Errorf("vigil gate: the agent refused the deploy (HTTP %d): %s", apiErr.Status, refusal(apiErr, shownField)))
	case err != nil:
		return exitWith(exitUsage, fmt.Errorf("vigil gate: cannot reach the agent at %s: %s", agentURL(c), client.Unreachable(err)))
	}
	shownID := shown(id, 200) // what the agent named it, as it is printed
	fmt.Fprintf(text, "vigil: deploy %s registered: %s %s; waiting up to %s for the verdict\n", shownID, f.service, f.version, f.wait)

	d := &client.Deploy{}
	var last []byte // the newest answer about the deploy: what --json prints
	failures := 0
	var lost error // the last poll's failure; nil once the agent answers again
	for {
		left := time.Until(deadline)
		if left <= 0 {
			break
		}
		poll := max(min(left, 30*time.Second).Round(time.Second), time.Second)
		asked := time.Now()
		// An agent that holds the poll and never answers is given until the wait ends,
		// and a little for an answer on its way: --wait bounds gate, whatever the agent does.
		pctx, cancel := context.WithDeadline(ctx, deadline.Add(pollGrace))
		got, raw, err := c.Deploy(pctx, id, poll)
		if err != nil && errors.Is(pctx.Err(), context.DeadlineExceeded) {
			err = fmt.Errorf("it took the poll and gave no answer by the end of --wait %s", f.wait)
		}
		cancel()
		if ctx.Err() != nil {
			break
		}
		if err != nil && !client.Permanent(err) && (!errors.As(err, &apiErr) || apiErr.Status >= 500) {
			// The agent may be restarting, or rescheduled: verdicts survive restarts, so keep
			// asking until --wait ends, saying so now and then.
			failures++
			lost = err
			pause := min(time.Duration(failures)*time.Second, 10*time.Second)
			what := "does not answer (" + err.Error() + ")"
			if errors.As(err, &apiErr) {
				what = "answered " + apiErr.Error() // a 5xx: restarting, busy, a proxy with nothing behind it
				if apiErr.RetryAfter > 0 {
					pause = apiErr.RetryAfter // when the agent said to come back
				}
			}
			pause = min(pause, max(time.Until(deadline), 0))
			if failures == 1 || failures%6 == 0 {
				fmt.Fprintf(cmd.ErrOrStderr(), "vigil: the agent at %s %s; asking again until the wait ends in %s\n",
					agentURL(c), shown(what, shownField), time.Until(deadline).Round(time.Second))
			}
			pauseFor(ctx, pause)
			continue
		}
		failures, lost = 0, nil
		if err != nil {
			return exitWith(exitUsage, fmt.Errorf("vigil gate: reading deploy %s failed: %s", shownID, shown(err.Error(), shownField)))
		}
		d, last = got, raw
		if d.Status != "verifying" {
			break
		}
		// A long-poll answered at once (an agent or a proxy that drops ?wait=) is not
		// asked again at once: at most one poll a second.
		pauseFor(ctx, min(time.Second-time.Since(asked), time.Until(deadline)))
	}
	sig, interrupted := interruption(ctx)
	if interrupted || (last == nil && lost == nil) {
		// The deploy as it stands now, read on a context of its own: what the pipeline's
		// log and --json keep after a signal, or when the registration took all of --wait
		// and no poll was sent. A verdict that came meanwhile is reported as any verdict.
		rctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		got, raw, err := c.Deploy(rctx, id, 0)
		cancel()
		if err == nil {
			d, last, lost = got, raw, nil
		}
	}
	where := d.URL
	if where == "" {
		where = agentURL(c) + "/api/v1/deploys/" + url.PathEscape(id)
	}
	if interrupted {
		if d.Status == "" || d.Status == "verifying" {
			printJSON(out, f.json, last)
			return exitWith(sig.code(), fmt.Errorf("vigil gate: %v while waiting for the verdict: deploy %s (%s %s) has none yet; the agent goes on verifying it, and calls its rollback and halt webhooks should it fail: %s",
				sig, shownID, f.service, f.version, shown(where, shownField)))
		}
	}
	if lost != nil {
		// No answer at the end: whether the deploy passed is unknown, and that is the
		// pipeline's problem to look at (exit 2), not a verification still running (3).
		return exitWith(exitUsage, fmt.Errorf("vigil gate: the agent at %s is unreachable (%s); deploy %s has no verdict from it", agentURL(c), shown(lost.Error(), shownField), shownID))
	}
	printJSON(out, f.json, last)
	printVerdict(text, d)
	switch {
	case d.Status == "passed":
		return nil
	case d.Status == "failed" && d.RollbackOf != "":
		// A rollback that fails too: rolling it back would go further back, or back to
		// the version that failed. The pipeline waits for a person, as for inconclusive.
		fmt.Fprintf(text, "vigil: this deploy rolled back deploy %s, which failed, and it fails too: the cause is likely neither version; not a rollback signal (exit 3): a person decides\n", shown(d.RollbackOf, 200))
		return exitWith(exitUnknown, nil)
	case d.Status == "failed":
		return exitWith(exitFailed, nil)
	case d.Status == "superseded":
		fmt.Fprintf(text, "vigil: %s: vigil gives no verdict on this deploy; the newer one's is the one to wait for; nothing to roll back (exit 3)\n", supersededBy(c, d))
	case d.Status == "cancelled":
		// Neither a pass nor a failure: the rollout was called off, and there is nothing
		// to roll back; the pipeline stops for a person, as for a superseded deploy.
		fmt.Fprintln(text, "vigil: the deploy was cancelled: its rollout was called off, and vigil gives no verdict on it; nothing to roll back (exit 3)")
	case d.Status == "verifying" || d.Status == "":
		msg := fmt.Sprintf("vigil: no verdict within %s; the agent is still verifying: %s", f.wait, shown(where, shownField))
		if last == nil { // no answer about the deploy to print: --json prints this instead
			return exitWith(exitUnknown, errors.New(msg))
		}
		fmt.Fprintln(text, msg)
	}
	return exitWith(exitUnknown, nil)
}

// pollGrace is how long past --wait gate waits for a poll's answer already on its way.
const pollGrace = 3 * time.Second

// pauseFor waits d (nothing when d <= 0), or until ctx ends.
func pauseFor(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
