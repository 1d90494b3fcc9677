package configs

import (
	"reflect"
	"slices"
	"strings"
)

// notKeyVariables are VIGIL_ variables vigil reads that are not config keys.
var notKeyVariables = []string{"VIGIL_CONFIG", "VIGIL_BROWSER", "VIGIL_API_TOKEN"}

// singleUnderscoreKey is the key path a VIGIL_ variable without a double underscore would
// set had it been written with one between section and key (VIGIL_AGENT_LISTEN:
// agent.listen), or "" when it names no key. Such a variable is no override, and set
// without a word it left the key at the file's value: the operator meant the key.
func singleUnderscoreKey(name string) string {
	rest, ok := strings.CutPrefix(name, envPrefix)
	if !ok || strings.Contains(rest, "__") || slices.Contains(notKeyVariables, name) {
		return ""
	}
	return keyPathIn(reflect.TypeFor[Config](), strings.ToLower(rest))
}

// keyPathIn reads s, key names joined by single underscores (a key's own name may hold
// one too), as a path to a value one variable can set in t: a text value, a number, a
// duration, not a mapping or a list. "" when it is none.
func keyPathIn(t reflect.Type, s string) string {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		fields := structFields(t)
		for _, key := range keysOf(fields) {
			ft := t.Field(fields[key]).Type
			if s == key && oneValue(ft) {
				return key
			}
			if sub, ok := strings.CutPrefix(s, key+"_"); ok {
				if p := keyPathIn(ft, sub); p != "" {
					return key + "." + p
				}
			}
		}
	case reflect.Map:
		// A map's keys are names the file gives (services.web): any part of s before an
		// underscore may be one.
		for i := strings.Index(s, "_"); i > 0; i = nextUnderscore(s, i) {
			if p := keyPathIn(t.Elem(), s[i+1:]); p != "" {
				return s[:i] + "." + p
			}
		}
	}
	return ""
}

func nextUnderscore(s string, i int) int {
	j := strings.Index(s[i+1:], "_")
	if j < 0 {
		return -1
	}
	return i + 1 + j
}

// oneValue says whether a variable's one text value can set a key of type t.
func oneValue(t reflect.Type) bool {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct, reflect.Map, reflect.Slice:
		return false
	}
	return true
}
