package main

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/vigil-monitor/vigil/agent/client"
)

// newClient builds the API client of gate, preflight and silence from --agent and
// --token (else $VIGIL_API_TOKEN). What could only fail later, under another name, is a
// usage error now: a token no HTTP header can carry was "cannot reach the agent", and an
// agent URL with a query or fragment sent every request to the wrong path.
func newClient(command, agent, token string) (*client.Client, error) {
	if agent == "" {
		return nil, agentRequired(command)
	}
	if token == "" {
		token = os.Getenv("VIGIL_API_TOKEN")
	}
	if i := strings.IndexFunc(strings.TrimSpace(token), func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f }); i >= 0 {
		// The token itself is never printed: a secret in a CI log.
		return nil, exitWith(exitUsage, fmt.Errorf("vigil %s: the API token (--token, else $VIGIL_API_TOKEN) holds a control character at byte %d, which no HTTP header can carry: set it again from agent.api_token", command, i))
	}
	if a := strings.TrimSpace(agent); !strings.Contains(a, "://") {
		// 127.0.0.1:9595 does not parse as a URL, and localhost:9595 parses as one whose
		// scheme is "localhost": say what to write instead of "not an http(s) URL".
		if u, err := url.Parse("http://" + a); err == nil && u.Hostname() != "" {
			hostPort := strings.TrimPrefix(u.Redacted(), "http://")
			return nil, exitWith(exitUsage, fmt.Errorf("vigil %s: --agent %s has no scheme: write http://%s (https:// when a proxy in front of the agent serves TLS)", command, hostPort, hostPort))
		}
	}
	if u, err := url.Parse(strings.TrimSpace(agent)); err == nil {
		switch {
		case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
			return nil, exitWith(exitUsage, fmt.Errorf("vigil %s: --agent %s: leave out the query and fragment (?..., #...): vigil adds the API's paths to the agent's URL, e.g. http://127.0.0.1:9595 or https://ci.example/vigil", command, u.Redacted()))
		case u.Host != "" && (u.Hostname() == "" || strings.HasSuffix(u.Host, ":")):
			// http://:9595 or http://vigil: is what an unset $HOST or $PORT leaves; Go would
			// dial this machine, or port 80.
			return nil, exitWith(exitUsage, fmt.Errorf("vigil %s: --agent %s: the host or the port is empty (an unset variable?), e.g. http://127.0.0.1:9595", command, u.Redacted()))
		}
	}
	c, err := client.New(agent, token, userAgent())
	if err != nil {
		return nil, exitWith(exitUsage, fmt.Errorf("vigil %s: --agent: %w", command, err))
	}
	return c, nil
}

func agentRequired(command string) error {
	return exitWith(exitUsage, fmt.Errorf("vigil %s: --agent is required (or set $VIGIL_AGENT), e.g. --agent http://127.0.0.1:9595", command))
}

// agentURL is the agent's URL as messages print it: a password in it (a proxy's basic
// auth) is shown as ***, as Go's own errors show it.
func agentURL(c *client.Client) string {
	u, err := url.Parse(c.Base())
	if err != nil {
		return c.Base()
	}
	return u.Redacted()
}

// refusal is what a command prints of the agent's refusal: its message and, for the two a
// user fixes in the command itself, what to change. The agent's 401 speaks HTTP ("send
// Authorization: Bearer"); a person running vigil sets --token. An --agent with a path no
// agent serves got the router's bare "404 page not found" (for a POST) or the agent's "no
// page at ..." (for a GET: the status page's 404, as JSON since the client asks for it).
func refusal(apiErr *client.APIError, max int) string {
	msg := shown(apiErr.Message, max)
	switch {
	case apiErr.Status == http.StatusUnauthorized:
		return msg + " (vigil sends --token, else $VIGIL_API_TOKEN: set it to the agent's agent.api_token)"
	case apiErr.Status == http.StatusNotFound && (strings.TrimSpace(apiErr.Message) == "404 page not found" || strings.HasPrefix(apiErr.Message, "no page at ")):
		return msg + " (no vigil API there: --agent is the agent's own URL, e.g. http://127.0.0.1:9595, or a proxy's path that leads to it)"
	}
	return msg
}
