package configs

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"
	"unicode"
)

// decodeRaw reads a check: the common keys into the Check, the rest into its kind's spec.
func (c *Check) decodeRaw(d *decoder, path string, raw any) {
	m, ok := raw.(map[string]any)
	if !ok {
		d.errorf(path, "each check is a mapping with at least name and kind", "expected a mapping, got %s", describe(raw))
		return
	}
	common := structFields(reflect.TypeOf(*c))
	extra := map[string]bool{}
	for k := range m {
		if _, ok := common[k]; !ok {
			extra[k] = true
		}
	}
	d.decodeStruct(path, m, reflect.ValueOf(c).Elem(), extra)
	if c.Kind == "" {
		d.errorf(joinPath(path, "kind"), "set kind to one of: "+strings.Join(Kinds(), ", "), "missing")
		return
	}
	c.Spec = newSpec(c.Kind)
	if c.Spec == nil {
		d.errorf(joinPath(path, "kind"), DidYouMean(c.Kind, Kinds()), "unknown kind %q", c.Kind)
		return
	}
	spec := reflect.ValueOf(c.Spec).Elem()
	specFields := structFields(spec.Type())
	known := append(keysOf(common), keysOf(specFields)...)
	rest := map[string]any{}
	misplaced := map[string]any{}
	for k := range extra {
		if _, ok := specFields[k]; ok {
			rest[k] = m[k]
			continue
		}
		p := joinPath(path, k)
		if underRequest(spec.Type(), specFields, k) {
			// Gatus and Checkly put url, method and body on the check itself, and a
			// `request:` indented one level too little does the same here.
			d.errorf(p, fmt.Sprintf("move it under request: (indented below it), e.g. request: {%s: ...}", k),
				"not a key of %s checks, but of their request", c.Kind)
			misplaced[k] = m[k]
			continue
		}
		if other := kindWithKey(k); other != "" {
			d.errorf(p, fmt.Sprintf("%s is a key of %s checks; remove it or change kind", k, other), "not a key of %s checks", c.Kind)
			continue
		}
		d.unknownKey(p, k, known)
	}
	if len(misplaced) > 0 && rest["request"] == nil {
		// Read where they belong, so the request is not also reported "missing" a url
		// the file gives one line off.
		rest["request"] = misplaced
	}
	d.decodeStruct(path, rest, spec, nil)
}

// underRequest reports whether key, not a key of the check, is one of the request's keys
// in a kind whose spec has a request (http, sla).
func underRequest(spec reflect.Type, specFields map[string]int, key string) bool {
	i, ok := specFields["request"]
	if !ok || spec.Field(i).Type != reflect.TypeOf(Request{}) {
		return false
	}
	_, ok = structFields(reflect.TypeOf(Request{}))[key]
	return ok
}

// applyDefaults fills the check's common keys from the defaults block, then its kind's.
func (c *Check) applyDefaults(cfg *Config, i int) {
	d := &cfg.Defaults
	c.Index = i
	c.inherited = map[string]bool{"every": c.Every == 0, "timeout": c.Timeout == 0, "retries": c.Retries == nil,
		"failure_threshold": c.FailureThreshold == 0, "failure_window": c.FailureWindow == nil,
		"success_threshold": c.SuccessThreshold == 0, "no_data": c.NoData == ""}
	// A written repeat_interval: 0 turns this check's reminders off (zero.go).
	c.inherited["repeat_interval"] = c.RepeatInterval == 0 && !cfg.zeroWritten(c.Path()+".repeat_interval")
	setDur(&c.Every, d.Every)
	setDur(&c.Timeout, d.Timeout)
	if c.Retries == nil {
		c.Retries = ptr(*d.Retries)
	}
	setInt(&c.FailureThreshold, d.FailureThreshold)
	if c.FailureWindow == nil {
		c.FailureWindow = ptr(*d.FailureWindow)
	}
	setInt(&c.SuccessThreshold, d.SuccessThreshold)
	if c.inherited["repeat_interval"] {
		c.RepeatInterval = d.RepeatInterval
	}
	if c.NoData == "" {
		c.NoData = d.NoData
	}
	if c.Notify == nil {
		c.Notify = append([]string(nil), d.Notify...)
	}
	if c.Spec != nil {
		c.Spec.applyDefaults(cfg, c)
	}
}

