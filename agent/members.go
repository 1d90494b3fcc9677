package agent

// Membership: every agent writes a heartbeat into the store, with its location, version
// and services. Agents sharing a store see each other: a deploy is verified in the
// locations alive when it is registered, and an agent or a whole location that stops
// reporting is an incident, opened once however many agents notice.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/vigil-monitor/vigil/alerting"
	"github.com/vigil-monitor/vigil/configs"
	"github.com/vigil-monitor/vigil/internal/text"
	"github.com/vigil-monitor/vigil/store"
)

func newInstanceID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// agentName is agent.name, or <hostname>/<location>: stable across restarts, which is
// what lets a restarted agent take back the notifications it was delivering.
func agentName(a configs.Agent) string {
	if a.Name != "" {
		return a.Name
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	return host + "/" + a.Location
}

// member is this agent as the store keeps it, beating now; where agents share the store,
// the store stamps the beat with the database's clock instead, which every agent judges
// beats by (heartbeatAge): agents' clocks need not agree. It counts as alive, and as taking
// the beats of the heartbeat checks in its config, until it is silent or stops cleanly
// (store.BeatsTaken).
func (a *Agent) member(now time.Time) *store.Member {
	if a.shared() {
		now = time.Time{}
	}
	rt := a.Runtime()
	services := make([]string, 0, len(rt.Config.Services))
	for s := range rt.Config.Services {
		services = append(services, s)
	}
	sort.Strings(services)
	beats := map[string]time.Duration{}
	for _, c := range rt.Order {
		if c.Kind == configs.KindHeartbeat {
			beats[c.Name] = c.Config.Spec.(*configs.HeartbeatSpec).Window
		}
	}
	return &store.Member{Name: a.name, Instance: a.instance, Location: a.location, Version: a.opts.Version, URL: a.baseURL(),
		Services: services, Started: a.startedAt, Heartbeat: now, AliveFor: configs.SilentAfter(rt.Config.Agent.Heartbeat), BeatChecks: beats}
}

// join announces the agent and takes back the notifications it was delivering before a
// restart (they would wait out their leases otherwise).
func (a *Agent) join(ctx context.Context) {
	a.startedAt = a.clock.Now()
	prev, err := a.joinBeat(ctx, a.startedAt)
	if err != nil {
		a.log.Error("writing the first heartbeat failed; retrying with the next", "agent", a.name, "error", err)
	} else if prev != "" {
		a.log.Info("restarted: this agent's name was last used by its previous run", "agent", a.name, "previous_instance", prev)
	}
	if n, err := a.store.ReleaseClaims(ctx, a.name); err != nil {
		a.log.Warn("taking back the notifications this agent was delivering failed; they go out when their leases end", "error", err)
	} else if n > 0 {
		a.log.Info("took back notifications this agent was delivering when it stopped", "notifications", n)
	}
}

// leave records a clean stop: a stopped agent is not a silent one, and takes no beats.
func (a *Agent) leave(ctx context.Context) {
	if err := a.stopBeat(ctx, a.clock.Now()); err != nil {
		a.log.Warn("recording this agent's stop failed; other agents will take it for silent", "error", err)
	}
}

// heartbeatLoop writes a heartbeat every agent.heartbeat and, where agents share the
// store, watches the others'. The beats keep their cadence whatever the watching costs:
// it runs beside them, so a slow round of it (a store under load, many incidents to
// update) never leaves a live agent's beats three intervals apart, which is what the
// others take for silent. Each beat is due an interval after the one before was due, not
// after its work ended; one that came late (the store was slow) is followed by the next
// an interval later.
func (a *Agent) heartbeatLoop(ctx context.Context) {
	watch := make(chan struct{}, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.watchMembersLoop(ctx, watch)
	}()
	defer func() { <-done }()
	due := a.clock.Now()
	for {
		due = due.Add(a.Runtime().Config.Agent.Heartbeat)
		now := a.clock.Now()
		if due.Before(now) {
			due = now
		}
		t := a.clock.NewTimer(due.Sub(now))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C():
		}
		prev, err := a.beat(ctx)
		switch {
		case err != nil:
			if ctx.Err() == nil {
				a.log.Warn("writing the heartbeat failed; other agents may take this one for silent", "error", err)
			}
			continue
		case prev != "":
			a.log.Error("another agent runs under this agent's name: set a different agent.name on one of them",
				"agent", a.name, "other_instance", prev)
		}
		select {
		case watch <- struct{}{}:
		default: // a round is waiting already: it reads the store as it stands when it runs
		}
	}
}

// watchMembersLoop reads the incidents again and watches the other agents after each heartbeat,
// one round at a time, each as of when it starts.
func (a *Agent) watchMembersLoop(ctx context.Context, watch <-chan struct{}) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-watch:
		}
		a.refreshIncidents(ctx)
		if a.shared() {
			a.watchMembers(ctx, a.clock.Now())
		}
	}
}

