package main

import (
	"github.com/spf13/cobra"
	"github.com/vigil-monitor/vigil/demo"
)

func newDemoCmd() *cobra.Command {
	var keep bool
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Deploy a built-in sample app good, then broken, and watch vigil catch it",
		Long: `demo starts a small sample app on a loopback port, checks its good version (all pass),
deploys a broken version, and shows what vigil saw. It needs nothing but this binary
(and Chromium for the browser part, which it skips with a hint when missing).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return demo.Run(cmd.Context(), demo.Options{Out: cmd.OutOrStdout(), UserAgent: userAgent(), Keep: keep})
		},
	}
	cmd.Flags().BoolVar(&keep, "keep", false, "keep the sample app and its files after the demo, until Ctrl-C")
	return cmd
}