// checks validates every check and returns the names of those that have a valid one.
func (v *validator) checks() map[string]bool {
	names := map[string]bool{}
	first := map[string]int{}
	for i, ch := range v.c.Checks {
		p := indexPath("checks", i)
		if ch == nil {
			v.errf(p, "remove the empty item", "empty check")
			continue
		}
		switch {
		case ch.Name == "":
			v.errf(p+".name", "give every check a unique name", "missing")
		case !nameRE.MatchString(ch.Name):
			v.errf(p+".name", nameFix, "%q is not a valid name", ch.Name)
		default:
			if j, dup := first[ch.Name]; dup {
				v.errf(p+".name", "check names must be unique; rename one of them",
					"%q is already the name of checks[%d]", ch.Name, j)
			} else {
				first[ch.Name] = i
			}
			names[ch.Name] = true
		}
		v.check(ch, p)
	}
	for i, ch := range v.c.Checks {
		if ch == nil {
			continue
		}
		for j, n := range ch.Notify {
			v.notifier(indexPath(indexPath("checks", i)+".notify", j), n)
		}
	}
	for j, n := range v.c.Defaults.Notify {
		v.notifier(indexPath("defaults.notify", j), n)
	}
	return names
}

// defaults validates the defaults block's keys once, at defaults.KEY; the checks that
// take a value from it are not told of it again.
func (v *validator) defaults() {
	d := v.c.Defaults
	v.common(&Check{Every: d.Every, Timeout: d.Timeout, Retries: d.Retries, FailureThreshold: d.FailureThreshold,
		FailureWindow: d.FailureWindow, SuccessThreshold: d.SuccessThreshold, RepeatInterval: d.RepeatInterval, NoData: d.NoData}, "defaults")
}

// common validates the keys every check shares (and the defaults block has), but not
// those a check took from the defaults block.
func (v *validator) common(ch *Check, p string) {
	bad := func(key, fix, format string, args ...any) {
		if !ch.inherited[key] {
			v.errf(p+"."+key, fix, format, args...)
		}
	}
	if ch.Every < time.Second {
		bad("every", "use 1s or more", "%s is too frequent", ch.Every)
	}
	if ch.Timeout <= 0 {
		bad("timeout", "use a positive duration such as 10s", "must be positive")
	}
	if *ch.Retries < 0 || *ch.Retries > 10 {
		bad("retries", "use 0 to 10", "%d is out of range", *ch.Retries)
	}
	if ch.FailureThreshold < 1 {
		bad("failure_threshold", "thresholds count runs: use 1 or more", "must be at least 1, got %d", ch.FailureThreshold)
	}
	if ch.SuccessThreshold < 1 {
		bad("success_threshold", "thresholds count runs: use 1 or more", "must be at least 1, got %d", ch.SuccessThreshold)
	}
	if w := *ch.FailureWindow; w != 0 && (w < ch.FailureThreshold || w > MaxFailureWindow) {
		fix := fmt.Sprintf("use 0 (failure_threshold counts failing runs in a row) or %d to %d runs", max(ch.FailureThreshold, 1), MaxFailureWindow)
		switch {
		case w > MaxFailureWindow:
			bad("failure_window", fix, "%d runs is more than vigil keeps", w)
		case !ch.inherited["failure_window"] || !ch.inherited["failure_threshold"]: // the check's own mix
			v.errf(p+".failure_window", fix, "%d runs cannot hold failure_threshold (%d) failing runs", w, ch.FailureThreshold)
		}
	}
	if ch.NoData != NoDataIgnore && ch.NoData != NoDataAlert {
		bad("no_data", "use ignore (inconclusive runs change nothing) or alert (they count as failing runs)", "%q is not a no_data setting", ch.NoData)
	}
	if ch.RepeatInterval != 0 && ch.RepeatInterval < time.Minute {
		bad("repeat_interval", "use 1m or more (e.g. 4h), or 0 for no reminders", "%s would page too often", ch.RepeatInterval)
	}
}

// check validates a check's common keys, then its kind's.
func (v *validator) check(ch *Check, p string) {
	v.common(ch, p)
	for j, a := range ch.Assert {
		if strings.TrimSpace(a) == "" {
			v.errf(indexPath(p+".assert", j), "remove it or write an expression such as status == 200", "empty assertion")
		}
	}
	for _, k := range slices.Sorted(maps.Keys(ch.Labels)) {
		// The status page searches "key=value" and groups by "label:key": a key that is
		// empty or holds a space or "=" could be neither searched nor told apart.
		if k == "" || strings.ContainsFunc(k, func(r rune) bool { return r == '=' || unicode.IsSpace(r) || unicode.IsControl(r) }) {
			at := p + ".labels"
			if k != "" {
				at = joinPath(at, k)
			}
			v.errf(at, "name the label with letters, digits, '-', '_', '.' or '/', e.g. team", "%q is not a label name", k)
		}
	}
	if ch.Spec != nil {
		ch.Spec.validate(v, ch, p)
	}
}
