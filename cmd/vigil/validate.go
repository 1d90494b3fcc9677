package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	"github.com/vigil-monitor/vigil/agent"
	"github.com/vigil-monitor/vigil/alerting"
	"github.com/vigil-monitor/vigil/checks"
	"github.com/vigil-monitor/vigil/configs"
)

func newValidateCmd() *cobra.Command {
	var cfgPath string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "validate",
		Short: "Load and compile the config (assertions, templates) without running anything",
		Long: `validate loads the config, applies defaults, checks every key and reference, and
compiles every assertion and template. It runs nothing. Exit code 0: valid; 2: invalid,
with every problem listed as FILE:LINE: KEY.PATH: what is wrong; how to fix it.
With --json the answer is one JSON object on stdout, valid or not (editors and CI read it).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cfgPath, configs.Options{})
			var rt *agent.Runtime
			if err == nil {
				// Exactly what the agent builds (agent.New does the same), so a config that
				// validates is one the agent runs.
				rt, err = agent.BuildRuntime(cfg, checks.Deps{HTTP: checks.NewHTTPClient(userAgent())}, alerting.Options{}, time.Now())
			}
			if asJSON {
				return writeValidation(cmd.OutOrStdout(), configPath(cfgPath), cfg, rt, err)
			}
			if err != nil {
				var ee *exitError
				if errors.As(err, &ee) {
					return err
				}
				return exitWith(exitUsage, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: valid: %d checks, %d services, %d notifiers\n",
				cfg.File, len(rt.Order), len(cfg.Services), len(rt.Notifiers))
			return nil
		},
	}
	cmd.Flags().StringVarP(&cfgPath, "config", "c", "", "config file (default $VIGIL_CONFIG, then ./vigil.yaml)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON: {valid, file, checks, services, notifiers} or {valid, file, errors}")
	return cmd
}

// validation is `vigil validate --json`'s answer.
type validation struct {
	Valid     bool              `json:"valid"`
	File      string            `json:"file"`
	Checks    *int              `json:"checks,omitempty"` // set (0 too) when valid
	Services  *int              `json:"services,omitempty"`
	Notifiers *int              `json:"notifiers,omitempty"`
	Errors    []validationError `json:"errors,omitempty"`
}

type validationError struct {
	File    string `json:"file,omitempty"`
	Line    int    `json:"line,omitempty"`
	Source  string `json:"source,omitempty"`
	Path    string `json:"path,omitempty"`
	Message string `json:"message"`
	Fix     string `json:"fix,omitempty"`
}

func writeValidation(w io.Writer, file string, cfg *configs.Config, rt *agent.Runtime, err error) error {
	v := validation{Valid: err == nil, File: file}
	if cfg != nil && cfg.File != "" {
		v.File = cfg.File
	}
	if err == nil {
		checks, services, notifiers := len(rt.Order), len(cfg.Services), len(rt.Notifiers)
		v.Checks, v.Services, v.Notifiers = &checks, &services, &notifiers
	}
	var es configs.Errors
	var one *configs.Error
	switch {
	case err == nil:
	case errors.As(err, &es):
		for _, e := range es {
			v.Errors = append(v.Errors, validationError{e.File, e.Line, e.Source, e.Path, e.Msg, e.Fix})
		}
	case errors.As(err, &one):
		v.Errors = append(v.Errors, validationError{one.File, one.Line, one.Source, one.Path, one.Msg, one.Fix})
	default:
		msg := err.Error()
		var ee *exitError
		if errors.As(err, &ee) && ee.err != nil {
			msg = ee.err.Error()
		}
		v.Errors = append(v.Errors, validationError{Message: msg})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if werr := enc.Encode(v); werr != nil {
		return exitWith(exitUsage, fmt.Errorf("vigil validate: --json: writing the answer: %w", werr))
	}
	if err != nil {
		return exitWith(exitUsage, nil)
	}
	return nil
}
