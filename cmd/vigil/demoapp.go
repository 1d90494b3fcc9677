package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/vigil-monitor/vigil/demo"
)

// envDemoRollbackSecret holds the secret the sample app verifies rollback webhooks with.
const envDemoRollbackSecret = "VIGIL_DEMO_ROLLBACK_SECRET"

func newDemoAppCmd() *cobra.Command {
	var listen, version string
	cmd := &cobra.Command{
		Use:   "app",
		Short: "Serve only the demo's sample shop, as the app beside a vigil sidecar",
		Long: `app serves the sample shop of 'vigil demo' and nothing else, until SIGTERM or Ctrl-C: the
app the Compose and Kubernetes sidecar examples put beside a vigil agent.

Its page renders with version v1 and dies at startup with v2 (a minifier renamed a function
the startup code looks up by name), while every API keeps answering 200. Switch versions
with POST /admin/deploy {"version":"v2"}. POST /admin/rollback is the receiving end of
vigil's rollback webhook: it verifies the signature with $` + envDemoRollbackSecret + `
(refused when unset) and rolls back to the version before the failed one.`,
		Example: `  vigil demo app --listen 127.0.0.1:8080
  curl -X POST -d '{"version":"v2"}' http://127.0.0.1:8080/admin/deploy`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if version != demo.GoodVersion && version != demo.BrokenVersion {
				return exitWith(exitUsage, fmt.Errorf("vigil demo app: --version is %s (renders) or %s (dies at startup), not %q",
					demo.GoodVersion, demo.BrokenVersion, version))
			}
			app, err := demo.ListenApp(listen, version)
			if err != nil {
				return exitWith(exitUsage, fmt.Errorf("vigil demo app: %w", err))
			}
			app.RollbackSecret = []byte(os.Getenv(envDemoRollbackSecret))
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
			defer stop()
			fmt.Fprintf(cmd.OutOrStdout(), "vigil demo app: the sample shop %s is listening on %s\n", app.Version(), app.URL)
			<-ctx.Done()
			return app.Close()
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:8080", "address to serve the shop on")
	cmd.Flags().StringVar(&version, "version", demo.GoodVersion, "the version to start with: v1 (good) or v2 (broken bundle)")
	return cmd
}
