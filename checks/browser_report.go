package checks

import (
	"fmt"
	"strings"
	"time"

	"github.com/vigil-monitor/vigil/browser"
)

// What a page report becomes: the run's variables (after ignore_errors), its transcript
// lines and the errors.txt evidence.

// keptProblems is what is left of a report's problems after ignore_errors.
type keptProblems struct {
	exceptions []browser.Exception
	console    []browser.ConsoleError
	failed     []browser.FailedRequest
	ignored    int
}

func (b *Browser) ignored(line string) bool {
	for _, re := range b.ignore {
		if re.MatchString(line) {
			return true
		}
	}
	return false
}

func (b *Browser) keep(rep *browser.Report) keptProblems {
	var k keptProblems
	for _, e := range rep.Exceptions {
		if b.ignored(e.String()) {
			k.ignored++
			continue
		}
		k.exceptions = append(k.exceptions, e)
	}
	for _, c := range rep.ConsoleErrors {
		if b.ignored(c.String()) {
			k.ignored++
			continue
		}
		k.console = append(k.console, c)
	}
	for _, f := range rep.FailedRequests {
		if b.ignored(f.String()) {
			k.ignored++
			continue
		}
		k.failed = append(k.failed, f)
	}
	return k
}

// setVars records the report as variables, with explanations that quote the first
// problem of each kind, and returns what survived ignore_errors.
func (b *Browser) setVars(run *Run, rep *browser.Report) keptProblems {
	k := b.keep(rep)
	var errs []string
	for _, e := range k.exceptions {
		errs = append(errs, e.String())
	}
	for _, c := range k.console {
		errs = append(errs, c.String())
	}
	scripts, styles := 0, 0
	var firstScript, firstStyle string
	for _, f := range k.failed {
		errs = append(errs, f.String())
		switch f.Type {
		case "script":
			if scripts++; scripts == 1 {
				firstScript = f.String()
			}
		case "stylesheet":
			if styles++; styles == 1 {
				firstStyle = f.String()
			}
		}
	}
	if errs == nil {
		errs = []string{}
	}
	steps := rep.Steps
	if rep.StepsTotal == 0 {
		steps = 0
	}
	v := run.Vars
	// Past a list's cap the page's problems are counted, not kept (nor filtered by
	// ignore_errors: their text is gone): js_errors < 1000 judges the page, not the cap.
	v["js_errors"] = len(k.exceptions) + rep.DroppedBy.Exceptions
	v["console_errors"] = len(k.console) + rep.DroppedBy.ConsoleErrors
	v["failed_requests"] = len(k.failed) + rep.DroppedBy.FailedRequests
	v["failed_scripts"] = scripts
	v["failed_stylesheets"] = styles
	v["errors"] = errs
	v["status"] = rep.Status
	v["title"] = rep.Title
	v["url"] = rep.URL
	v["loaded"] = rep.Loaded
	v["wait_for_found"] = rep.WaitForFound
	v["requests"] = rep.Requests
	v["steps"] = steps
	v["steps_total"] = rep.StepsTotal
	v["failed_step"] = rep.FailedStep
	v["dialogs"] = len(rep.Dialogs) + rep.DroppedBy.Dialogs
	setDocumentCacheVars(run, rep) // cached, age_s (browser_cache.go)
	v["timings"] = map[string]any{
		"ttfb_ms":               ms(rep.Timings.TTFB),
		"dom_content_loaded_ms": ms(rep.Timings.DOMContentLoaded),
		"load_ms":               ms(rep.Timings.Load),
		"lcp_ms":                ms(rep.Timings.LCP),
	}

	more := func(n int) string {
		if n > 1 {
			return fmt.Sprintf("; and %d more", n-1)
		}
		return ""
	}
	if n := len(k.exceptions); n > 0 {
		e := k.exceptions[0]
		d := e.Message
		if e.Kind == browser.KindRejection {
			d = "unhandled rejection: " + d
		}
		if loc := e.Location(); loc != "" {
			d += " at " + loc
		}
		run.Explain("js_errors", d+more(n))
	}
	if n := len(k.console); n > 0 {
		run.Explain("console_errors", k.console[0].String()+more(n))
	}
	if n := len(k.failed); n > 0 {
		run.Explain("failed_requests", k.failed[0].String()+more(n))
	}
	if scripts > 0 {
		run.Explain("failed_scripts", firstScript+more(scripts))
	}
	if styles > 0 {
		run.Explain("failed_stylesheets", firstStyle+more(styles))
	}
	if n := len(rep.Dialogs); n > 0 {
		run.Explain("dialogs", rep.Dialogs[0].String()+more(n))
	}
	if k.ignored > 0 {
		run.Explain("errors", fmt.Sprintf("%d more matched ignore_errors", k.ignored))
	}
	stuck := ""
	if rep.Unresponsive > 0 {
		stuck = ": the page stopped responding"
	}
	if !rep.WaitForFound {
		run.Explain("wait_for_found", fmt.Sprintf("%s never became visible%s", rep.WaitFor, stuck))
	}
	if !rep.Loaded {
		d := "the load event never fired" + stuck
		if len(rep.Pending) > 0 {
			d += "; still loading: " + strings.Join(rep.Pending, ", ")
		}
		run.Explain("loaded", d)
	}
	if rep.Status >= 400 {
		run.Explain("status", "the document "+rep.URL+" answered with an error")
	}
	return k
}

