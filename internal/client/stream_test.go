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
	resp, err := c.Stream(context.Background(), "/build", nil, "application/x-tar", func(w io.Writer) error {
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
		_, err = c.Stream(context.Background(), "/build", map[string][]string{"fail": {"1"}}, "application/x-tar", func(w io.Writer) error {
			_, err := io.WriteString(w, body)
			return err
		})
		if StatusOf(err) != http.StatusConflict || !strings.Contains(err.Error(), "refused") {
			t.Errorf("an error answer (%d bytes sent): %v", len(body), err)
		}
	}
	mine := errors.New("a file went away")
	_, err = c.Stream(context.Background(), "/build", nil, "application/x-tar", func(w io.Writer) error {
		io.WriteString(w, strings.Repeat("y", 1<<20))
		return mine
	})
	if !errors.Is(err, mine) {
		t.Errorf("a producer's error: %v", err)
	}
}
