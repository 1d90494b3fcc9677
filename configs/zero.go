package configs

import (
	"reflect"
	"slices"
)

// A written 0. The defaults are applied to what is zero, so a key whose default is not 0
// took a written 0 for "leave it out" without a word: `timeout: 0s` (meant as no timeout)
// ran with 10s, `concurrency: 0` with 32. The decoder looks every 0 the file or an
// override writes up in zeroRules, by the struct the key belongs to: it refuses it with
// the rule's fix, or, where 0 means something, keeps it and records it (Config.zeros) so
// that the defaults leave it in place.

// zeroRule is what a written 0 of one key does.
type zeroRule struct {
	typ reflect.Type
	key string
	// doc is the key as docs/CONFIG.md's "A written 0" names it.
	doc string
	// fix, for a refused 0, says what to write instead; means, for a 0 that is kept,
	// says what it does.
	fix, means string
}

// refused is the fix of a key whose 0 is refused: the default, and the values it takes.
func refused(def, use string) string {
	return "leave the key out for " + def + ", or " + use
}

// zeroRules lists every key whose written 0 is refused or means something other than
// the default. A key not in it has 0 as its default (or no default), or refuses 0 in its
// own validation.
var zeroRules = []zeroRule{
	{typ: reflect.TypeFor[Agent](), key: "concurrency", doc: "`agent.concurrency`", fix: refused("the default 32", "use 1 or more")},
	{typ: reflect.TypeFor[Agent](), key: "browser_concurrency", doc: "`agent.browser_concurrency`", fix: refused("the default 2", "use 1 or more")},
	{typ: reflect.TypeFor[Agent](), key: "max_connections", doc: "`agent.max_connections`", fix: refused("the default 512", "use 32 or more")},
	{typ: reflect.TypeFor[Agent](), key: "shutdown_grace", doc: "`agent.shutdown_grace`", fix: refused("the default 10s", "use 1s to 1h")},
	{typ: reflect.TypeFor[Agent](), key: "heartbeat", doc: "`agent.heartbeat`", fix: refused("the default 10s", "use 100ms to 5m")},
	{typ: reflect.TypeFor[Agent](), key: "outbox_lease", doc: "`agent.outbox_lease`", fix: refused("the default 30s", "use 1s to 10m")},
	{typ: reflect.TypeFor[Store](), key: "retention", doc: "`store.retention`", fix: refused("the default 168h", "keep at least 1h of history")},
	{typ: reflect.TypeFor[Store](), key: "max_size", doc: "`store.max_size`", fix: refused("the default 1GiB (SQLite; PostgreSQL takes no max_size)", "use at least 1MiB")},

	{typ: reflect.TypeFor[Defaults](), key: "every", doc: "`defaults.every`", fix: refused("the default 1m", "use 1s or more")},
	{typ: reflect.TypeFor[Defaults](), key: "timeout", doc: "`defaults.timeout`", fix: refused("the default 10s", "give a positive duration such as 30s; a check always has a timeout")},
	{typ: reflect.TypeFor[Defaults](), key: "failure_threshold", doc: "`defaults.failure_threshold`", fix: refused("the default 2", "use 1 or more")},
	{typ: reflect.TypeFor[Defaults](), key: "success_threshold", doc: "`defaults.success_threshold`", fix: refused("the default 1", "use 1 or more")},
	{typ: reflect.TypeFor[Defaults](), key: "repeat_interval", doc: "`defaults.repeat_interval`", means: "no reminders (the default)"},
	{typ: reflect.TypeFor[Check](), key: "every", doc: "`checks[].every`", fix: refused("defaults.every", "use 1s or more")},
	{typ: reflect.TypeFor[Check](), key: "timeout", doc: "`checks[].timeout`", fix: refused("defaults.timeout", "give a positive duration such as 30s; a check always has a timeout")},
	{typ: reflect.TypeFor[Check](), key: "failure_threshold", doc: "`checks[].failure_threshold`", fix: refused("defaults.failure_threshold", "use 1 or more")},
	{typ: reflect.TypeFor[Check](), key: "success_threshold", doc: "`checks[].success_threshold`", fix: refused("defaults.success_threshold", "use 1 or more")},
	{typ: reflect.TypeFor[Check](), key: "repeat_interval", doc: "`checks[].repeat_interval`", means: "no reminders for this check, whatever defaults.repeat_interval says"},

	{typ: reflect.TypeFor[Request](), key: "timeout", doc: "`request.timeout`", fix: refused("the check's timeout", "give a positive duration up to it")},
	{typ: reflect.TypeFor[Request](), key: "max_body_bytes", doc: "`request.max_body_bytes`", fix: refused("the default 1048576 (1MiB)", "give a positive number of bytes")},
	{typ: reflect.TypeFor[BrowserSpec](), key: "navigation_timeout", doc: "`navigation_timeout` (browser)", fix: refused("the check's timeout", "give a positive duration up to it")},
	{typ: reflect.TypeFor[Viewport](), key: "width", doc: "`viewport.width` (browser)", fix: refused("the default 1280", "use 100 to 7680")},
	{typ: reflect.TypeFor[Viewport](), key: "height", doc: "`viewport.height` (browser)", fix: refused("the default 800", "use 100 to 4320")},
	{typ: reflect.TypeFor[DNSSpec](), key: "query_timeout", doc: "`query_timeout` (dns)", fix: refused("2s (the check's timeout if shorter)", "give a positive duration up to the check's timeout")},
	{typ: reflect.TypeFor[DNSSpec](), key: "poll", doc: "`poll` (dns)", fix: refused("the default 1s", "use 10ms or more")},
	{typ: reflect.TypeFor[FleetSpec](), key: "concurrency", doc: "`concurrency` (fleet)", fix: refused("the default 16", "use 1 to 256")},
	{typ: reflect.TypeFor[FleetHealth](), key: "timeout", doc: "`health.timeout` (fleet)", fix: refused("5s (half the check's timeout if shorter)", "give a positive duration up to the check's timeout")},
	{typ: reflect.TypeFor[LogscanSpec](), key: "window", doc: "`window` (logscan)", fix: refused("the default 5m", "give a positive duration such as 10m")},
	{typ: reflect.TypeFor[LogscanSpec](), key: "max_bytes", doc: "`max_bytes` (logscan)", fix: refused("the default 67108864 (64MiB)", "give a positive number of bytes")},
	{typ: reflect.TypeFor[PromQLSpec](), key: "window", doc: "`window` (promql)", fix: refused("the default 5m", "use 1s or more")},
	{typ: reflect.TypeFor[PropagationSpec](), key: "poll", doc: "`poll` (propagation)", fix: refused("the default 100ms", "use 10ms or more")},
	{typ: reflect.TypeFor[BackoffCfg](), key: "factor", doc: "`backoff.factor` (propagation)", fix: refused("the default 1.2", "use 1 (no backoff) to 4")},
	{typ: reflect.TypeFor[BackoffCfg](), key: "max", doc: "`backoff.max` (propagation)", fix: refused("ten times poll", "use at least poll")},
	{typ: reflect.TypeFor[SLASpec](), key: "requests", doc: "`requests` (sla)", fix: refused("the default 100", "use 1 or more")},
	{typ: reflect.TypeFor[SLASpec](), key: "concurrency", doc: "`concurrency` (sla)", fix: refused("the default 10", "use 1 to 1000")},
	{typ: reflect.TypeFor[SLASpec](), key: "max_duration", doc: "`max_duration` (sla)", fix: refused("the check's timeout", "give a positive duration up to it")},
	{typ: reflect.TypeFor[WebSocketSpec](), key: "max_message_bytes", doc: "`max_message_bytes` (websocket)", fix: refused("the default 1MiB", "give a positive size such as 4MiB")},

	{typ: reflect.TypeFor[Verify](), key: "interval", doc: "`services.NAME.verify.interval`", fix: refused("the default 5s", "use 100ms or more")},
	{typ: reflect.TypeFor[Verify](), key: "count", doc: "`services.NAME.verify.count`", fix: refused("the default 6", "use 1 or more rounds")},
	{typ: reflect.TypeFor[Verify](), key: "baseline_runs", doc: "`services.NAME.verify.baseline_runs`", fix: refused("the default 5", "use 1 to 1000")},
	{typ: reflect.TypeFor[Locations](), key: "fail", doc: "`locations.fail`", fix: refused("the default 1", "use a number of failing locations, e.g. 2")},
	{typ: reflect.TypeFor[Locations](), key: "min", doc: "`locations.min`", means: "every location verifying the deploy (the default)"},
	{typ: reflect.TypeFor[Locations](), key: "wait", doc: "`locations.wait`", means: "no wait: a location that has finished gives the verdict with the answers there are"},
	{typ: reflect.TypeFor[Quorum](), key: "fail", doc: "`services.NAME.verify.locations.fail`", fix: refused("locations.fail", "use a number of failing locations, e.g. 2")},
	{typ: reflect.TypeFor[Quorum](), key: "min", doc: "`services.NAME.verify.locations.min`", means: "every location verifying the deploy, whatever locations.min says"},
	{typ: reflect.TypeFor[Quorum](), key: "wait", doc: "`services.NAME.verify.locations.wait`", means: "no wait, whatever locations.wait says"},

	{typ: reflect.TypeFor[Notifier](), key: "timeout", doc: "`notifiers.NAME.timeout`", fix: refused("the default 10s (30s for slack and email)", "give a positive duration up to 5m")},
	{typ: reflect.TypeFor[Notifier](), key: "max_attempts", doc: "`notifiers.NAME.max_attempts`", fix: refused("the default 8", "use 1 to 50")},
	{typ: reflect.TypeFor[Notifier](), key: "port", doc: "`notifiers.NAME.port`", fix: refused("the default 587", "give the SMTP server's port")},
	{typ: reflect.TypeFor[Notifier](), key: "alert_ttl", doc: "`notifiers.NAME.alert_ttl`", fix: refused("the default 1h", "use 1m to 168h")},
}

// zeroRuleOf is the rule of key in struct t, or nil.
func zeroRuleOf(t reflect.Type, key string) *zeroRule {
	i := slices.IndexFunc(zeroRules, func(r zeroRule) bool { return r.typ == t && r.key == key })
	if i < 0 {
		return nil
	}
	return &zeroRules[i]
}

// writtenZero handles a 0 written at path, a key of struct t: refused, or kept and
// recorded.
func (d *decoder) writtenZero(t reflect.Type, path, key string) {
	r := zeroRuleOf(t, key)
	switch {
	case r == nil:
	case r.fix != "":
		d.errorf(path, r.fix, "0 is not a setting of this key: it means neither none nor unlimited")
	default:
		if d.zeros == nil {
			d.zeros = map[string]bool{}
		}
		d.zeros[path] = true
	}
}

// zeroWritten says whether the file or an override wrote path as 0, where 0 is kept.
func (c *Config) zeroWritten(path string) bool { return c.zeros[path] }
