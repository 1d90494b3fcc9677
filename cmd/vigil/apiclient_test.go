package main

import (
	"strings"
	"testing"
)

// What a person gets wrong in an API command's own arguments is said in the command's
// terms, against a real agent with an api_token. The agent's 401 says "send Authorization:
// Bearer", which a user of vigil gate never writes; an --agent with no scheme was "not an
// http(s) URL"; an --agent whose path leads to no agent was a bare "404 page not found".
func TestAPICommandsSayWhatToFixInTheCommand(t *testing.T) {
	_, cfg := gateSetup(t) // agent.api_token: gate-token
	p := startAgentProc(t, cfg, "")
	t.Setenv("VIGIL_API_TOKEN", "")
	hostPort := strings.TrimPrefix(p.url, "http://")
	const tokenFix = "(vigil sends --token, else $VIGIL_API_TOKEN: set it to the agent's agent.api_token)"
	for _, c := range []struct {
		name  string
		agent string
		token []string
		code  map[string]int // by command; 2 when not listed
		want  string
	}{
		{"no token", p.url, nil, map[string]int{"silence": 1}, "missing credentials: send Authorization: Bearer <agent.api_token> " + tokenFix},
		{"wrong token", p.url, []string{"--token", "not-the-token"}, map[string]int{"silence": 1}, "wrong token: send the agent's api_token as Authorization: Bearer <token> " + tokenFix},
		{"no scheme", hostPort, []string{"--token", "gate-token"}, nil, "--agent " + hostPort + " has no scheme: write http://" + hostPort + " (https:// when a proxy"},
		{"no scheme, a name", "localhost:9595", []string{"--token", "gate-token"}, nil, "--agent localhost:9595 has no scheme: write http://localhost:9595"},
		{"a path to no agent", p.url + "/vigil", []string{"--token", "gate-token"}, map[string]int{"silence": 1}, " (no vigil API there: --agent is the agent's own URL, e.g. http://127.0.0.1:9595, or a proxy's path that leads to it)"},
	} {
		for _, args := range [][]string{
			{"gate", "--service", "web", "--version", "v1", "--register-retry", "0"},
			{"preflight", "--service", "web", "--version", "v1", "--retry", "0"},
			{"cancel", "--service", "web", "--version", "v1", "--retry", "0"},
			{"silence", "list"},
		} {
			code, out, errOut := run(append(append(args, "--agent", c.agent), c.token...)...)
			want, ok := c.code[args[0]]
			if !ok {
				want = 2
			}
			if code != want || !strings.Contains(errOut, c.want) {
				t.Errorf("%s: %s: exit %d; want %d and %q:\n%s%s", c.name, args[0], code, want, c.want, out, errOut)
			}
		}
	}
}
