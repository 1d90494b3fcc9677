package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/vigil-monitor/vigil/agent/client"
)

type cancelFlags struct {
	apiFlags
	service, version, deploy, reason string
	json                             bool
	retry                            time.Duration
}

func newCancelCmd() *cobra.Command {
	var f cancelFlags
	cmd := &cobra.Command{
		Use:   "cancel",
		Short: "Tell an agent a deploy's rollout was called off: its verification ends, with no verdict",
		Long: `cancel tells a running vigil agent that the rollout of a deploy it is verifying was called
off (aborted, rolled back by hand, the pipeline cancelled before it): the verification
stops, the deploy ends "cancelled" with no verdict: no rollback or halt webhook, no
page; who heard it start (a Slack thread, a deploy tracker) is told it was cancelled. Whoever waits for its verdict (vigil gate, which then exits 3) is told.
Name the deploy by --deploy ID, or by --service and --version (the service's deploy of
that version verifying now, and no other). Exit codes:

  0  cancelled (now, or by an earlier cancel: a cancel sent twice is fine)
  1  not cancelled: the deploy was decided before the cancel (passed, failed,
     inconclusive, superseded); its verdict stands and is printed
  2  usage error, no such deploy (or none of that version), or the agent could not be
     reached or refused the cancel
  130, 143  interrupted by SIGINT or SIGTERM before the agent answered

An agent that cannot be reached, or answers 502, 503 or 504, is asked again for up to
--retry: a cancel is the same however many times it arrives. The token comes from --token
or $VIGIL_API_TOKEN.`,
		Example: `  vigil cancel --agent http://vigil:9595 --service web --version v2 --reason "rollout aborted"
  vigil cancel --deploy 20261123-101502-9f3c21aa --reason "pipeline cancelled" --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runCancel(cmd, f) },
	}
	f.register(cmd)
	fl := cmd.Flags()
	stringOnce(fl, &f.service, "service", "", "", "the service whose deploy to cancel (with --version)")
	stringOnce(fl, &f.version, "version", "", "", "the version whose verification to cancel (with --service)")
	stringOnce(fl, &f.deploy, "deploy", "", "", "the deploy's id, instead of --service and --version")
	stringOnce(fl, &f.reason, "reason", "", "", "why the rollout was called off, shown with the deploy (one line, at most 500 bytes)")
	fl.BoolVar(&f.json, "json", false, "print the agent's answer as JSON")
	fl.DurationVar(&f.retry, "retry", time.Minute, "how long to keep sending the cancel to an agent that does not answer (unreachable, restarting, 502-504); 0 sends it once")
	return cmd
}

func runCancel(cmd *cobra.Command, f cancelFlags) error {
	switch {
	case f.deploy != "" && (f.service != "" || f.version != ""):
		return exitWith(exitUsage, errors.New("vigil cancel: name the deploy by --deploy, or by --service and --version, not both"))
	case f.deploy == "" && (f.service == "" || f.version == ""):
		return exitWith(exitUsage, errors.New("vigil cancel: name the deploy: --deploy ID, or --service and --version"))
	case f.retry < 0:
		return exitWith(exitUsage, errors.New("vigil cancel: --retry must be 0 (send the cancel once) or positive, e.g. 1m"))
	}
	c, err := f.client("cancel")
	if err != nil {
		return err
	}
	ctx, stop := notifyInterrupt(cmd.Context())
	defer stop()
	onRetry := func(err error, wait time.Duration) {
		fmt.Fprintf(cmd.ErrOrStderr(), "vigil: the agent at %s did not take the cancel (%s); sending it again in %s\n", agentURL(c), shown(err.Error(), shownField), wait)
	}
	what := "deploy " + shown(f.deploy, 200)
	var got *client.Cancelled
	if f.deploy != "" {
		got, err = c.CancelDeploy(ctx, f.deploy, f.reason, f.retry, onRetry)
	} else {
		what = shown(f.service, shownField) + " " + shown(f.version, shownField)
		got, err = c.CancelServiceDeploy(ctx, f.service, f.version, f.reason, f.retry, onRetry)
	}
	var apiErr *client.APIError
	sig, interrupted := interruption(ctx)
	switch {
	case err != nil && interrupted:
		return exitWith(sig.code(), fmt.Errorf("vigil cancel: %v before the agent at %s answered: %s may or may not be cancelled", sig, agentURL(c), what))
	case errors.As(err, &apiErr):
		return exitWith(exitUsage, fmt.Errorf("vigil cancel: the agent refused to cancel %s (HTTP %d): %s", what, apiErr.Status, refusal(apiErr, 4*shownField)))
	case err != nil:
		return exitWith(exitUsage, fmt.Errorf("vigil cancel: cannot reach the agent at %s: %s", agentURL(c), shown(client.Unreachable(err), shownField)))
	}
	out := cmd.OutOrStdout()
	text := out // with --json, stdout holds the JSON alone and this goes to stderr
	if f.json {
		fmt.Fprintln(out, strings.TrimRight(string(got.Raw), "\n"))
		text = cmd.ErrOrStderr()
	}
	d := got.Deploy
	if got.Cancelled {
		fmt.Fprintf(text, "vigil: deploy %s (%s %s) cancelled: its verification stopped; no verdict, no rollback, no page\n",
			shown(d.ID, 200), shown(d.Service, shownField), shown(d.Version, shownField))
		if d.URL != "" {
			fmt.Fprintf(text, "  details: %s\n", shown(d.URL, shownField))
		}
		return nil
	}
	fmt.Fprintf(text, "vigil: deploy %s (%s %s) was decided before the cancel; its verdict stands:\n",
		shown(d.ID, 200), shown(d.Service, shownField), shown(d.Version, shownField))
	printVerdict(text, d)
	return exitWith(exitFailed, nil)
}