// failing tells, before the run is judged, whether it will fail: a step failed or an
// assertion that can be judged now is false.
func (b *Browser) failing(run *Run, rep *browser.Report) bool {
	if rep.StepError != "" || rep.Unresponsive > 0 {
		return true
	}
	env := assertionEnv(run)
	for _, a := range b.asserts {
		if a.usesBaseline && run.Baseline == nil {
			continue
		}
		if ok, _ := a.Eval(env, nil); !ok {
			return true
		}
	}
	return false
}

// transcript summarises what the page did, after the visit's own progress lines.
func (b *Browser) transcript(run *Run, rep *browser.Report, k keptProblems) {
	t := run.Transcript
	if rep.StoppedEarly != "" {
		t.Printf("page: %s %q (status %d, %d requests; not waited for: load, wait_for, later steps, timings)", rep.URL, rep.Title, rep.Status, rep.Requests)
	} else {
		t.Printf("page: %s %q (status %d, %d requests, loaded %t)", rep.URL, rep.Title, rep.Status, rep.Requests, rep.Loaded)
		t.Printf("timings: ttfb %s, dom_content_loaded %s, load %s, lcp %s",
			rep.Timings.TTFB.Round(time.Millisecond), rep.Timings.DOMContentLoaded.Round(time.Millisecond),
			rep.Timings.Load.Round(time.Millisecond), rep.Timings.LCP.Round(time.Millisecond))
	}
	for _, e := range k.exceptions {
		t.Printf("! %s", e)
	}
	for _, c := range k.console {
		t.Printf("! %s", c)
	}
	for _, f := range k.failed {
		t.Printf("! %s", f)
	}
	for _, d := range rep.Dialogs {
		t.Printf("! dialog: %s", d)
	}
	if k.ignored > 0 {
		t.Printf("(%d problems matched ignore_errors and were not counted)", k.ignored)
	}
	if rep.Dropped > 0 {
		t.Printf("(%d more problems were not kept: the page reported too many)", rep.Dropped)
	}
}

// errorList is the errors.txt evidence: every problem counted, with stacks.
func errorList(rep *browser.Report, k keptProblems) string {
	var sb strings.Builder
	if rep.Unresponsive > 0 {
		sb.WriteString(unresponsive(rep) + "\n\n")
	}
	if rep.FailedStep != "" {
		fmt.Fprintf(&sb, "%s failed: %s\n\n", rep.FailedStep, rep.StepError)
	}
	for _, e := range k.exceptions {
		sb.WriteString(e.String() + "\n")
		stack := e.Stack
		if first, rest, _ := strings.Cut(stack, "\n"); strings.TrimSpace(first) == e.Message {
			stack = rest // V8 stacks start with the message
		}
		for l := range strings.SplitSeq(strings.TrimSpace(stack), "\n") {
			if l = strings.TrimSpace(l); l != "" {
				sb.WriteString("    " + l + "\n")
			}
		}
	}
	for _, c := range k.console {
		sb.WriteString(c.String() + "\n")
	}
	for _, f := range k.failed {
		sb.WriteString(f.String() + "\n")
	}
	for _, d := range rep.Dialogs {
		sb.WriteString("dialog: " + d.String() + "\n")
	}
	if len(rep.Pending) > 0 {
		sb.WriteString("still loading when the page gave up: " + strings.Join(rep.Pending, ", ") + "\n")
	}
	if k.ignored > 0 {
		fmt.Fprintf(&sb, "(%d problems matched ignore_errors and are not listed)\n", k.ignored)
	}
	return sb.String()
}

// unresponsive is the reason a frozen page fails (Report.Unresponsive).
func unresponsive(rep *browser.Report) string {
	return fmt.Sprintf("the page did not respond for %s: its main thread answered nothing vigil asked while the run waited (a script busy in a loop?)",
		rep.Unresponsive.Round(100*time.Millisecond))
}
