package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"github.com/vigil-monitor/vigil/agent"
	"github.com/vigil-monitor/vigil/alerting"
	"github.com/vigil-monitor/vigil/checks"
	"github.com/vigil-monitor/vigil/configs"
)

func newValidateCmd() *cobra.Command {
	var cfgPath string
	cmd := &cobra.Command{
		Use:   "validate",
		Short: "Load and compile the config (assertions, templates) without running anything",
		Long: `validate loads the config, applies defaults, checks every key and reference, and
compiles every assertion and template. It runs nothing. Exit code 0: valid; 2: invalid,
with every problem listed as FILE:LINE: KEY.PATH: what is wrong; how to fix it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cfgPath, configs.Options{})
			if err != nil {
				return err
			}
			// Exactly what the agent builds (agent.New does the same), so a config that
			// validates is one the agent runs.
			rt, err := agent.BuildRuntime(cfg, checks.Deps{HTTP: checks.NewHTTPClient(userAgent())}, alerting.Options{}, time.Now())
			if err != nil {
				return exitWith(exitUsage, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: valid: %d checks, %d services, %d notifiers\n",
				cfg.File, len(rt.Order), len(cfg.Services), len(rt.Notifiers))
			return nil
		},
	}
	cmd.Flags().StringVarP(&cfgPath, "config", "c", "", "config file (default $VIGIL_CONFIG, then ./vigil.yaml)")
	return cmd
}
