package configs

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"
)

// compileSchema compiles Schema() with an independent validator (santhosh-tekuri/jsonschema).
func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	raw, err := Schema()
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(SchemaID, doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(SchemaID)
	if err != nil {
		t.Fatalf("the schema does not compile: %v", err)
	}
	return s
}

// yamlInstance reads a YAML file as the JSON value a schema validator takes.
func yamlInstance(t *testing.T, path string) any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		return nil
	}
	j, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(j))
	if err != nil {
		t.Fatal(err)
	}
	return inst
}

// Every example the loader accepts, the schema accepts; and every example points an editor
// at the schema.
func TestSchemaAcceptsTheExamples(t *testing.T) {
	t.Parallel()
	s := compileSchema(t)
	files, _ := filepath.Glob("examples/*.yaml")
	if len(files) == 0 {
		t.Fatal("no examples")
	}
	for _, f := range files {
		data, _ := os.ReadFile(f)
		if !bytes.HasPrefix(data, []byte("# yaml-language-server: $schema=../../docs/vigil.schema.json\n")) {
			t.Errorf("%s: does not start with the yaml-language-server comment pointing at docs/vigil.schema.json", f)
		}
		if err := s.Validate(yamlInstance(t, f)); err != nil {
			t.Errorf("%s: the loader accepts it, the schema does not:\n%v", f, err)
		}
	}
}

// What the loader refuses for its shape (an unknown key, a key of another kind, a wrong
// type, an unknown kind, a duration without a unit), the schema refuses too: an editor
// underlines what validate would report.
func TestSchemaRefusesWhatTheLoaderRefusesForItsShape(t *testing.T) {
	t.Parallel()
	s := compileSchema(t)
	shape := []string{"unknown key", "not a key of", "expected a", "expected true or false", "unknown kind", "is not a duration",
		"number without a unit", "unknown event"}
	files, _ := filepath.Glob("testdata/bad/*.yaml")
	checked := 0
	for _, f := range files {
		_, err := Load(f, Options{Environ: []string{}})
		if err == nil {
			continue // refused later, when checks compile its expressions and templates
		}
		structural := false
		for _, w := range shape {
			structural = structural || strings.Contains(err.Error(), w)
		}
		inst := yamlInstance(t, f)
		if !structural || inst == nil {
			continue // a rule about values (ranges, references): the loader's alone
		}
		checked++
		if s.Validate(inst) == nil {
			t.Errorf("%s: the loader refuses it for its shape, the schema accepts it:\n%v", f, err)
		}
	}
	if checked < 5 {
		t.Errorf("only %d bad configs were shape errors; the corpus should have more", checked)
	}
}

// docs/vigil.schema.json is what `vigil schema` prints today.
func TestSchemaFileIsCurrent(t *testing.T) {
	t.Parallel()
	want, err := Schema()
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("../docs/vigil.schema.json")
	if err != nil || !bytes.Equal(bytes.TrimSpace(got), bytes.TrimSpace(want)) {
		t.Errorf("docs/vigil.schema.json is not what the config types give (%v): run `go run ./cmd/vigil schema > docs/vigil.schema.json`", err)
	}
}

// The schema is generated from koanf tags: a field without one would be in the schema under
// its Go name and not in the loader at all.
func TestEveryConfigFieldHasAKoanfTag(t *testing.T) {
	t.Parallel()
	seen := map[reflect.Type]bool{}
	var walk func(reflect.Type)
	walk = func(ty reflect.Type) {
		for ty.Kind() == reflect.Pointer || ty.Kind() == reflect.Slice || ty.Kind() == reflect.Map {
			ty = ty.Elem()
		}
		if ty.Kind() != reflect.Struct || seen[ty] || ty.PkgPath() != reflect.TypeOf(Config{}).PkgPath() {
			return
		}
		seen[ty] = true
		for i := range ty.NumField() {
			f := ty.Field(i)
			if !f.IsExported() {
				continue
			}
			switch tag := f.Tag.Get("koanf"); tag {
			case "":
				t.Errorf("%s.%s has no koanf tag: give it one, or `koanf:\"-\"` if it is not read from the file", ty.Name(), f.Name)
			case "-":
			default:
				walk(f.Type)
			}
		}
	}
	walk(reflect.TypeOf(Config{}))
	for _, k := range kinds {
		walk(reflect.TypeOf(k.newSpec()))
	}
}
