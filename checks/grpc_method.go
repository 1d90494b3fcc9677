package checks

// Calling a unary gRPC method by name (the grpc kind's method). vigil has no .proto files:
// each run asks the server's reflection service (grpc.reflection.v1, or v1alpha for older
// servers) for the service's descriptors, builds the request from its JSON form and reads
// the answer into the response variable. Asking on every run costs one round trip on the
// run's connection, and judges the deploy by the schema it serves: a renamed field or a
// removed method is a failure, as it is for the service's clients.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"github.com/vigil-monitor/vigil/configs"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	rpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
)

// reflectionMethods are the reflection services asked, newest first. v1alpha has the same
// messages under another package name, so one set of message types speaks both.
var reflectionMethods = []string{
	"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
	"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
}

// maxReflectedFiles bounds the descriptors one run reads: a service's file and its imports.
const maxReflectedFiles = 256

// unreached says whether a status means nothing answered: refused, no HTTP/2, no answer in
// time.
func unreached(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Canceled:
		return true
	}
	return false
}

// grpcNoAnswer marks err, a call's that the server did not answer (st), as no answer
// (noAnswer), unless st is about the TLS handshake: a certificate vigil cannot verify is
// vigil's trouble. gRPC keeps the transport's error only as text.
func grpcNoAnswer(st *status.Status, err error) error {
	msg := st.Message()
	if st.Code() == codes.Canceled || strings.Contains(msg, "handshake") || strings.Contains(msg, "x509") || strings.Contains(msg, "certificate") {
		return err
	}
	return &noAnswerError{err}
}

// call runs one call of g.method on conn: an answer with a status other than OK fails the
// run.
func (g *GRPC) call(ctx context.Context, conn *grpc.ClientConn, run *Run) error {
	a, err := g.invoke(ctx, conn, run, map[string]any{"Nonce": newNonce()})
	if err != nil || a == nil || a.status.Code() == codes.OK {
		return err
	}
	run.Unmeasured("the call answered "+a.status.Code().String(), "response")
	run.Failf("%s on %s answered %s: %s", g.method, g.address, a.status.Code(), Trim(a.status.Message(), 200))
	return nil
}

// grpcAnswer is what a call of a method answered: its status, the answer's header
// metadata, and the response message as JSON (by its fields' .proto names; "" unless OK).
type grpcAnswer struct {
	status *status.Status
	header metadata.MD
	json   []byte
}

// invoke resolves g.method on conn, renders its request with data and calls it, setting
// rpc_ms, grpc_code and response in run.Vars. A method it could not call (refused by
// reflection, a request that does not fit its input) fails run and answers nil; no answer
// from the server is err; any status the method answered is in the answer, for the caller
// to judge.
func (g *GRPC) invoke(ctx context.Context, conn *grpc.ClientConn, run *Run, data map[string]any) (*grpcAnswer, error) {
	service, name, _ := configs.GRPCMethod(g.method) // validated when the config loaded
	start := time.Now()
	run.Transcript.Printf("server reflection: descriptors of %s from %s", service, g.address)
	md, err := resolveMethod(ctx, conn, service, name)
	if err != nil {
		run.Vars["rpc_ms"] = ms(time.Since(start))
		if st, ok := status.FromError(err); ok { // the reflection call's own; not a verdict of vigil's
			run.Vars["grpc_code"] = st.Code().String()
		} else {
			run.Unmeasured("the method was not called", "grpc_code")
		}
		if unreached(err) {
			run.Unmeasured("the server did not answer", "response")
			if m := g.mismatch(ctx, status.Convert(err)); m != nil {
				run.Failf("%s on %v", g.method, m)
				return nil, nil
			}
			return nil, grpcNoAnswer(status.Convert(err), fmt.Errorf("gRPC call of %s on %s: %w", g.method, g.address, err))
		}
		run.Unmeasured("the method was not called", "response")
		run.Failf("%s on %s: %v", g.method, g.address, err)
		return nil, nil
	}
	req := dynamicpb.NewMessage(md.Input())
	request, err := execTemplate(g.requestT, g.request, data)
	if err != nil {
		run.Unmeasured("the method was not called", "response")
		return nil, fmt.Errorf("request: %w", err)
	}
	if request != "" {
		if err := (protojson.UnmarshalOptions{}).Unmarshal([]byte(request), req); err != nil {
			run.Unmeasured("the method was not called", "response")
			run.Failf("request does not fit %s, the input of %s on %s: %s", md.Input().FullName(), g.method, g.address, Trim(err.Error(), 300))
			return nil, nil
		}
	}
	resp := dynamicpb.NewMessage(md.Output())
	run.Transcript.Printf("%s %s", g.method, Trim(compactJSON(req), 2000))
	a := &grpcAnswer{}
	err = conn.Invoke(ctx, "/"+service+"/"+name, req, resp, grpc.Header(&a.header))
	run.Vars["rpc_ms"] = ms(time.Since(start))
	a.status, _ = status.FromError(err)
	run.Vars["grpc_code"] = a.status.Code().String()
	run.Transcript.Printf("code %s in %s", a.status.Code(), time.Since(start).Round(time.Microsecond))
	switch {
	case err == nil:
	case unreached(err):
		run.Unmeasured("the server did not answer", "response")
		return nil, grpcNoAnswer(a.status, fmt.Errorf("gRPC call of %s on %s: %s: %s", g.method, g.address, a.status.Code(), Trim(a.status.Message(), 300)))
	default:
		run.Transcript.Printf("message %s", Trim(a.status.Message(), 300))
		return a, nil
	}
	a.json = []byte(compactJSON(resp))
	run.Transcript.Printf("response %s", Trim(string(a.json), 2000))
	run.Vars["response"] = messageValue(resp.ProtoReflect())
	return a, nil
}

