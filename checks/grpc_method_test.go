package checks

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/reflection"
	rpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	rpbalpha "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// ordersFile is the descriptor of a small orders service, as protoc would compile it from
//
//	syntax = "proto3";
//	package vigiltest.orders.v1;
//	import "google/protobuf/timestamp.proto";
//	enum State { STATE_UNKNOWN = 0; PAID = 1; SHIPPED = 2; }
//	message GetOrderRequest { string id = 1; }
//	message Order { string id = 1; int64 total_cents = 2; State state = 3; repeated string items = 4;
//	  google.protobuf.Timestamp placed_at = 5; map<string, string> labels = 6; bytes receipt = 7; Order parent = 8; }
//	service Orders { rpc GetOrder(GetOrderRequest) returns (Order); rpc Watch(GetOrderRequest) returns (stream Order); }
//
// built here because the suite has no protoc.
func ordersFile(t *testing.T) protoreflect.FileDescriptor {
	t.Helper()
	field := func(name string, n int32, typ descriptorpb.FieldDescriptorProto_Type, typeName string, repeated bool) *descriptorpb.FieldDescriptorProto {
		label := descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL
		if repeated {
			label = descriptorpb.FieldDescriptorProto_LABEL_REPEATED
		}
		f := &descriptorpb.FieldDescriptorProto{Name: proto.String(name), Number: proto.Int32(n), Type: typ.Enum(), Label: label.Enum()}
		if typeName != "" {
			f.TypeName = proto.String(typeName)
		}
		return f
	}
	str, i64, enum, msg, byt := descriptorpb.FieldDescriptorProto_TYPE_STRING, descriptorpb.FieldDescriptorProto_TYPE_INT64,
		descriptorpb.FieldDescriptorProto_TYPE_ENUM, descriptorpb.FieldDescriptorProto_TYPE_MESSAGE, descriptorpb.FieldDescriptorProto_TYPE_BYTES
	fdp := &descriptorpb.FileDescriptorProto{
		Name: proto.String("vigiltest/orders/v1/orders.proto"), Package: proto.String("vigiltest.orders.v1"), Syntax: proto.String("proto3"),
		Dependency: []string{"google/protobuf/timestamp.proto"},
		EnumType: []*descriptorpb.EnumDescriptorProto{{Name: proto.String("State"), Value: []*descriptorpb.EnumValueDescriptorProto{
			{Name: proto.String("STATE_UNKNOWN"), Number: proto.Int32(0)}, {Name: proto.String("PAID"), Number: proto.Int32(1)},
			{Name: proto.String("SHIPPED"), Number: proto.Int32(2)}}}},
		MessageType: []*descriptorpb.DescriptorProto{
			{Name: proto.String("GetOrderRequest"), Field: []*descriptorpb.FieldDescriptorProto{field("id", 1, str, "", false)}},
			{Name: proto.String("Order"), Field: []*descriptorpb.FieldDescriptorProto{
				field("id", 1, str, "", false), field("total_cents", 2, i64, "", false), field("state", 3, enum, ".vigiltest.orders.v1.State", false),
				field("items", 4, str, "", true), field("placed_at", 5, msg, ".google.protobuf.Timestamp", false),
				field("labels", 6, msg, ".vigiltest.orders.v1.Order.LabelsEntry", true), field("receipt", 7, byt, "", false),
				field("parent", 8, msg, ".vigiltest.orders.v1.Order", false)},
				NestedType: []*descriptorpb.DescriptorProto{{Name: proto.String("LabelsEntry"),
					Field:   []*descriptorpb.FieldDescriptorProto{field("key", 1, str, "", false), field("value", 2, str, "", false)},
					Options: &descriptorpb.MessageOptions{MapEntry: proto.Bool(true)}}}},
		},
		Service: []*descriptorpb.ServiceDescriptorProto{{Name: proto.String("Orders"), Method: []*descriptorpb.MethodDescriptorProto{
			{Name: proto.String("GetOrder"), InputType: proto.String(".vigiltest.orders.v1.GetOrderRequest"), OutputType: proto.String(".vigiltest.orders.v1.Order")},
			{Name: proto.String("Watch"), InputType: proto.String(".vigiltest.orders.v1.GetOrderRequest"), OutputType: proto.String(".vigiltest.orders.v1.Order"),
				ServerStreaming: proto.Bool(true)}}}},
	}
	_ = timestamppb.Now() // links google/protobuf/timestamp.proto into the global registry
	fd, err := protodesc.NewFile(fdp, protoregistry.GlobalFiles)
	if err != nil {
		t.Fatal(err)
	}
	return fd
}

