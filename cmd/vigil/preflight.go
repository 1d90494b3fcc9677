package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/vigil-monitor/vigil/agent/client"
)

type preflightFlags struct {
	apiFlags
	service, version string
	json, warnOnly   bool
	retry            time.Duration
}

func newPreflightCmd() *cobra.Command {
	var f preflightFlags
	cmd := &cobra.Command{
		Use:   "preflight",
		Short: "Ask an agent, before a rollout, whether this version of the service may go out",
		Long: `preflight asks a running vigil agent, before the pipeline rolls a version out, what it
knows against doing so, and exits with a code the pipeline acts on:

  0  clear: nothing blocks the deploy (warnings, if any, are printed)
  1  blocked: this version failed verification before (anywhere: another environment,
     an earlier attempt), or the service's rollout was halted and this is not the
     version to go back to
  2  usage error, or the agent could not be reached or did not answer within --retry
  130, 143  interrupted by SIGINT or SIGTERM before the agent answered

Warnings do not block: a deploy still being verified (this one would supersede it), a
last deploy that failed with nothing passed since, checks already failing (and what a
deploy that does not end it gets), checks with no passing run to
compare with, a silence or maintenance window (a failed verdict would page no one and
call no rollback). --warn-only prints what
blocks and exits 0. An agent that cannot be reached, or answers 502, 503 or 504
(restarting, its store busy, a proxy with nothing behind it), is asked again, as its
Retry-After says or 1 s, 2 s, 4 s... up to 10 s apart, for up to --retry. The token comes
from --token or $VIGIL_API_TOKEN.`,
		Example: `  vigil preflight --agent http://vigil:9595 --service web --version v2 && kubectl apply -f web.yaml
  vigil preflight --service api --version "$GIT_SHA" --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runPreflight(cmd, f) },
	}
	f.register(cmd)
	fl := cmd.Flags()
	stringOnce(fl, &f.service, "service", "", "", "the service about to be deployed (required)")
	stringOnce(fl, &f.version, "version", "", "", "the version about to go out (required)")
	fl.BoolVar(&f.json, "json", false, "print the agent's answer as JSON")
	fl.BoolVar(&f.warnOnly, "warn-only", false, "print what blocks the deploy, and exit 0 all the same")
	fl.DurationVar(&f.retry, "retry", time.Minute, "how long to keep asking an agent that does not answer (unreachable, restarting, 502-504); 0 asks once")
	return cmd
}

func runPreflight(cmd *cobra.Command, f preflightFlags) error {
	switch {
	case f.service == "" || f.version == "":
		return exitWith(exitUsage, errors.New("vigil preflight: --service and --version are required"))
	case f.retry < 0:
		return exitWith(exitUsage, errors.New("vigil preflight: --retry must be 0 (ask once) or positive, e.g. 1m"))
	}
	c, err := f.client("preflight")
	if err != nil {
		return err
	}
	ctx, stop := notifyInterrupt(cmd.Context()) // a cancelled job while it asks again
	defer stop()
	p, raw, err := c.Preflight(ctx, f.service, f.version, f.retry, func(err error, wait time.Duration) {
		fmt.Fprintf(cmd.ErrOrStderr(), "vigil: the agent at %s did not answer (%s); asking again in %s\n", agentURL(c), shown(err.Error(), shownField), wait)
	})
	var apiErr *client.APIError
	sig, interrupted := interruption(ctx)
	switch {
	case err != nil && interrupted:
		return exitWith(sig.code(), fmt.Errorf("vigil preflight: %v before the agent at %s answered: no answer on %s %s", sig, agentURL(c), f.service, f.version))
	case errors.As(err, &apiErr):
		return exitWith(exitUsage, fmt.Errorf("vigil preflight: the agent refused (HTTP %d): %s", apiErr.Status, refusal(apiErr, shownField)))
	case err != nil:
		return exitWith(exitUsage, fmt.Errorf("vigil preflight: cannot reach the agent at %s: %s", agentURL(c), shown(client.Unreachable(err), shownField)))
	}
	out := cmd.OutOrStdout()
	if f.json {
		fmt.Fprintln(out, strings.TrimRight(string(raw), "\n"))
	} else {
		verdict := "clear to deploy"
		if !p.Clear {
			verdict = "blocked"
		}
		// The agent's text, as gate prints it: one line each, control characters escaped.
		f := func(s string) string { return shown(s, 4*shownField) }
		fmt.Fprintf(out, "vigil: %s %s: %s\n", f(p.Service), f(p.Version), verdict)
		for _, n := range p.Blocked {
			fmt.Fprintf(out, "  blocked (%s): %s\n", f(n.Rule), f(n.Message))
			if n.URL != "" {
				fmt.Fprintf(out, "    %s\n", f(n.URL))
			}
		}
		for _, n := range p.Warnings {
			fmt.Fprintf(out, "  warning (%s): %s\n", f(n.Rule), f(n.Message))
		}
	}
	if !p.Clear {
		if f.warnOnly {
			fmt.Fprintln(cmd.ErrOrStderr(), "vigil preflight: --warn-only: going on all the same")
			return nil
		}
		return exitWith(exitFailed, fmt.Errorf("vigil preflight: %s %s is blocked", shown(p.Service, shownField), shown(p.Version, shownField)))
	}
	return nil
}