// shared says whether other agents may share the store: membership incidents need it. A
// SQLite store has one agent, and nobody to watch.
func (a *Agent) shared() bool { return a.Runtime().Config.Store.Driver == configs.DriverPostgres }

// memberState is how an agent stands now.
type memberState string

const (
	memberAlive   memberState = "alive"
	memberSilent  memberState = "silent"
	memberStopped memberState = "stopped"
)

func (a *Agent) stateOf(m *store.Member, now time.Time) memberState {
	switch {
	case !m.Stopped.IsZero():
		return memberStopped
	case heartbeatAge(m, now) > configs.SilentAfter(a.Runtime().Config.Agent.Heartbeat):
		return memberSilent
	}
	return memberAlive
}

// heartbeatAge is how long ago m beat: by the database's clock, which stamped the beat,
// where the store has one (PostgreSQL); by this agent's, now, on SQLite.
func heartbeatAge(m *store.Member, now time.Time) time.Duration {
	if !m.ReadAt.IsZero() {
		return m.ReadAt.Sub(m.Heartbeat)
	}
	return now.Sub(m.Heartbeat)
}

// verifyingLocations are the locations expected to verify a deploy of service registered
// now: this one, and those of the agents alive that have the service.
func (a *Agent) verifyingLocations(ctx context.Context, service string, now time.Time) []string {
	locs := []string{a.location}
	members, err := a.store.Members(ctx)
	if err != nil {
		a.log.Warn("reading the agents failed; this deploy is verified here only", "service", service, "error", err)
	}
	for _, m := range members {
		if a.stateOf(m, now) == memberAlive && slices.Contains(m.Services, service) && !slices.Contains(locs, m.Location) {
			locs = append(locs, m.Location)
		}
	}
	sort.Strings(locs)
	return locs
}

// silence is a subject of membership that stopped reporting: an agent, or a location none
// of whose agents reports.
type silence struct {
	subject string // "agent:NAME" or "location:NAME"
	summary string
}

