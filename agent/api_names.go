package agent

// Names a caller gives that the config does not have: every API answer and page that names
// an unknown check or service says so in the same words, with the nearest name, as a
// deploy's registration does (`unknown service "wbe"; did you mean "web"?`). The status
// code stays each endpoint's own (docs/API.md).

import (
	"fmt"
	"slices"

	"github.com/vigil-monitor/vigil/configs"
	"github.com/vigil-monitor/vigil/internal/text"
)

// unknownCheck is the message for a check the config does not have, with the nearest name.
func unknownCheck(rt *Runtime, name string) string {
	return fmt.Sprintf("unknown check %q; %s", text.Ellipsis(name, 80), configs.DidYouMean(name, checkNames(rt)))
}

// checkNames are the config's check names, sorted.
func checkNames(rt *Runtime) []string {
	known := make([]string, 0, len(rt.Order))
	for _, c := range rt.Order {
		known = append(known, c.Name)
	}
	slices.Sort(known)
	return known
}

// nearestValue is `; did you mean "x"?` for a value close to one of valid, "" otherwise
// (the message lists the valid values itself).
func nearestValue(s string, valid []string) string {
	if n := configs.Nearest(s, valid); n != "" {
		return fmt.Sprintf("; did you mean %q?", n)
	}
	return ""
}
