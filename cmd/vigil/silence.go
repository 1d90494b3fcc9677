package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/user"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/vigil-monitor/vigil/agent/client"
)

// agentFlags of the commands that talk to a running agent's API.
type apiFlags struct {
	agent, token string
}

func (f *apiFlags) register(cmd *cobra.Command) {
	stringOnce(cmd.PersistentFlags(), &f.agent, "agent", "", os.Getenv("VIGIL_AGENT"), "the agent's URL (default $VIGIL_AGENT)")
	stringOnce(cmd.PersistentFlags(), &f.token, "token", "", "", "API token (default $VIGIL_API_TOKEN)")
}

func (f *apiFlags) client(command string) (*client.Client, error) {
	return newClient(command, f.agent, f.token)
}

// apiFailure turns an API call's error into the exit code and message a person acts on.
func apiFailure(command string, c *client.Client, err error) error {
	var apiErr *client.APIError
	if errors.As(err, &apiErr) {
		return exitWith(exitFailed, fmt.Errorf("vigil %s: the agent refused (HTTP %d): %s", command, apiErr.Status, refusal(apiErr, 4*shownField)))
	}
	return exitWith(exitUsage, fmt.Errorf("vigil %s: cannot reach the agent at %s: %s", command, agentURL(c), client.Unreachable(err)))
}

func newSilenceCmd() *cobra.Command {
	var f apiFlags
	cmd := &cobra.Command{
		Use:   "silence",
		Short: "Mute a check's or a service's notifications for a while (create, list, delete)",
		Long: `silence manages an agent's silences over its API. A silenced check or service still
runs and records its results; its notifications are recorded as muted, not sent.`,
		Example: `  vigil silence create --service web --for 2h --reason "db migration" --agent http://127.0.0.1:9595
  vigil silence list
  vigil silence delete 830ee3b7de7d`,
	}
	f.register(cmd)
	cmd.AddCommand(newSilenceCreateCmd(&f), newSilenceListCmd(&f), newSilenceDeleteCmd(&f))
	return cmd
}

func newSilenceCreateCmd(f *apiFlags) *cobra.Command {
	var req client.SilenceRequest
	var dur time.Duration
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Silence one check or one service",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case (req.Check == "") == (req.Service == ""):
				return exitWith(exitUsage, errors.New("vigil silence create: name exactly one of --check or --service"))
			case dur <= 0:
				return exitWith(exitUsage, errors.New("vigil silence create: --for must be positive, e.g. --for 2h"))
			case req.Reason == "":
				return exitWith(exitUsage, errors.New(`vigil silence create: --reason is required: people see it next to the muted alerts`))
			}
			c, err := f.client("silence create")
			if err != nil {
				return err
			}
			req.Duration = dur.String()
			if req.CreatedBy == "" {
				req.CreatedBy = whoami()
			}
			s, err := c.AddSilence(cmd.Context(), req)
			if err != nil {
				return apiFailure("silence create", c, err)
			}
			if asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(s)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "silence %s: %s muted until %s\n", s.ID, silenced(*s), s.EndsAt.UTC().Format(time.RFC3339))
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&req.Check, "check", "", "the check to silence")
	fl.StringVar(&req.Service, "service", "", "the service to silence (its deploys and its checks' incidents)")
	fl.DurationVar(&dur, "for", 0, "how long, e.g. 30m or 2h (at most 30 days)")
	fl.StringVar(&req.Reason, "reason", "", "why (required)")
	fl.StringVar(&req.CreatedBy, "by", "", "who silences (default $USER)")
	fl.BoolVar(&asJSON, "json", false, "print the silence as JSON")
	registerNameCompletion(cmd)
	return cmd
}

func newSilenceListCmd(f *apiFlags) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the silences that have not ended",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.client("silence list")
			if err != nil {
				return err
			}
			list, err := c.Silences(cmd.Context())
			if err != nil {
				return apiFailure("silence list", c, err)
			}
			if asJSON {
				if list == nil {
					list = []client.Silence{}
				}
				return json.NewEncoder(cmd.OutOrStdout()).Encode(list)
			}
			if len(list) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "no active silences")
				return nil
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tMUTES\tUNTIL\tBY\tREASON")
			for _, s := range list {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.ID, silenced(s), s.EndsAt.UTC().Format(time.RFC3339), s.CreatedBy, s.Reason)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the silences as JSON")
	return cmd
}

func newSilenceDeleteCmd(f *apiFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "delete ID",
		Short: "End a silence now",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client("silence delete")
			if err != nil {
				return err
			}
			if err := c.DeleteSilence(cmd.Context(), args[0]); err != nil {
				return apiFailure("silence delete", c, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "silence %s ended\n", args[0])
			return nil
		},
	}
}

func silenced(s client.Silence) string {
	if s.Check != "" {
		return "check " + s.Check
	}
	return "service " + s.Service
}

// whoami is who runs the command: $USER, else the account's name (a container has no
// $USER), else "".
func whoami() string {
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return ""
}
