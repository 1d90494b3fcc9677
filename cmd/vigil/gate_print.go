package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/vigil-monitor/vigil/agent/client"
	"github.com/vigil-monitor/vigil/internal/text"
)

// How much of a verdict gate prints: the status page (details) has the rest.
const (
	shownField  = 500 // bytes of one reason, name or URL
	shownChecks = 30  // failing checks listed
)

// printJSON prints the agent's answer about the deploy, indented (--json), when there is one.
func printJSON(w io.Writer, on bool, raw []byte) {
	if !on || raw == nil {
		return
	}
	var pretty bytes.Buffer
	_ = json.Indent(&pretty, raw, "", "  ")
	fmt.Fprintln(w, pretty.String())
}

// shown is s as gate prints it into a log: on one line, its control characters written as
// Go escapes (an escape sequence would recolour or clear the log, a carriage return
// overwrite a line, a newline start one a CI runner reads as a command, "::error::"), cut
// to n bytes. The agent's text quotes what the service under test sent.
func shown(s string, n int) string {
	if len(s) > 8*n {
		s = s[:text.CutAt(s, 8*n)] // megabytes from the agent: escape only what can be shown
	}
	return text.Ellipsis(text.Inert(s), n)
}

func printVerdict(w io.Writer, d *client.Deploy) {
	if d.Status == "" || d.Status == "verifying" {
		return
	}
	f := func(s string) string { return shown(s, shownField) }
	fmt.Fprintf(w, "vigil: %s %s: %s\n", f(d.Service), f(d.Version), strings.ToUpper(f(d.Status)))
	if d.Reason != "" {
		fmt.Fprintf(w, "  %s\n", shown(d.Reason, 4*shownField))
	}
	if d.Halt != "" {
		fmt.Fprintf(w, "  halt the rollout: %s\n", f(d.Halt))
	}
	if d.ReadyMS != nil {
		usual := ""
		if u := usualReady(d.Checks); u != nil {
			usual = fmt.Sprintf(" (usually by %s)", time.Duration(*u)*time.Millisecond)
		}
		fmt.Fprintf(w, "  ready %s after the deploy: every check passed once by then%s\n", time.Duration(*d.ReadyMS)*time.Millisecond, usual)
	}
	if len(d.Locations) > 1 { // one report is the verdict above, word for word
		for i, l := range d.Locations {
			if i == shownChecks {
				fmt.Fprintf(w, "  … %d more reports\n", len(d.Locations)-i)
				break
			}
			fmt.Fprintf(w, "  %s (%s): %s: %s\n", f(l.Location), f(l.Agent), f(l.Status), shown(l.Reason, 300))
		}
	}
	listed, more := 0, 0
	for _, c := range d.Checks {
		if c.Failed == 0 && c.Errors == 0 && (c.LastOutcome == "pass" || c.LastOutcome == "") {
			continue
		}
		if listed == shownChecks {
			more++
			continue
		}
		listed++
		fmt.Fprintf(w, "  ✗ %s (%d of %d runs failed, %d errors)\n", f(c.Name), c.Failed, c.Runs, c.Errors)
		for i, r := range c.Reasons {
			if i == 3 {
				fmt.Fprintf(w, "      … %d more\n", len(c.Reasons)-3)
				break
			}
			fmt.Fprintf(w, "      %s\n", f(r))
		}
		if c.RunURL != "" {
			fmt.Fprintf(w, "      %s\n", f(c.RunURL))
		}
	}
	if more > 0 {
		fmt.Fprintf(w, "  … %d more failing checks (see the details)\n", more)
	}
	if d.URL != "" {
		fmt.Fprintf(w, "  details: %s\n", f(d.URL))
	}
	for _, l := range d.Links {
		fmt.Fprintf(w, "  %s: %s\n", f(l.Name), f(l.URL))
	}
}

// usualReady is by when every check usually passed once (the slowest check's usual
// startup), or nil when one has none yet.
func usualReady(list []client.DeployCheck) *int64 {
	var out *int64
	for _, c := range list {
		if c.UsualReadyMS == nil {
			return nil
		}
		if out == nil || *c.UsualReadyMS > *out {
			out = c.UsualReadyMS
		}
	}
	return out
}

// supersededBy names the deploy that superseded d, "superseded by web v3 (deploy …)", as
// Slack and the timeline do: the agent's reason gives its id alone, and a pipeline's log
// should say which version went out on top. Its id alone when the agent does not say more.
func supersededBy(c *client.Client, d *client.Deploy) string {
	if d.SupersededBy == "" {
		return "superseded by a newer deploy"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	id := shown(d.SupersededBy, 200)
	newer, _, err := c.Deploy(ctx, d.SupersededBy, 0)
	if err != nil {
		return "superseded by deploy " + id
	}
	return fmt.Sprintf("superseded by %s %s (deploy %s)", shown(newer.Service, shownField), shown(newer.Version, shownField), id)
}
