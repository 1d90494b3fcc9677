// Command vigil is a post-deploy synthetic acceptance monitor: it runs scripted checks
// against a live service after each deploy and on a schedule, decides whether the deploy
// is healthy, and tells people and machines when it is not. This file parses flags and
// wires packages; the work happens in them.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/vigil-monitor/vigil/agent"
	"github.com/vigil-monitor/vigil/alerting"
	"github.com/vigil-monitor/vigil/checks"
	"github.com/vigil-monitor/vigil/configs"
)

// Set at build time with -ldflags "-X main.version=... -X main.commit=...".
var (
	version = ""
	commit  = ""
)

// Exit codes shared by every command.
const (
	exitOK      = 0
	exitFailed  = 1
	exitUsage   = 2
	exitUnknown = 3
)

// exitError carries a process exit code through cobra.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return ""
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

func exitWith(code int, err error) error { return &exitError{code: code, err: err} }

func main() {
	os.Exit(execute(os.Args[1:], os.Stdout, os.Stderr))
}

// execute runs the CLI and returns the process exit code; tests call it directly.
func execute(args []string, stdout, stderr io.Writer) int {
	out := &countingWriter{w: stdout}
	root := newRoot(out, stderr)
	root.SetArgs(args)
	cmd, err := root.ExecuteC()
	if err == nil {
		return exitOK
	}
	code, msg := exitUsage, ""
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
		if ee.err != nil {
			msg = ee.err.Error()
			fmt.Fprintln(stderr, ee.err)
		}
	} else {
		// cobra's own errors: unknown command or flag, bad arguments.
		msg = "vigil: " + err.Error()
		fmt.Fprintf(stderr, "%s\nRun 'vigil --help' for usage.\n", msg)
	}
	if out.n == 0 && wantsJSON(cmd, args) {
		// With --json, stdout is JSON whatever happened: a pipeline reading it finds why
		// there is no result, not an empty file.
		_ = json.NewEncoder(stdout).Encode(struct {
			Error    string `json:"error"`
			ExitCode int    `json:"exit_code"`
		}{strings.TrimSpace(msg), code})
	}
	return code
}

// wantsJSON says whether cmd was asked for --json: its flag, or the word among the
// arguments when a bad flag stopped parsing before it.
func wantsJSON(cmd *cobra.Command, args []string) bool {
	if cmd == nil || cmd.Flags().Lookup("json") == nil {
		return false
	}
	if on, err := cmd.Flags().GetBool("json"); err == nil && on {
		return true
	}
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "--json", "--json=true":
			return true
		}
	}
	return false
}

// countingWriter counts what a command wrote to stdout.
type countingWriter struct {
	w io.Writer
	n int
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += n
	return n, err
}

// requireSubcommand makes a command that only groups others (silence, completion) refuse
// a missing or unknown subcommand with a usage error (exit 2), where cobra prints its help
// and exits 0: a script's typo would pass for success.
func requireSubcommand(cmd *cobra.Command) {
	if !cmd.HasSubCommands() || cmd.Runnable() {
		return
	}
	cmd.Args = cobra.ArbitraryArgs
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		var names []string
		for _, sub := range cmd.Commands() {
			if sub.IsAvailableCommand() {
				names = append(names, sub.Name())
			}
		}
		what := "a subcommand is missing"
		if len(args) > 0 {
			what = fmt.Sprintf("unknown subcommand %q", args[0])
		}
		return exitWith(exitUsage, fmt.Errorf("vigil %s: %s: use one of %s (vigil %s --help)", cmd.Name(), what, strings.Join(names, ", "), cmd.Name()))
	}
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "vigil",
		Short: "Post-deploy synthetic acceptance monitor: did that deploy break production?",
		Long: `vigil runs scripted checks against a live service right after each deploy and on a
schedule, compares them with what it saw before the deploy, decides a verdict, and when
the deploy is bad it pages people and calls rollback or halt webhooks.

Start with 'vigil demo'.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(newVersionCmd(), newValidateCmd(), newRunCmd(), newAgentCmd(), newGateCmd(), newPreflightCmd(), newCancelCmd(),
		newDemoCmd(), newSilenceCmd(), newSchemaCmd())
	root.InitDefaultCompletionCmd()
	for _, cmd := range root.Commands() {
		registerNameCompletion(cmd)
		requireSubcommand(cmd)
	}
	return root
}

// configPath resolves -c, then $VIGIL_CONFIG, then ./vigil.yaml.
func configPath(flag string) string {
	if flag != "" {
		return flag
	}
	if p := os.Getenv("VIGIL_CONFIG"); p != "" {
		return p
	}
	return "vigil.yaml"
}

// loadConfig loads and validates; a bad config is exit code 2 with every problem listed in
// one pass: those loading finds and those building what the agent builds finds.
func loadConfig(path string, opts configs.Options) (*configs.Config, error) {
	cfg, err := configs.LoadPartial(configPath(path), opts)
	if err == nil {
		return cfg, nil
	}
	if cfg != nil {
		_, err = agent.BuildRuntime(cfg, checks.Deps{}, alerting.Options{}, time.Now())
	}
	return nil, exitWith(exitUsage, err)
}

// buildInfo returns the version, commit and Go version of this binary.
func buildInfo() (v, c, goVersion string) {
	v, c = version, commit
	info, ok := debug.ReadBuildInfo()
	if ok {
		goVersion = info.GoVersion
		if v == "" && info.Main.Version != "" && info.Main.Version != "(devel)" {
			v = info.Main.Version
		}
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				if c == "" {
					c = s.Value
				}
			case "vcs.modified":
				if s.Value == "true" && c != "" {
					c += "-dirty"
				}
			}
		}
	}
	if v == "" {
		v = "dev"
	}
	if c == "" {
		c = "unknown"
	}
	return v, c, goVersion
}

func userAgent() string {
	v, _, _ := buildInfo()
	return "vigil/" + v
}

func newVersionCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print vigil's version, commit and Go version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v, c, g := buildInfo()
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				return enc.Encode(map[string]string{"version": v, "revision": c, "goversion": g})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "vigil %s (commit %s, %s)\n", v, c, g)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, `print {"version", "revision", "goversion"} as JSON`)
	return cmd
}