// withOrders registers the orders service and reflection (v1, or v1alpha only as older
// servers have it): GetOrder answers order "o-1", NOT_FOUND for "missing", and waits
// until the call's end for "slow".
func withOrders(t *testing.T, fd protoreflect.FileDescriptor, alphaOnly bool) func(*grpc.Server) {
	files := new(protoregistry.Files)
	for _, f := range []protoreflect.FileDescriptor{timestamppb.File_google_protobuf_timestamp_proto, fd} {
		if err := files.RegisterFile(f); err != nil {
			t.Fatal(err)
		}
	}
	svc := fd.Services().ByName("Orders")
	get := svc.Methods().ByName("GetOrder")
	return func(s *grpc.Server) {
		s.RegisterService(&grpc.ServiceDesc{ServiceName: string(svc.FullName()), HandlerType: (*any)(nil),
			Methods: []grpc.MethodDesc{{MethodName: "GetOrder", Handler: func(_ any, ctx context.Context, dec func(any) error, in grpc.UnaryServerInterceptor) (any, error) {
				req := dynamicpb.NewMessage(get.Input())
				if err := dec(req); err != nil {
					return nil, err
				}
				h := func(ctx context.Context, _ any) (any, error) {
					id := req.Get(get.Input().Fields().ByName("id")).String()
					switch id {
					case "missing":
						return nil, status.Errorf(codes.NotFound, "no order %q", id)
					case "slow":
						<-ctx.Done()
						return nil, ctx.Err()
					}
					out := dynamicpb.NewMessage(get.Output())
					f := get.Output().Fields()
					out.Set(f.ByName("id"), protoreflect.ValueOfString(id))
					out.Set(f.ByName("total_cents"), protoreflect.ValueOfInt64(1<<40))
					out.Set(f.ByName("state"), protoreflect.ValueOfEnum(2))
					items := out.Mutable(f.ByName("items")).List()
					items.Append(protoreflect.ValueOfString("book"))
					items.Append(protoreflect.ValueOfString("lamp"))
					out.Set(f.ByName("placed_at"), protoreflect.ValueOfMessage(timestamppb.New(time.Date(2026, 12, 1, 9, 30, 0, 0, time.UTC)).ProtoReflect()))
					out.Mutable(f.ByName("labels")).Map().Set(protoreflect.ValueOfString("region").MapKey(), protoreflect.ValueOfString("eu"))
					out.Set(f.ByName("receipt"), protoreflect.ValueOfBytes([]byte("ok")))
					return out, nil
				}
				return in(ctx, req, &grpc.UnaryServerInfo{FullMethod: "/" + string(svc.FullName()) + "/GetOrder"}, h)
			}}},
			Streams:  []grpc.StreamDesc{{StreamName: "Watch", ServerStreams: true, Handler: func(any, grpc.ServerStream) error { return nil }}},
			Metadata: fd.Path(),
		}, struct{}{})
		opts := reflection.ServerOptions{Services: s, DescriptorResolver: files}
		if alphaOnly {
			rpbalpha.RegisterServerReflectionServer(s, reflection.NewServer(opts))
		} else {
			rpb.RegisterServerReflectionServer(s, reflection.NewServerV1(opts))
		}
	}
}

func TestGRPCMethod(t *testing.T) {
	fd := ordersFile(t)
	for _, alpha := range []bool{false, true} {
		t.Run(fmt.Sprintf("v1alpha only %v", alpha), func(t *testing.T) {
			srv := newGRPCServer(t, nil, withOrders(t, fd, alpha))
			res := run(t, buildOne(t, grpcCheck(srv.addr, `    method: vigiltest.orders.v1.Orders/GetOrder
    request: '{"id": "o-1"}'
    metadata: {x-tenant: synthetic}
    assert:
      - grpc_code == 'OK'
      - response.id == 'o-1'
      - response.total_cents == 1099511627776
      - response.state == 'SHIPPED'
      - len(response.items) == 2 && response.items[1] == 'lamp'
      - response.placed_at == '2026-12-01T09:30:00Z'
      - response.labels.region == 'eu'
      - response.receipt == 'b2s='
      - response.parent == nil
`)), Input{})
			wantOutcome(t, res, Pass)
			if got := srv.lastMetadata("x-tenant"); len(got) != 1 || got[0] != "synthetic" {
				t.Errorf("the method saw x-tenant %q", got)
			}
			if tr := strings.Join(res.Transcript, "\n"); !strings.Contains(tr, `"total_cents":`) || !strings.Contains(tr, `"1099511627776"`) {
				t.Errorf("the transcript does not show the response:\n%s", tr)
			}
		})
	}
}

