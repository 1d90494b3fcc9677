package agent

// Reloading the config: built off to the side, checked, swapped in whole.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/vigil-monitor/vigil/configs"
	"github.com/vigil-monitor/vigil/store"
)

// Reload builds the config anew off to the side and swaps it in whole. A bad config is
// reported and the old one keeps running.
func (a *Agent) Reload() error {
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	if a.opts.LoadConfig == nil {
		return errors.New("agent: no config loader")
	}
	cfg, err := a.opts.LoadConfig()
	var rt *Runtime
	if cfg != nil { // a partly loaded config still gets built: every problem is reported at once
		rt, err = BuildRuntime(cfg, a.opts.Deps, a.notifierOptions(), a.clock.Now())
	}
	if err == nil {
		err = a.reloadAllowed(cfg)
	}
	if err != nil {
		a.metrics.reloadOK.Set(0)
		a.log.Error("config reload rejected; the previous config keeps running", "file", a.opts.ConfigPath, "error", err.Error())
		return err
	}
	old := a.rt.Swap(rt)
	a.noteMeasured(context.WithoutCancel(a.runCtx), rt)
	if later := restartOnly(old.Config, cfg); len(later) > 0 {
		a.log.Warn("config reloaded, but these settings changed and take effect only at the next restart: "+strings.Join(later, ", "),
			"settings", later)
	}
	a.sched.SetLimits(cfg.Agent.Concurrency, cfg.Agent.BrowserConcurrency)
	for _, c := range old.Order {
		if rt.Checks[c.Name] == nil || rt.Checks[c.Name].Kind != c.Kind {
			a.metrics.forget(c.Name, c.Kind)
		}
	}
	a.sched.Set(rt.Order)
	a.metrics.configure(cfg)
	a.endRemovedServices(rt)
	a.beatReloaded(rt)
	a.closeLeftIncidents(context.WithoutCancel(a.runCtx))
	a.metrics.reloadOK.Set(1)
	a.metrics.reloadTime.Set(float64(a.clock.Now().Unix()))
	a.log.Info("config reloaded", "file", a.opts.ConfigPath, "checks", len(rt.Order))
	return nil
}

// endRemovedServices ends, as inconclusive, the verifications of services a reload took
// out of the config, as a restart would: with the service gone there is no on_failure to
// route a verdict to, and a failed one would reach no one while vigil gate said failed.
func (a *Agent) endRemovedServices(rt *Runtime) {
	a.mu.Lock()
	var gone []*verification
	for _, v := range a.verify {
		if rt.Config.Services[v.deploy.Service] == nil {
			gone = append(gone, v)
		}
	}
	a.mu.Unlock()
	for _, v := range gone {
		if !v.decide() {
			continue
		}
		a.log.Warn("a reload removed the service of a deploy being verified; the deploy is inconclusive", "deploy", v.deploy.ID, "service", v.deploy.Service)
		// Not under reloadMu: recording a verdict waits out a store that refuses writes.
		go a.finishLocation(v, store.StatusInconclusive, fmt.Sprintf("service %q was removed from the config of location %s by a reload while its deploy was verified", v.deploy.Service, a.location))
	}
}

// reloadAllowed refuses a config that would open the API to the network: the socket keeps
// its address until a restart, whatever the new agent.listen says.
func (a *Agent) reloadAllowed(cfg *configs.Config) error {
	if a.ln == nil || cfg.Agent.APIToken.IsSet() {
		return nil
	}
	host, _, err := net.SplitHostPort(a.ln.Addr().String())
	if err != nil || configs.IsLoopbackHost(host) {
		return nil
	}
	return fmt.Errorf("%s: agent.api_token is not set, but the API listens on %s, reachable from other hosts, until a restart: "+
		"keep a token, or set agent.listen to a loopback address and restart", cfg.File, a.ln.Addr())
}

// restartOnly names the settings that differ between two configs and apply only when the
// agent starts: the socket, the store, and the browser and tracing set up in main. Every
// other setting applies on reload.
func restartOnly(old, cfg *configs.Config) []string {
	var out []string
	for _, s := range []struct {
		key      string
		was, now any
	}{
		{"agent.listen", old.Agent.Listen, cfg.Agent.Listen},
		// Who the agent is: every result, metric, streak, incident and heartbeat carries it.
		{"agent.location", old.Agent.Location, cfg.Agent.Location},
		{"agent.name", old.Agent.Name, cfg.Agent.Name},
		{"store.driver", old.Store.Driver, cfg.Store.Driver},
		{"store.dsn", old.Store.DSN, cfg.Store.DSN},
		// PostgreSQL's pool is sized when the store opens.
		{"store.pool.max_conns", old.Store.Pool.MaxConns, cfg.Store.Pool.MaxConns},
		{"store.pool.min_conns", old.Store.Pool.MinConns, cfg.Store.Pool.MinConns},
		{"store.pool.max_conn_lifetime", old.Store.Pool.MaxConnLifetime, cfg.Store.Pool.MaxConnLifetime},
		{"store.pool.max_conn_idle_time", old.Store.Pool.MaxConnIdleTime, cfg.Store.Pool.MaxConnIdleTime},
		{"store.pool.connect_timeout", old.Store.Pool.ConnectTimeout, cfg.Store.Pool.ConnectTimeout},
		{"browser.path", old.Browser.Path, cfg.Browser.Path},
		{"browser.flags", strings.Join(old.Browser.Flags, " "), strings.Join(cfg.Browser.Flags, " ")},
		{"tracing.otlp_endpoint", old.Tracing.OTLPEndpoint, cfg.Tracing.OTLPEndpoint},
		{"tracing.sample_ratio", ratioText(old.Tracing.SampleRatio), ratioText(cfg.Tracing.SampleRatio)},
		{"tracing.trace_url", old.Tracing.TraceURL, cfg.Tracing.TraceURL},
	} {
		if s.was != s.now {
			out = append(out, s.key)
		}
	}
	return out
}

func ratioText(r *float64) string {
	if r == nil {
		return ""
	}
	return strconv.FormatFloat(*r, 'g', -1, 64)
}
