package main

import (
	"fmt"

	"github.com/spf13/pflag"
)

// onceString is a string flag that names one thing (a config file, a service, a version,
// an agent) and refuses to be given twice: pflag's own lets the last one win silently, so
// `--service web --service api` ran api's checks alone, and a template's --version and a
// user's both "worked". A default (from the environment) is not a first time, and the
// same value twice is let be.
type onceString struct {
	p   *string
	set bool
}

func (o *onceString) String() string {
	if o.p == nil {
		return ""
	}
	return *o.p
}

func (o *onceString) Set(v string) error {
	// The same value again is the same request (and cobra's completion parses a command
	// line twice); another one is a conflict.
	if o.set && v != *o.p {
		return fmt.Errorf("given twice (%q, then %q): name it once", *o.p, v)
	}
	*o.p, o.set = v, true
	return nil
}

func (o *onceString) Type() string { return "string" }

// stringOnce defines a onceString flag, as fs.StringVarP defines a string flag.
func stringOnce(fs *pflag.FlagSet, p *string, name, short, value, usage string) {
	*p = value
	fs.VarP(&onceString{p: p}, name, short, usage)
}
