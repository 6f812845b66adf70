package specval

import (
	"errors"
	"strings"
	"testing"
)

func TestAsyncAPIFrames(t *testing.T) {
	v, err := LoadAsyncAPI()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(v.ClientTypes(), ","); !strings.Contains(got, "subscribe") || !strings.Contains(got, "ping") {
		t.Errorf("client types = %s", got)
	}
	if got := strings.Join(v.ServerTypes(), ","); !strings.Contains(got, "reply") || !strings.Contains(got, "event") || !strings.Contains(got, "welcome") {
		t.Errorf("server types = %s", got)
	}
	tests := []struct {
		name, frame, pointer string
	}{
		{"OK", `{"type":"subscribe","ref":"1","topic":"collections/a/resources"}`, ""},
		{"ErrUnknownType", `{"type":"dance","ref":"1"}`, "/type"},
		{"ErrMissingType", `{"ref":"1"}`, "/type"},
		{"ErrMissingTopic", `{"type":"subscribe","ref":"1"}`, "/topic"},
		{"ErrUnknownMember", `{"type":"ping","ref":"1","extra":true}`, "/extra"},
		{"ErrWrongType", `{"type":"subscribe","ref":"1","topic":"t","snapshot":"yes"}`, "/snapshot"},
		{"ErrEmptyRef", `{"type":"ping","ref":""}`, "/ref"},
		{"ErrNotObject", `[1,2]`, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := v.ValidateClientFrame([]byte(tc.frame))
			if tc.name == "OK" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var fe *FrameError
			if !errors.As(err, &fe) {
				t.Fatalf("err = %v", err)
			}
			if fe.Fields[0].Pointer != tc.pointer {
				t.Errorf("pointer = %q, want %q (%v)", fe.Fields[0].Pointer, tc.pointer, fe)
			}
		})
	}
	if err := v.ValidateServerFrame([]byte(`{"type":"reply","ref":"1","ok":true,"body":{}}`)); err != nil {
		t.Error(err)
	}
	if err := v.ValidateServerFrame([]byte(`{"type":"subscribe","ref":"1","topic":"x"}`)); err == nil {
		t.Error("a client frame validated as a server frame")
	}
}