// compactJSON is a message on one line, its fields by their .proto names as the response
// variable has them.
func compactJSON(m proto.Message) string {
	b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(m)
	if err != nil {
		return fmt.Sprintf("(not shown: %v)", err)
	}
	return string(b)
}

// resolveMethod reads service's descriptors from the server's reflection service and finds
// its method name, unary.
func resolveMethod(ctx context.Context, conn *grpc.ClientConn, service, name string) (protoreflect.MethodDescriptor, error) {
	ctx, cancel := context.WithCancel(ctx) // ends the reflection stream
	defer cancel()
	var files []*descriptorpb.FileDescriptorProto
	var err error
	for _, m := range reflectionMethods {
		files, err = reflectFiles(ctx, conn, m, service)
		if status.Code(err) != codes.Unimplemented {
			break
		}
	}
	switch {
	case status.Code(err) == codes.Unimplemented:
		return nil, errors.New("the server offers no reflection service (grpc.reflection.v1 or v1alpha): register it, e.g. reflection.Register in grpc-go")
	case err != nil:
		return nil, err
	}
	reg, err := protodesc.NewFiles(&descriptorpb.FileDescriptorSet{File: files})
	if err != nil {
		return nil, fmt.Errorf("the server's descriptors of %s do not build: %w", service, err)
	}
	d, err := reg.FindDescriptorByName(protoreflect.FullName(service))
	if err != nil {
		return nil, fmt.Errorf("the server's descriptors do not define service %s", service)
	}
	sd, ok := d.(protoreflect.ServiceDescriptor)
	if !ok {
		return nil, fmt.Errorf("%s is not a service", service)
	}
	md := sd.Methods().ByName(protoreflect.Name(name))
	if md == nil {
		var have []string
		for i := range sd.Methods().Len() {
			have = append(have, string(sd.Methods().Get(i).Name()))
		}
		return nil, fmt.Errorf("service %s has no method %s (it has: %s)", service, name, strings.Join(have, ", "))
	}
	if md.IsStreamingClient() || md.IsStreamingServer() {
		return nil, fmt.Errorf("%s is a streaming method: the grpc kind calls unary methods", md.FullName())
	}
	return md, nil
}

// reflectFiles asks the reflection service at method for the file defining symbol and the
// files it imports, as descriptors.
func reflectFiles(ctx context.Context, conn *grpc.ClientConn, method, symbol string) ([]*descriptorpb.FileDescriptorProto, error) {
	stream, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true, ClientStreams: true}, method)
	if err != nil {
		return nil, err
	}
	defer func() { _ = stream.CloseSend() }()
	byName := map[string]*descriptorpb.FileDescriptorProto{}
	var order []*descriptorpb.FileDescriptorProto
	ask := func(req *rpb.ServerReflectionRequest, what string) error {
		if err := stream.SendMsg(req); err != nil {
			return endedWithout(ctx, recvError(stream, err), what)
		}
		resp := new(rpb.ServerReflectionResponse)
		if err := stream.RecvMsg(resp); err != nil {
			return endedWithout(ctx, err, what)
		}
		if e := resp.GetErrorResponse(); e != nil {
			return fmt.Errorf("the server's reflection does not know %s (%s: %s)", what, codes.Code(e.GetErrorCode()), Trim(e.GetErrorMessage(), 200))
		}
		fdr := resp.GetFileDescriptorResponse()
		if fdr == nil {
			return fmt.Errorf("reflection answered the question for %s with no descriptor", what)
		}
		for _, b := range fdr.GetFileDescriptorProto() {
			fd := new(descriptorpb.FileDescriptorProto)
			if err := proto.Unmarshal(b, fd); err != nil {
				return fmt.Errorf("reflection sent a descriptor that does not parse: %w", err)
			}
			if _, seen := byName[fd.GetName()]; !seen {
				byName[fd.GetName()] = fd
				order = append(order, fd)
			}
		}
		return nil
	}
	if err := ask(&rpb.ServerReflectionRequest{MessageRequest: &rpb.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: symbol}},
		"service "+symbol); err != nil {
		return nil, err
	}
	// The imports a server left out of its answer, asked for one by one.
	for i := 0; i < len(order); i++ {
		for _, dep := range order[i].GetDependency() {
			if _, ok := byName[dep]; ok {
				continue
			}
			if len(order) >= maxReflectedFiles {
				return nil, fmt.Errorf("the descriptors of %s import more than %d files", symbol, maxReflectedFiles)
			}
			err := ask(&rpb.ServerReflectionRequest{MessageRequest: &rpb.ServerReflectionRequest_FileByFilename{FileByFilename: dep}}, "file "+dep)
			if _, known := byName[dep]; err != nil || !known {
				// protobuf's own well-known types are built in when a server does not send them
				fd, gerr := protoregistry.GlobalFiles.FindFileByPath(dep)
				if gerr != nil {
					return nil, cmpErr(err, fmt.Errorf("reflection did not send %s, which %s imports", dep, order[i].GetName()))
				}
				byName[dep] = protodesc.ToFileDescriptorProto(fd)
				order = append(order, byName[dep])
			}
		}
	}
	return order, nil
}

