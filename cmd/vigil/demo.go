package main

import (
	"errors"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/vigil-monitor/vigil/configs"
	"github.com/vigil-monitor/vigil/demo"
)

func newDemoCmd() *cobra.Command {
	var keep bool
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Deploy a built-in sample app good, then broken, and watch vigil catch it and roll it back",
		Long: `demo starts a small sample shop on a loopback port and a vigil agent beside it. It deploys
the shop's good version (vigil verifies it: passed), then a version whose minified bundle
dies at startup while every API still answers: vigil's browser check catches it, the
verdict is failed, a signed rollback webhook rolls the shop back, Slack (a loopback
stand-in for the Slack Web API) gets the evidence, and vigil verifies the rollback.

It needs Chromium (Debian's chromium package); scripts/demo installs it when missing.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			env, err := newRuntime(configs.Default(), nil) // tracing from OTEL_* variables, if any
			if err != nil {
				return exitWith(exitUsage, err)
			}
			defer env.Close()
			// Ctrl-C or SIGTERM ends the demo as it ends itself: the shop, the agent and
			// Chromium stopped, their folders removed (the demo's config holds a secret).
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			err = demo.Run(ctx, demo.Options{Out: cmd.OutOrStdout(), Deps: env.deps, Tracing: env.tracing,
				BrowserReady: env.browserReady, Keep: keep})
			switch {
			case err != nil && ctx.Err() != nil && cmd.Context().Err() == nil:
				return exitWith(exitFailed, errors.New("vigil demo: interrupted; stopped and cleaned up"))
			case err != nil:
				return exitWith(exitFailed, err)
			}
			return nil
		},
	}
	cmd.AddCommand(newDemoAppCmd())
	cmd.Flags().BoolVar(&keep, "keep", false, "keep the sample shop, the agent and its status page running after the demo, until Ctrl-C")
	return cmd
}
