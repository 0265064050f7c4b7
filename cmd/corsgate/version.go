package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/corsgate/corsgate/internal/version"
)

func init() { register(newVersionCmd) }

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print corsgate's version",
		Long: "Print corsgate's version: the one set at build time with -ldflags, else the module\n" +
			"version recorded by go install, else \"devel\".",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintln(cmd.OutOrStdout(), version.Version)
			return err
		},
	}
}
