package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func TestFrames(t *testing.T) {
	t.Parallel()
	prefix := func(n uint32, rest string) []byte {
		return append(binary.BigEndian.AppendUint32(nil, n), rest...)
	}
	msg, err := proto.Marshal(wrapperspb.String("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		input   []byte
		want    string // the decoded value
		wantErr string // substring; "" means success
	}{
		{name: "message", input: prefix(uint32(len(msg)), string(msg)), want: "127.0.0.1"},
		{name: "empty message", input: prefix(0, ""), want: ""},
		{name: "eof", input: nil, wantErr: io.EOF.Error()},
		{name: "short prefix", input: []byte{0, 0}, wantErr: io.ErrUnexpectedEOF.Error()},
		{name: "short body", input: prefix(10, "abc"), wantErr: io.ErrUnexpectedEOF.Error()},
		{name: "too large", input: prefix(maxFrame+1, ""), wantErr: "larger than"},
		{name: "not protobuf", input: prefix(2, "\xff\xff"), wantErr: "proto"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := &wrapperspb.StringValue{}
			err := readFrame(bytes.NewReader(tt.input), got)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("readFrame = %v, want an error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got.GetValue() != tt.want {
				t.Fatalf("readFrame = %q, %v; want %q", got.GetValue(), err, tt.want)
			}
		})
	}
}

func TestFrameRoundTrip(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	for _, v := range []string{"a", "", strings.Repeat("x", 70000)} {
		if err := writeFrame(&buf, wrapperspb.String(v)); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []string{"a", "", strings.Repeat("x", 70000)} {
		got := &wrapperspb.StringValue{}
		if err := readFrame(&buf, got); err != nil || got.GetValue() != want {
			t.Fatalf("read %d bytes, %v; want %d bytes", len(got.GetValue()), err, len(want))
		}
	}
	if err := readFrame(&buf, &wrapperspb.StringValue{}); !errors.Is(err, io.EOF) {
		t.Errorf("after the last frame: %v, want EOF", err)
	}
}