func TestGRPCMethodFailures(t *testing.T) {
	fd := ordersFile(t)
	srv := newGRPCServer(t, nil, withOrders(t, fd, false))
	method := func(m, request string) string {
		return fmt.Sprintf("    method: %s\n    request: '%s'\n", m, request)
	}
	cases := []struct {
		name, extra string
		want        Outcome
		reason      string
	}{
		{"an error status fails", method("vigiltest.orders.v1.Orders/GetOrder", `{"id": "missing"}`), Fail,
			`answered NotFound: no order "missing"`},
		{"an assertion on the response", method("vigiltest.orders.v1.Orders/GetOrder", `{"id": "o-1"}`) + "    assert: [\"response.state == 'PAID'\"]\n", Fail,
			"response.state"},
		{"a field the input does not have", method("vigiltest.orders.v1.Orders/GetOrder", `{"order_id": "o-1"}`), Fail,
			"request does not fit vigiltest.orders.v1.GetOrderRequest"},
		{"a method the service does not have", method("vigiltest.orders.v1.Orders/CancelOrder", `{}`), Fail,
			"service vigiltest.orders.v1.Orders has no method CancelOrder (it has: GetOrder, Watch)"},
		{"a service the server does not have", method("vigiltest.billing.v1.Billing/Charge", `{}`), Fail,
			"the server's reflection does not know service vigiltest.billing.v1.Billing (NotFound"},
		{"a streaming method", method("vigiltest.orders.v1.Orders/Watch", `{}`), Fail,
			"vigiltest.orders.v1.Orders.Watch is a streaming method"},
		{"a status assertion without the health check is not judged", method("vigiltest.orders.v1.Orders/GetOrder", `{"id": "o-1"}`) + "    assert: [\"status == 'SERVING'\"]\n",
			Inconclusive, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantOutcome(t, run(t, buildOne(t, grpcCheck(srv.addr, c.extra)), Input{}), c.want, c.reason)
		})
	}

	// blackbox_exporter's status code series says the method's code; a method check has
	// no serving status.
	res := run(t, buildOne(t, grpcCheck(srv.addr, method("vigiltest.orders.v1.Orders/GetOrder", `{"id": "missing"}`))), Input{})
	if res.Vars["grpc_code"] != "NotFound" {
		t.Errorf("grpc_code after a NOT_FOUND call: %v; want NotFound, as docs/KINDS.md says", res.Vars["grpc_code"])
	}
	reg := prometheus.NewRegistry()
	NewKindMetrics(reg).Observe(res)
	mfs, _ := reg.Gather()
	var series []string
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			series = append(series, fmt.Sprintf("%s %g", mf.GetName(), m.GetGauge().GetValue()))
		}
	}
	if !slices.Contains(series, "probe_grpc_status_code 5") || slices.ContainsFunc(series, func(s string) bool { return strings.HasPrefix(s, "probe_grpc_healthcheck") }) {
		t.Errorf("series after a NOT_FOUND call: %q; want probe_grpc_status_code 5 and no serving status", series)
	}

	// A server without reflection fails, saying what to register; no status code is made up.
	bare := newGRPCServer(t, nil, withHealth(serving))
	res = run(t, buildOne(t, grpcCheck(bare.addr, method("vigiltest.orders.v1.Orders/GetOrder", `{}`))), Input{})
	wantOutcome(t, res, Fail, "offers no reflection service")
	if code, ok := res.Vars["grpc_code"]; ok {
		t.Errorf("grpc_code %v for a method never called", code)
	}
	// A method that never answers, and nothing listening: errors, never a hang.
	c := buildOne(t, strings.Replace(grpcCheck(srv.addr, method("vigiltest.orders.v1.Orders/GetOrder", `{"id": "slow"}`)), "timeout: 2s", "timeout: 300ms", 1))
	wantOutcome(t, run(t, c, Input{}), Error, "DeadlineExceeded")
	wantOutcome(t, run(t, buildOne(t, grpcCheck(closedAddr(t), method("vigiltest.orders.v1.Orders/GetOrder", `{}`))), Input{}), Error, "Unavailable")
}

