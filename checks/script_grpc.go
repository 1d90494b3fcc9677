package checks

// A journey's step that calls a unary gRPC method: the grpc kind's call (server
// reflection, the request in protobuf's JSON form) with the journey's variables in its
// request template, judged by the step's assertions over the call's status and response.

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/expr-lang/expr/types"
	"github.com/tidwall/gjson"
	"github.com/vigil-monitor/vigil/configs"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
)

// scriptGRPCStepVars are a gRPC step's variables: the call, plus what earlier steps
// extracted.
var scriptGRPCStepVars = types.Map{
	"grpc_code":    types.String,
	"grpc_message": types.String,
	"rpc_ms":       types.Float64,
	"response":     types.Any,
	"vars":         types.TypeOf(map[string]any{}),
}

// defaultGRPCStepAssert is a gRPC step's assertion when it has none, and the first of its
// assertions when none of them reads grpc_code: the call answered OK. A step that expects
// another status (NotFound after a delete) says so.
var defaultGRPCStepAssert = []string{"grpc_code == 'OK'"}

// stepAnswer is what one step of a journey got: its variables (and their explanations) for
// the step's assertions, where extract reads values from, the version the answer named
// (served_version, "" for none) and where it was read, and a note for a failed assertion's
// reason.
type stepAnswer struct {
	run     *Run
	extract func(from string) (any, bool)
	version string
	where   string
	note    string
}

// grpcStep calls g's method for a step, its request rendered with data. fail is why the
// method could not be called (reflection refused it, a request that does not fit); err is
// no answer from the server, or vigil's own trouble.
func (s *Script) grpcStep(ctx context.Context, g *GRPC, t *Transcript, data map[string]any) (ans *stepAnswer, fail string, err error) {
	conn, err := grpc.NewClient("passthrough:///"+g.address, grpc.WithTransportCredentials(g.creds), grpc.WithUserAgent("vigil"))
	if err != nil {
		return nil, "", fmt.Errorf("gRPC client for %s: %w", g.address, err)
	}
	defer conn.Close()
	ctx = g.outgoing(ctx)
	sr := &Run{Vars: map[string]any{"grpc_message": ""}, Transcript: t}
	a, err := g.invoke(ctx, conn, sr, data)
	switch {
	case err != nil:
		return nil, "", err
	case a == nil:
		return nil, strings.Join(sr.failures, "; "), nil
	}
	sr.Vars["grpc_message"] = a.status.Message()
	if _, ok := sr.Vars["response"]; !ok {
		sr.Vars["response"] = nil
		sr.Explain("response", "the call answered "+a.status.Code().String()+", with no response message")
	}
	ans = &stepAnswer{run: sr, extract: func(from string) (any, bool) { return grpcExtract(from, sr.Vars, a) }}
	if a.status.Code() != codes.OK && a.status.Message() != "" {
		ans.note = fmt.Sprintf(" (%s: %s)", a.status.Code(), Trim(a.status.Message(), 200))
	}
	if sv := s.served; sv != nil {
		if sv.Header != "" {
			ans.where = "metadata " + strings.ToLower(sv.Header)
			if v := a.header.Get(sv.Header); len(v) > 0 {
				ans.version = strings.TrimSpace(v[0])
			}
		} else {
			ans.where = "field " + sv.Field
			ans.version = versionOf(sv, &Response{Body: a.json})
		}
	}
	return ans, "", nil
}

// grpcExtract reads a value for later steps from a gRPC step's answer: json (the response
// message), json.PATH (a gjson path into it, by its fields' .proto names), status (the
// call's code), body (the message as JSON text) or header.NAME (the answer's metadata).
func grpcExtract(from string, vars map[string]any, a *grpcAnswer) (any, bool) {
	switch {
	case from == "status":
		return vars["grpc_code"], true
	case from == "body":
		return string(a.json), len(a.json) > 0
	case from == "json":
		v := vars["response"]
		return v, v != nil
	case strings.HasPrefix(from, "json."):
		r := gjson.GetBytes(a.json, strings.TrimPrefix(from, "json."))
		if !r.Exists() {
			return nil, false
		}
		return r.Value(), true
	case strings.HasPrefix(from, "header."):
		v := a.header.Get(strings.TrimPrefix(from, "header."))
		if len(v) == 0 || v[0] == "" {
			return nil, false
		}
		return v[0], true
	}
	return nil, false
}

// httpStep sends a step's request, rendered with data.
func (s *Script) httpStep(ctx context.Context, st *scriptStep, t *Transcript, data map[string]any) (ans *stepAnswer, fail string, err error) {
	req, err := st.req.Render(data)
	if err != nil {
		return nil, err.Error(), nil
	}
	resp, err := s.client.Do(ctx, req, t)
	if err != nil {
		return nil, "", targetFault(err)
	}
	sr := &Run{Vars: map[string]any{}}
	SetHTTPVars(sr, "", resp, time.Now())
	ans = &stepAnswer{run: sr, extract: func(from string) (any, bool) { return extractValue(from, resp) }}
	if sv := s.served; sv != nil {
		ans.where = "field " + sv.Field
		if sv.Header != "" {
			ans.where = "header " + sv.Header
		}
		ans.version = versionOf(sv, resp)
	}
	return ans, "", nil
}

// buildGRPCStep compiles a journey step's gRPC call; its request may read the variables
// earlier steps extracted.
func (b *builder) buildGRPCStep(path string, s *configs.GRPCSpec, known []string) *GRPC {
	return b.grpcClient(path, s, known, "use {{ .Nonce }} or a variable an earlier step extracted ("+strings.Join(known[1:], ", ")+")",
		"no earlier step extracted")
}
