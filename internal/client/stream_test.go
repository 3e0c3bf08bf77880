package client

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// TestStream: a body written from the caller's goroutine reaches the
// daemon whole (chunked), the answer comes back, an error answer is the
// daemon's, and a producer's error ends the request with that error.
func TestStream(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "s.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("fail") != "" { // before reading the body
			http.Error(w, `{"message":"refused"}`, http.StatusConflict)
			return
		}
		b, err := io.ReadAll(r.Body)
		switch {
		case err != nil:
			http.Error(w, `{"message":"short body"}`, http.StatusBadRequest)
		default:
			io.WriteString(w, r.URL.Path+" "+r.Header.Get("Content-Type")+" "+string(b[:5])+" "+string(rune('0'+len(b)%10)))
		}
	})}
	go srv.Serve(l)
	defer srv.Close()
	c, err := New("unix://" + sock)
	if err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("x", 3<<20+7)
	resp, err := c.Stream(context.Background(), "/build", nil, tarHeader, func(w io.Writer) error {
		_, err := io.WriteString(w, "hello"+big)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := "/v" + APIVersion + "/build application/x-tar hello " + string(rune('0'+(len(big)+5)%10)); string(b) != want {
		t.Errorf("answer %q, want %q", b, want)
	}
	for _, body := range []string{"small", big} { // the large one: the daemon stops reading it
		_, err = c.Stream(context.Background(), "/build", map[string][]string{"fail": {"1"}}, tarHeader, func(w io.Writer) error {
			_, err := io.WriteString(w, body)
			return err
		})
		if StatusOf(err) != http.StatusConflict || !strings.Contains(err.Error(), "refused") {
			t.Errorf("an error answer (%d bytes sent): %v", len(body), err)
		}
	}
	mine := errors.New("a file went away")
	_, err = c.Stream(context.Background(), "/build", nil, tarHeader, func(w io.Writer) error {
		io.WriteString(w, strings.Repeat("y", 1<<20))
		return mine
	})
	if !errors.Is(err, mine) {
		t.Errorf("a producer's error: %v", err)
	}
}

var tarHeader = http.Header{"Content-Type": {"application/x-tar"}}

// TestStreamExpect: with Expect: 100-continue the body is written only
// when the daemon asks for it; an answer without 100 Continue is the
// request's, the body never written.
func TestStreamExpect(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "s.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Expect") != "100-continue" {
			http.Error(w, "no Expect", http.StatusBadRequest)
			return
		}
		if r.Header.Get("X-Known") == "yes" {
			io.WriteString(w, "known")
			return
		}
		b, _ := io.ReadAll(r.Body)
		io.WriteString(w, "sent "+string(b))
	})}
	go srv.Serve(l)
	defer srv.Close()
	c, err := New("unix://" + sock)
	if err != nil {
		t.Fatal(err)
	}
	for _, known := range []string{"yes", "no"} {
		written := false
		h := http.Header{"Expect": {"100-continue"}, "X-Known": {known}}
		resp, err := c.Stream(context.Background(), "/build", nil, h, func(w io.Writer) error {
			written = true
			_, err := io.WriteString(w, "the body")
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		want := map[string]string{"yes": "known", "no": "sent the body"}[known]
		if string(b) != want || written != (known == "no") {
			t.Errorf("known %s: answer %q (want %q), body written %v", known, b, want, written)
		}
	}
}