func TestGRPCMethodConfigErrors(t *testing.T) {
	for _, c := range []struct{ extra, want string }{
		{"    method: Orders.GetOrder\n", `checks[0].method: "Orders.GetOrder" is not package.Service/Method`},
		{"    method: a.B/C/D\n", `"a.B/C/D" is not package.Service/Method`},
		{"    method: a..B/C\n", `"a..B/C" is not package.Service/Method`},
		{"    method: 1a.B/C\n", `"1a.B/C" is not package.Service/Method`},
		{"    method: a.B/C\n    service: api\n", "checks[0].service: service and method are both set"},
		{"    request: '{}'\n", "checks[0].request: request is set without a method"},
		{"    method: a.B/C\n    request: '[1]'\n", "checks[0].request: request is not a JSON object"},
		{"    method: a.B/C\n    request: 'null'\n", "request is not a JSON object: it is null"},
		{"    method: a.B/C\n    request: '{\"id\": '\n", "request is not a JSON object"},
	} {
		wantBuildError(t, grpcCheck("127.0.0.1:50051", c.extra), c.want)
	}
	buildOne(t, grpcCheck("127.0.0.1:50051", "    method: /grpc.health.v1.Health/Check\n    request: '{\"service\": \"\"}'\n"))
}

// endNow, as a hostile reflection's answer, ends the stream (status OK) without one.
var endNow = new(rpb.ServerReflectionResponse)

// hostileReflection is a reflection service that answers with what answer gives it (or
// holds the stream open, for nil; ends it, for endNow), whatever it is asked.
func hostileReflection(answer func(req *rpb.ServerReflectionRequest) *rpb.ServerReflectionResponse) func(*grpc.Server) {
	return func(s *grpc.Server) {
		s.RegisterService(&grpc.ServiceDesc{ServiceName: "grpc.reflection.v1.ServerReflection", HandlerType: (*any)(nil),
			Streams: []grpc.StreamDesc{{StreamName: "ServerReflectionInfo", ServerStreams: true, ClientStreams: true,
				Handler: func(_ any, stream grpc.ServerStream) error {
					for {
						req := new(rpb.ServerReflectionRequest)
						if err := stream.RecvMsg(req); err != nil {
							return nil
						}
						resp := answer(req)
						if resp == endNow {
							return nil
						}
						if resp == nil { // silence until the call's deadline, which the server has too; then the end
							<-stream.Context().Done()
							return nil
						}
						if err := stream.SendMsg(resp); err != nil {
							return nil
						}
					}
				}}}}, struct{}{})
	}
}