// deadlineSlack is how close to the call's deadline a stream's end counts as the deadline:
// the server has the deadline as grpc-timeout, rounded down to its unit (a millisecond for
// a timeout of 100 s or more).
const deadlineSlack = 10 * time.Millisecond

// endedWithout names a reflection stream that ended (io.EOF) before answering the question
// for what. A server that answers nothing ends the stream at the deadline it was sent,
// which can reach the caller before its own context says so: that is the silence it was,
// DeadlineExceeded.
func endedWithout(ctx context.Context, err error, what string) error {
	if !errors.Is(err, io.EOF) {
		return err
	}
	if d, ok := ctx.Deadline(); ctx.Err() != nil || ok && time.Until(d) < deadlineSlack {
		return status.Errorf(codes.DeadlineExceeded, "the server's reflection did not answer the question for %s before the deadline", what)
	}
	return fmt.Errorf("the server's reflection ended the stream without answering the question for %s", what)
}

// recvError is the status behind a failed send: the stream's own error comes with RecvMsg.
func recvError(stream grpc.ClientStream, err error) error {
	if rerr := stream.RecvMsg(new(rpb.ServerReflectionResponse)); rerr != nil {
		return rerr
	}
	return err
}

func cmpErr(err, otherwise error) error {
	if err != nil {
		return err
	}
	return otherwise
}

// messageValue is a message as assertions read it: its fields by their names in the .proto
// file, every one present (a proto3 zero is a value, not a missing key); integers as
// integers, enums by name, bytes in base64; protobuf's well-known types (Timestamp,
// Duration, wrappers, Struct) in their JSON form.
func messageValue(m protoreflect.Message) any {
	if strings.HasPrefix(string(m.Descriptor().FullName()), "google.protobuf.") {
		var v any
		if b, err := protojson.Marshal(m.Interface()); err == nil && json.Unmarshal(b, &v) == nil {
			return v
		}
	}
	out := map[string]any{}
	fields := m.Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		if fd.ContainingOneof() != nil && !fd.ContainingOneof().IsSynthetic() && !m.Has(fd) {
			continue // the oneof's other member is the one set
		}
		out[string(fd.Name())] = fieldValue(fd, m.Get(fd))
	}
	return out
}

func fieldValue(fd protoreflect.FieldDescriptor, v protoreflect.Value) any {
	switch {
	case fd.IsList():
		l := v.List()
		out := make([]any, l.Len())
		for i := range l.Len() {
			out[i] = scalarValue(fd, l.Get(i))
		}
		return out
	case fd.IsMap():
		out := map[string]any{}
		v.Map().Range(func(k protoreflect.MapKey, e protoreflect.Value) bool {
			out[k.String()] = scalarValue(fd.MapValue(), e)
			return true
		})
		return out
	}
	return scalarValue(fd, v)
}

func scalarValue(fd protoreflect.FieldDescriptor, v protoreflect.Value) any {
	switch fd.Kind() {
	case protoreflect.MessageKind, protoreflect.GroupKind:
		if !v.Message().IsValid() {
			return nil // an unset message field
		}
		return messageValue(v.Message())
	case protoreflect.EnumKind:
		if e := fd.Enum().Values().ByNumber(v.Enum()); e != nil {
			return string(e.Name())
		}
		return int(v.Enum())
	case protoreflect.BytesKind:
		return base64.StdEncoding.EncodeToString(v.Bytes())
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind,
		protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return int(v.Int())
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind, protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		if u := v.Uint(); u <= math.MaxInt64 {
			return int(u)
		}
		return float64(v.Uint())
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		return v.Float()
	}
	return v.Interface() // bool, string
}
