package main

import (
	"fmt"

	"github.com/spf13/cobra"
	"github.com/vigil-monitor/vigil/configs"
)

func newSchemaCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "schema",
		Short: "Print the JSON Schema of the config file, for editors",
		Long: `Print the JSON Schema (2020-12) of vigil's config file, generated from the types the
loader reads, so that an editor with a YAML language server completes keys and underlines
mistakes as you type. Point a config at it with a first line such as:

  # yaml-language-server: $schema=vigil.schema.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			raw, err := configs.Schema()
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), string(raw))
			return err
		},
	}
}