// silences finds what stopped reporting. An agent is silent when it missed three
// heartbeats without having stopped cleanly; a location, when it has agents and none is
// alive. An agent whose location is silent is part of that incident, not one of its own.
func silences(members []*store.Member, state func(*store.Member) memberState, now time.Time) []silence {
	byLoc := map[string][]*store.Member{}
	for _, m := range members {
		byLoc[m.Location] = append(byLoc[m.Location], m)
	}
	var out []silence
	for _, loc := range sortedKeys(byLoc) {
		var alive, silent []*store.Member
		for _, m := range byLoc[loc] {
			switch state(m) {
			case memberAlive:
				alive = append(alive, m)
			case memberSilent:
				silent = append(silent, m)
			}
		}
		switch {
		case len(alive) == 0 && len(silent) > 0:
			last := silent[0]
			names := make([]string, len(silent))
			for i, m := range silent {
				names[i] = m.Name
				if m.Heartbeat.After(last.Heartbeat) {
					last = m
				}
			}
			out = append(out, silence{subject: "location:" + loc, summary: fmt.Sprintf("location %s stopped reporting: no heartbeat from its %s (%s) since %s (%s ago); its checks do not run and its deploys are not verified there",
				loc, plural(len(silent), "agent"), strings.Join(names, ", "), last.Heartbeat.UTC().Format(time.RFC3339), heartbeatAge(last, now).Round(time.Second))})
		case len(silent) > 0:
			for _, m := range silent {
				out = append(out, silence{subject: "agent:" + m.Name, summary: fmt.Sprintf("agent %s in %s stopped reporting: last heartbeat %s (%s ago); %s still has %d %s alive",
					m.Name, loc, m.Heartbeat.UTC().Format(time.RFC3339), heartbeatAge(m, now).Round(time.Second), loc, len(alive), plural(len(alive), "agent"))})
			}
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// isMembershipSubject says whether an incident is about membership, not a check (check
// names have no colon).
func isMembershipSubject(subject string) bool {
	return strings.HasPrefix(subject, "agent:") || strings.HasPrefix(subject, "location:")
}

// watchMembers opens an incident for each agent or location that stopped reporting and
// closes the incidents of those that report again (or were forgotten). Every agent
// watches; the store's lock on each incident makes each change happen once.
func (a *Agent) watchMembers(ctx context.Context, now time.Time) {
	members, err := a.store.Members(ctx)
	if err != nil {
		a.log.Warn("reading the agents failed", "error", err)
		return
	}
	a.refreshStreaks(ctx, members, now)
	current := map[string]string{}
	for _, s := range silences(members, func(m *store.Member) memberState { return a.stateOf(m, now) }, now) {
		current[s.subject] = s.summary
	}
	a.incView.RLock()
	var open []string
	for subject, in := range a.incidents {
		if in.Open && isMembershipSubject(subject) {
			open = append(open, subject)
		}
	}
	a.incView.RUnlock()
	subjects := append(sortedKeys(current), open...)
	done := map[string]bool{}
	for _, subject := range subjects {
		if done[subject] {
			continue
		}
		done[subject] = true
		summary, silent := current[subject]
		a.memberIncident(ctx, subject, silent, summary, now)
	}
}

// memberIncident opens (silent) or closes the incident of a membership subject.
func (a *Agent) memberIncident(ctx context.Context, subject string, silent bool, summary string, now time.Time) {
	rt := a.Runtime()
	muted := a.silencedBy(rt, "", "", now)
	in, err := a.store.UpdateIncident(ctx, store.IncidentUpdate{Subject: subject}, func(cur *store.Incident, _ []*store.CheckLocation) (*store.Incident, []*store.OutboxEntry) {
		next := *cur
		var ev *alerting.Event
		switch {
		case silent && !cur.Open:
			next.Open, next.Seq, next.OpenedAt, next.Summary, next.NotifiedAt, next.Reminders = true, cur.Seq+1, now, summary, now, 0
			ev = &alerting.Event{Name: configs.EventCheckFailed, Summary: summary}
		case !silent && cur.Open:
			next.Open = false
			ev = &alerting.Event{Name: configs.EventCheckRecovered,
				Summary: fmt.Sprintf("%s reports again (silent since %s)", strings.Replace(subject, ":", " ", 1), cur.OpenedAt.UTC().Format(time.RFC3339))}
		default:
			return nil, nil
		}
		incident := fmt.Sprintf("%s:%d", subject, next.Seq)
		ev.Key, ev.Incident, ev.OccurredAt, ev.Check, ev.Location = incident+":"+ev.Name, incident, now, subject, a.location
		ev.StatusURL = a.baseURL() + "/#agents"
		return &next, a.entries(ev, a.route(rt, rt.Config.Locations.Notify, ev.Name), muted, now)
	})
	if err != nil {
		a.log.Error("recording a membership incident failed", "subject", subject, "error", err)
		return
	}
	a.incMu.Lock()
	a.incView.Lock()
	before := a.incidents[subject]
	a.incidents[subject] = in
	a.incView.Unlock()
	a.incMu.Unlock()
	if before == nil || before.Open != in.Open {
		if in.Open {
			a.log.Warn("stopped reporting", "subject", subject, "summary", in.Summary)
		} else if before != nil {
			a.log.Info("reports again", "subject", subject)
		}
		a.signalOutbox()
	}
}

// memberView is an agent as the API and the status page show it.
type memberView struct {
	Name      string    `json:"name"`
	Location  string    `json:"location"`
	Version   string    `json:"version"`
	URL       string    `json:"url,omitempty"`
	State     string    `json:"state"`
	Heartbeat time.Time `json:"last_heartbeat"`
	Started   time.Time `json:"started"`
	Services  []string  `json:"services"`
	Self      bool      `json:"self,omitempty"`
}

func (a *Agent) memberViews(ctx context.Context) ([]memberView, error) {
	list, err := a.store.Members(ctx)
	if err != nil {
		return nil, err
	}
	now := a.clock.Now()
	out := make([]memberView, 0, len(list))
	for _, m := range list {
		out = append(out, memberView{Name: m.Name, Location: m.Location, Version: m.Version, URL: m.URL, State: string(a.stateOf(m, now)),
			Heartbeat: m.Heartbeat.UTC(), Started: m.Started.UTC(), Services: append([]string{}, m.Services...), Self: m.Name == a.name})
	}
	return out, nil
}

// listAgents is GET /api/v1/agents: every agent sharing the store.
func (a *Agent) listAgents(w http.ResponseWriter, r *http.Request) {
	list, err := a.memberViews(r.Context())
	if err != nil {
		writeError(w, http.StatusInternalServerError, "reading the agents failed: %v", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"agents": list, "self": a.name, "location": a.location,
		"silent_after": configs.SilentAfter(a.Runtime().Config.Agent.Heartbeat).String()})
}

// forgetAgent is DELETE /api/v1/agents/{name}: an agent taken away for good is no longer
// reported as silent.
func (a *Agent) forgetAgent(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if name == a.name {
		writeError(w, http.StatusConflict, "%q is this agent; stop it first, then ask another agent to forget it", text.Ellipsis(name, 130))
		return
	}
	err := a.store.ForgetMember(r.Context(), name)
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, "no agent named %q", text.Ellipsis(name, 130))
	case err != nil:
		writeError(w, http.StatusInternalServerError, "forgetting the agent failed: %v", err)
	default:
		a.log.Info("agent forgotten", "agent", name)
		w.WriteHeader(http.StatusNoContent)
	}
}