// Reflection services that lie: descriptors that do not parse, imports they will not
// send, an empty answer, silence. Each run ends in a failure or an error that says so.
func TestGRPCMethodHostileReflection(t *testing.T) {
	files := func(fds ...*descriptorpb.FileDescriptorProto) *rpb.ServerReflectionResponse {
		var raw [][]byte
		for _, fd := range fds {
			b, _ := proto.Marshal(fd)
			raw = append(raw, b)
		}
		return &rpb.ServerReflectionResponse{MessageResponse: &rpb.ServerReflectionResponse_FileDescriptorResponse{
			FileDescriptorResponse: &rpb.FileDescriptorResponse{FileDescriptorProto: raw}}}
	}
	orders := protodesc.ToFileDescriptorProto(ordersFile(t))
	importsMissing := proto.Clone(orders).(*descriptorpb.FileDescriptorProto)
	importsMissing.Dependency = append(importsMissing.Dependency, "vigiltest/missing.proto")
	notFound := &rpb.ServerReflectionResponse{MessageResponse: &rpb.ServerReflectionResponse_ErrorResponse{
		ErrorResponse: &rpb.ErrorResponse{ErrorCode: int32(codes.NotFound), ErrorMessage: "no such file"}}}
	cases := []struct {
		name   string
		answer func(*rpb.ServerReflectionRequest) *rpb.ServerReflectionResponse
		want   Outcome
		reason string
	}{
		{"bytes that are no descriptor", func(*rpb.ServerReflectionRequest) *rpb.ServerReflectionResponse {
			return &rpb.ServerReflectionResponse{MessageResponse: &rpb.ServerReflectionResponse_FileDescriptorResponse{
				FileDescriptorResponse: &rpb.FileDescriptorResponse{FileDescriptorProto: [][]byte{[]byte("\xff\xff not a descriptor")}}}}
		}, Fail, "reflection sent a descriptor that does not parse"},
		{"an import it will not send", func(req *rpb.ServerReflectionRequest) *rpb.ServerReflectionResponse {
			if req.GetFileByFilename() != "" {
				return notFound
			}
			return files(importsMissing)
		}, Fail, "the server's reflection does not know file vigiltest/missing.proto"},
		{"the service's file without the timestamp import: protobuf's own is used", func(*rpb.ServerReflectionRequest) *rpb.ServerReflectionResponse {
			return files(orders)
		}, Fail, "answered Unimplemented"}, // the descriptors build; the method itself is not served
		{"imports sent one by one when asked", func(req *rpb.ServerReflectionRequest) *rpb.ServerReflectionResponse {
			if req.GetFileByFilename() == "vigiltest/missing.proto" {
				return files(&descriptorpb.FileDescriptorProto{Name: proto.String("vigiltest/missing.proto"), Package: proto.String("vigiltest.other")})
			}
			return files(importsMissing) // without it, and without the timestamp's file
		}, Fail, "answered Unimplemented"}, // the descriptors build from the imports asked for
		{"a file that does not define the service", func(*rpb.ServerReflectionRequest) *rpb.ServerReflectionResponse {
			return files(&descriptorpb.FileDescriptorProto{Name: proto.String("empty.proto"), Package: proto.String("other")})
		}, Fail, "do not define service vigiltest.orders.v1.Orders"},
		{"an empty answer", func(*rpb.ServerReflectionRequest) *rpb.ServerReflectionResponse {
			return &rpb.ServerReflectionResponse{}
		}, Fail, "with no descriptor"},
		{"silence", func(*rpb.ServerReflectionRequest) *rpb.ServerReflectionResponse { return nil }, Error, "DeadlineExceeded"},
		{"the stream ended at once, unanswered", func(*rpb.ServerReflectionRequest) *rpb.ServerReflectionResponse { return endNow }, Fail,
			"ended the stream without answering the question for service vigiltest.orders.v1.Orders"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := newGRPCServer(t, nil, hostileReflection(c.answer))
			check := buildOne(t, strings.Replace(grpcCheck(srv.addr, "    method: vigiltest.orders.v1.Orders/GetOrder\n"), "timeout: 2s", "timeout: 500ms", 1))
			wantOutcome(t, run(t, check, Input{}), c.want, c.reason)
		})
	}
}

// Well-known types read as their JSON forms.
func TestGRPCMessageValueWellKnownTypes(t *testing.T) {
	if got := messageValue(durationpb.New(1500 * time.Millisecond).ProtoReflect()); got != "1.500s" {
		t.Errorf("a Duration reads %v; want 1.500s", got)
	}
	if got := messageValue(wrapperspb.Bool(true).ProtoReflect()); got != true {
		t.Errorf("a BoolValue reads %v; want true", got)
	}
}

// {{ .Nonce }} in the request is a fresh marker each run, as in http requests.
func TestGRPCMethodNonce(t *testing.T) {
	srv := newGRPCServer(t, nil, withOrders(t, ordersFile(t), false))
	c := buildOne(t, grpcCheck(srv.addr, `    method: vigiltest.orders.v1.Orders/GetOrder
    request: '{"id": "synthetic-{{ .Nonce }}"}'
    assert: ["response.id startsWith 'synthetic-'", "len(response.id) > 14"]
`))
	first, second := run(t, c, Input{}), run(t, c, Input{})
	wantOutcome(t, first, Pass)
	wantOutcome(t, second, Pass)
	id := func(r *Result) any { return r.Vars["response"].(map[string]any)["id"] }
	if id(first) == id(second) {
		t.Errorf("two runs sent the same id %v", id(first))
	}
	wantBuildError(t, grpcCheck(srv.addr, "    method: a.B/C\n    request: '{\"id\": \"{{ .cart }}\"}'\n"), "checks[0].request: template reads .cart")
	wantBuildError(t, grpcCheck(srv.addr, "    method: a.B/C\n    request: '{\"id\": \"{{ .Nonce \"}'\n"), "checks[0].request: bad template")
}
