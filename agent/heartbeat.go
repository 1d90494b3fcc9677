package agent

// This agent's heartbeat writes: the first as it joins the store, one each agent.heartbeat,
// one as a reload is applied, and the clean stop. Each carries the config in force when it
// is written (its services and heartbeat checks, which the other agents sharing the store
// judge deploys and beats by), so they are written one at a time.

import (
	"context"
	"time"
)

// beatTurn lets one of this agent's heartbeat writes run at a time. A write built from the
// config before a reload never lands after the reload's own: it would give the store back,
// until the next heartbeat, a check the reload took out.
type beatTurn struct {
	turn chan struct{} // holds a token while a write runs
	// in is true from the agent's first heartbeat to its clean stop: a reload outside that
	// time writes nothing (no agent alive to vouch for, or one stopped).
	in bool
}

func newBeatTurn() *beatTurn { return &beatTurn{turn: make(chan struct{}, 1)} }

// take waits for the turn, until ctx ends (false).
func (b *beatTurn) take(ctx context.Context) bool {
	select {
	case b.turn <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

func (b *beatTurn) done() { <-b.turn }

// beat writes this agent's heartbeat, stamped now (by the store's clock where agents share
// it), with the config in force when its turn comes. It returns the instance that held
// the agent's name before, if another (store.Heartbeat).
func (a *Agent) beat(ctx context.Context) (string, error) {
	if !a.beats.take(ctx) {
		return "", ctx.Err()
	}
	defer a.beats.done()
	return a.store.Heartbeat(ctx, a.member(a.clock.Now()))
}

// beatReloaded writes the heartbeat as a reload is applied, so that the other agents
// judge the heartbeat checks (and the services) it added, changed or took out by the new
// config at once, not at the next heartbeat up to agent.heartbeat later: a check taken out
// is no longer vouched for by this agent (a job is not blamed for beats it no longer
// takes), one added is taken from now. It waits for a heartbeat under way at most an
// interval; failing, it says so, and the next heartbeat carries the new config.
func (a *Agent) beatReloaded(rt *Runtime) {
	ctx, cancel := context.WithTimeout(a.runCtx, rt.Config.Agent.Heartbeat)
	defer cancel()
	if !a.beats.take(ctx) {
		a.log.Warn("writing the reloaded config's heartbeat checks waited too long for a heartbeat under way; the other agents see them at the next heartbeat",
			"interval", rt.Config.Agent.Heartbeat)
		return
	}
	defer a.beats.done()
	if !a.beats.in {
		return
	}
	if _, err := a.store.Heartbeat(ctx, a.member(a.clock.Now())); err != nil {
		a.log.Warn("writing the reloaded config's heartbeat checks to the store failed; the other agents see them at the next heartbeat",
			"error", err)
	}
}

// joinBeat writes the first heartbeat, at at.
func (a *Agent) joinBeat(ctx context.Context, at time.Time) (string, error) {
	if !a.beats.take(ctx) {
		return "", ctx.Err()
	}
	defer a.beats.done()
	a.beats.in = true
	return a.store.Heartbeat(ctx, a.member(at))
}

// stopBeat records the clean stop at at; no heartbeat is written after it.
func (a *Agent) stopBeat(ctx context.Context, at time.Time) error {
	if !a.beats.take(ctx) {
		return ctx.Err()
	}
	defer a.beats.done()
	a.beats.in = false
	return a.store.StopMember(ctx, a.name, a.instance, at)
}
