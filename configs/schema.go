package configs

import (
	"encoding/json"
	"maps"
	"reflect"
	"slices"

	"github.com/invopop/jsonschema"
)

// SchemaID is the $id of the config file's JSON Schema.
const SchemaID = "https://vigil.dev/schema/config.json"

// Schema returns the JSON Schema (2020-12) of a config file, for editors: generated from
// the types the loader decodes into, by their koanf tags, so that a key the loader knows is
// a key the schema knows. Where the loader takes more than one shape (a duration, a size,
// routes as a list or a mapping, a reader as a URL) the schema says so, and a check's keys
// depend on its kind as a notifier's depend on its type. Any string may hold a ${VAR}
// reference, which the loader expands before decoding; the schema admits one wherever the
// value is not a string.
func Schema() ([]byte, error) {
	r := &jsonschema.Reflector{FieldNameTag: "koanf", DoNotReference: true, RequiredFromJSONSchemaTags: true, Mapper: schemaFor}
	s := r.Reflect(&Config{})
	s.ID = SchemaID
	s.Definitions = schemaDefs
	s.Title = "vigil configuration"
	s.Description = "The config file of vigil, the post-deploy acceptance monitor: `vigil schema` prints this."
	return json.MarshalIndent(s, "", "  ")
}

// envRefSchema is a string holding a ${VAR} reference.
var envRefSchema = &jsonschema.Schema{Type: "string", Pattern: `\$\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\}`,
	Description: "a ${VAR} reference, expanded from the environment when the config loads"}

// numericString is a number written as a string (a quoted number, or what a ${VAR} gave).
var numericString = &jsonschema.Schema{Type: "string", Pattern: `^\s*[-+]?[0-9.]+([eE][-+]?[0-9]+)?\s*$`}

// schemaDefs are the shapes many keys share, referred to as #/$defs/NAME.
var schemaDefs = jsonschema.Definitions{
	"env": envRefSchema,
	"duration": {AnyOf: []*jsonschema.Schema{
		{Type: "string", Pattern: `^\s*(0|-?([0-9]+d)?([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))*)\s*$`,
			Description: "a duration: 500ms, 30s, 5m, 1h30m or 7d"},
		{Const: 0}, ref("env")}},
	"secret": {Type: "string", Description: "a secret: write ${VAR} to read it from the environment"},
	"size": {AnyOf: []*jsonschema.Schema{
		{Type: "integer", Minimum: "0", Description: "bytes"},
		{Type: "string", Pattern: `^\s*[0-9.]+\s*([kKMGT]i?B|[kKMGT]|B)?\s*$`, Description: "a size: 500MB, 2GB, 1GiB"},
		ref("env")}},
	"integer": {AnyOf: []*jsonschema.Schema{{Type: "integer"}, numericString, ref("env")}},
	"number":  {AnyOf: []*jsonschema.Schema{{Type: "number"}, numericString, ref("env")}},
	"boolean": {AnyOf: []*jsonschema.Schema{{Type: "boolean"},
		{Enum: anys([]string{"1", "t", "T", "TRUE", "true", "True", "0", "f", "F", "FALSE", "false", "False"})}, ref("env")}},
}

func ref(name string) *jsonschema.Schema { return &jsonschema.Schema{Ref: "#/$defs/" + name} }

// schemaFor maps the types the loader decodes specially; nil leaves a type to reflection.
func schemaFor(t reflect.Type) *jsonschema.Schema {
	switch t {
	case durationType:
		return ref("duration")
	case secretType:
		return ref("secret")
	case reflect.TypeOf(ByteSize(0)):
		return ref("size")
	case reflect.TypeOf(Routes{}):
		list := &jsonschema.Schema{Type: "array", Items: &jsonschema.Schema{Type: "string"}}
		return &jsonschema.Schema{AnyOf: []*jsonschema.Schema{list, {Type: "object",
			PropertyNames: &jsonschema.Schema{Enum: anys(Events)}, AdditionalProperties: list}},
			Description: "notifier names for every event, or a mapping from event to notifier names"}
	case reflect.TypeOf(Reader{}):
		return &jsonschema.Schema{AnyOf: []*jsonschema.Schema{{Type: "string", Description: "the reader's URL"},
			structSchema(t)}}
	case reflect.TypeOf(Check{}):
		return checkSchema()
	case reflect.TypeOf(Notifier{}):
		return notifierSchema()
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int32, reflect.Int64:
		return ref("integer")
	case reflect.Float64:
		return ref("number")
	case reflect.Bool:
		return ref("boolean")
	}
	return nil
}

// structSchema reflects t's fields as the loader decodes them: by koanf tag, no other key.
func structSchema(t reflect.Type) *jsonschema.Schema {
	r := &jsonschema.Reflector{FieldNameTag: "koanf", DoNotReference: true, RequiredFromJSONSchemaTags: true}
	r.Mapper = func(u reflect.Type) *jsonschema.Schema {
		if u == t {
			return nil // t itself: reflect it, not map it again
		}
		return schemaFor(u)
	}
	s := r.ReflectFromType(t)
	s.Version, s.ID = "", ""
	return s
}

// checkSchema is a check: the keys every kind shares, and those of the kind it names.
func checkSchema() *jsonschema.Schema {
	s := structSchema(reflect.TypeOf(Check{}))
	s.Required = []string{"name", "kind"}
	// The kind's keys come from the matching branch below: unevaluatedProperties (not
	// additionalProperties, which cannot see into branches) refuses every other key.
	s.AdditionalProperties = nil
	s.Extras = map[string]any{"unevaluatedProperties": false}
	if kind, ok := s.Properties.Get("kind"); ok {
		kind.Enum = anys(Kinds())
	}
	for _, k := range kinds {
		spec := structSchema(reflect.TypeOf(k.newSpec()).Elem())
		s.AllOf = append(s.AllOf, &jsonschema.Schema{
			If:   when("kind", k.name),
			Then: &jsonschema.Schema{Properties: spec.Properties},
		})
	}
	return s
}

// notifierSchema is a notifier: the keys of the type it names.
func notifierSchema() *jsonschema.Schema {
	s := structSchema(reflect.TypeOf(Notifier{}))
	s.Required = []string{"type"}
	types := slices.Sorted(maps.Keys(notifierKeys))
	if typ, ok := s.Properties.Get("type"); ok {
		typ.Enum = anys(types)
	}
	for _, typ := range types {
		allowed := append([]string{"type", "events", "dry_run"}, notifierKeys[typ]...)
		s.AllOf = append(s.AllOf, &jsonschema.Schema{
			If:   when("type", typ),
			Then: &jsonschema.Schema{PropertyNames: &jsonschema.Schema{Enum: anys(allowed)}},
		})
	}
	if events, ok := s.Properties.Get("events"); ok {
		events.Items = &jsonschema.Schema{Enum: anys(Events)}
	}
	return s
}

// when matches an object whose key has the value v.
func when(key, v string) *jsonschema.Schema {
	p := jsonschema.NewProperties()
	p.Set(key, &jsonschema.Schema{Const: v})
	return &jsonschema.Schema{Properties: p, Required: []string{key}}
}

func anys(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}
