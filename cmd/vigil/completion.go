package main

import (
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/vigil-monitor/vigil/configs"
)

// Shell completion: cobra's `vigil completion bash|zsh|fish|powershell` writes the script;
// the functions here complete check and service names from the config the command line
// names (-c, else $VIGIL_CONFIG, else ./vigil.yaml). A config that does not load
// completes nothing rather than printing errors into the shell.

// configNames reads the check and service names of the config at path, loading it the
// lenient way (secrets unset in the shell are no reason not to complete).
func configNames(path string) (checkNames, services []string) {
	cfg, _ := configs.LoadPartial(configPath(path), configs.Options{})
	if cfg == nil {
		return nil, nil
	}
	for _, c := range cfg.Checks {
		if c != nil && c.Name != "" {
			checkNames = append(checkNames, c.Name)
		}
	}
	for name := range cfg.Services {
		services = append(services, name)
	}
	sort.Strings(services)
	return checkNames, services
}

// completeNames completes a flag with check names (services false) or service names.
func completeNames(services bool) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return func(cmd *cobra.Command, _ []string, prefix string) ([]string, cobra.ShellCompDirective) {
		path, _ := cmd.Flags().GetString("config")
		checkNames, svcs := configNames(path)
		list := checkNames
		if services {
			list = svcs
		}
		var out []string
		for _, n := range list {
			if strings.HasPrefix(n, prefix) {
				out = append(out, n)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

// registerNameCompletion completes --check and --service on cmd where it has them.
func registerNameCompletion(cmd *cobra.Command) {
	for flag, services := range map[string]bool{"check": false, "service": true} {
		if cmd.Flags().Lookup(flag) != nil {
			_ = cmd.RegisterFlagCompletionFunc(flag, completeNames(services))
		}
	}
}
