package report

import (
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/vigil-monitor/vigil/checks"
)

// JUnit XML, as Jenkins, GitLab, GitHub Actions reporters and CircleCI read it: one
// testsuite per run, one testcase per check. A failed or inconclusive check is a
// <failure>, an error is an <error>; the transcript goes to <system-out>.

type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name      string      `xml:"name,attr"`
	Tests     int         `xml:"tests,attr"`
	Failures  int         `xml:"failures,attr"`
	Errors    int         `xml:"errors,attr"`
	Skipped   int         `xml:"skipped,attr"`
	Time      string      `xml:"time,attr"`
	Timestamp string      `xml:"timestamp,attr"`
	Hostname  string      `xml:"hostname,attr,omitempty"`
	Cases     []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name       string           `xml:"name,attr"`
	Classname  string           `xml:"classname,attr"`
	Time       string           `xml:"time,attr"`
	Properties *junitProperties `xml:"properties,omitempty"`
	Failure    *junitProblem    `xml:"failure,omitempty"`
	Error      *junitProblem    `xml:"error,omitempty"`
	Skipped    *junitSkipped    `xml:"skipped,omitempty"`
	SystemOut  string           `xml:"system-out,omitempty"`
}

// junitProperties are a testcase's properties (GitLab and Jenkins show them): the run's
// trace id, and its link when tracing.trace_url is set.
type junitProperties struct {
	List []junitProperty `xml:"property"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitSkipped struct {
	Message string `xml:"message,attr"`
}

type junitProblem struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

func seconds(d time.Duration) string { return fmt.Sprintf("%.3f", d.Seconds()) }

// WriteJUnit writes results as JUnit XML. traceURL turns a trace id into a link (nil: no links).
func WriteJUnit(w io.Writer, results []*checks.Result, s Summary, started time.Time, traceURL func(string) string) error {
	host, _ := os.Hostname()
	suite := junitSuite{Name: "vigil", Tests: s.Total, Failures: s.Failed + s.Inconclusive, Errors: s.Errors, Skipped: s.NotRun,
		Time: seconds(s.Duration), Timestamp: started.UTC().Format("2006-01-02T15:04:05"), Hostname: host}
	for _, r := range results {
		c := junitCase{Name: r.Check, Classname: "vigil." + r.Kind, Time: seconds(r.Duration)}
		if r.TraceID != "" {
			c.Properties = &junitProperties{List: []junitProperty{{Name: "trace_id", Value: r.TraceID}}}
			if traceURL != nil {
				if u := traceURL(r.TraceID); u != "" {
					c.Properties.List = append(c.Properties.List, junitProperty{Name: "trace_url", Value: u})
				}
			}
		}
		if r.NotRun {
			c.Skipped = &junitSkipped{Message: xmlSafe(r.Summary())}
			suite.Cases = append(suite.Cases, c)
			continue
		}
		if r.Outcome != checks.Pass {
			body := strings.Join(r.Reasons, "\n")
			for _, a := range r.Artifacts {
				if a.Path != "" {
					body += "\n" + a.Name + ": " + a.Path
				}
			}
			p := &junitProblem{Message: xmlSafe(r.Summary()), Type: string(r.Outcome), Text: xmlSafe(body)}
			if r.Outcome == checks.Error {
				c.Error = p
			} else {
				c.Failure = p
			}
			c.SystemOut = xmlSafe(strings.Join(r.Transcript, "\n"))
		}
		suite.Cases = append(suite.Cases, c)
	}
	doc := junitSuites{Name: "vigil", Tests: suite.Tests, Failures: suite.Failures, Errors: suite.Errors,
		Time: suite.Time, Suites: []junitSuite{suite}}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

// xmlSafe drops characters XML 1.0 cannot carry (response bodies can hold anything).
func xmlSafe(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\t' || r == '\n' || r == '\r':
			return r
		case r < 0x20, r == 0xFFFE, r == 0xFFFF, r >= 0xD800 && r <= 0xDFFF:
			return -1
		}
		return r
	}, s)
}
