package configs

import (
	"fmt"
	"time"
)

// KindHeartbeat is a push check: a job posts beats to the agent
// (POST /api/v1/heartbeats/{name}) and the check fails when none arrives within its window.
const KindHeartbeat = "heartbeat"

// HeartbeatSpec is the heartbeat kind.
type HeartbeatSpec struct {
	// Window is the longest a healthy job goes without a beat: its period plus some grace.
	Window time.Duration `koanf:"window"`
	// Token is the heartbeat's own bearer token; the agent's api_token does not post beats
	// and this one opens nothing else.
	Token Secret `koanf:"token"`
	// RequireDeployVersion makes a deploy's verification wait for a beat that reports the
	// deploy's version.
	RequireDeployVersion bool `koanf:"require_deploy_version"`
}

// heartbeatMinToken is the shortest token accepted: the endpoint is reachable by whatever
// can reach the agent.
const heartbeatMinToken = 16

func (s *HeartbeatSpec) applyDefaults(*Config, *Check) {}

func (s *HeartbeatSpec) validate(v *validator, ch *Check, p string) {
	switch {
	case s.Window == 0:
		v.errf(p+".window", "set the job's period plus grace, e.g. window: 25h for a daily job", "missing")
	case s.Window < time.Second:
		v.errf(p+".window", "use 1s or more", "%s is too short", s.Window)
	case s.Window < ch.Every:
		v.errf(p+".window", fmt.Sprintf("use a window of at least every (%s), or run the check more often", ch.Every),
			"%s is shorter than the check's every (%s): a missed beat would be seen late", s.Window, ch.Every)
	}
	switch {
	case !s.Token.IsSet():
		v.errf(p+".token", "set token: ${JOB_HEARTBEAT_TOKEN} (e.g. from openssl rand -hex 16); jobs send it as Authorization: Bearer <token>", "missing")
	case len(s.Token.Value()) < heartbeatMinToken:
		v.errf(p+".token", fmt.Sprintf("use a random token of %d characters or more (openssl rand -hex 16)", heartbeatMinToken), "too short")
	}
}
