package integration

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/tent-project/tent/internal/streams"
)

// Engine API semantics that the Docker SDKs rely on (issue 16), driven
// through the raw API as the SDKs do.

// api sends a request to the engine and decodes its JSON answer into v.
func (e *tentEngine) api(t *testing.T, method, path, body string, v any) int {
	t.Helper()
	req, err := http.NewRequest(method, "http://tent"+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.http().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if v != nil {
		json.NewDecoder(resp.Body).Decode(v)
	}
	return resp.StatusCode
}

// TestEngineKillWaitsForStop: POST kill with SIGKILL answers once the
// container has stopped, so an inspect or a remove right after it sees
// it stopped (before, an inspect showed Running with ExitCode 137 and a
// remove got 409).
func TestEngineKillWaitsForStop(t *testing.T) {
	e := startTent(t)
	for i := range 5 {
		id := strings.TrimSpace(e.must(t, "run", "-d", "busybox", "sleep", "1000"))
		if code := e.api(t, "POST", "/v1.41/containers/"+id+"/kill", "", nil); code != 204 {
			t.Fatalf("kill: %d", code)
		}
		var st struct {
			State struct {
				Running  bool
				ExitCode int
			}
		}
		e.api(t, "GET", "/v1.41/containers/"+id+"/json", "", &st)
		if st.State.Running || st.State.ExitCode != 137 {
			t.Errorf("round %d: inspect right after kill: %+v, want stopped with 137", i, st.State)
		}
		if code := e.api(t, "DELETE", "/v1.41/containers/"+id, "", nil); code != 204 {
			t.Errorf("round %d: remove right after kill: %d, want 204", i, code)
		}
	}
}

// TestEngineExecStreamFollowsStart: an exec created with a terminal and
// started without one (the Docker SDK's exec_run does so) runs on a
// terminal but answers a multiplexed stream, as dockerd; the other way
// round, the stream is raw.
func TestEngineExecStreamFollowsStart(t *testing.T) {
	e := startTent(t)
	e.must(t, "run", "-d", "--name", "host", "busybox", "sleep", "1000")
	for _, tc := range []struct {
		createTty, startTty bool
		wantType            string
	}{
		{true, false, "application/vnd.docker.multiplexed-stream"},
		{false, true, "application/vnd.docker.raw-stream"},
		{true, true, "application/vnd.docker.raw-stream"},
	} {
		var created struct{ ID string }
		body := fmt.Sprintf(`{"Cmd":["sh","-c","tty; echo hi"],"AttachStdout":true,"AttachStderr":true,"Tty":%v}`, tc.createTty)
		if code := e.api(t, "POST", "/v1.45/containers/host/exec", body, &created); code != 201 {
			t.Fatalf("exec create: %d", code)
		}
		conn, err := net.Dial("unix", strings.TrimPrefix(e.host, "unix://"))
		if err != nil {
			t.Fatal(err)
		}
		start := fmt.Sprintf(`{"Detach":false,"Tty":%v}`, tc.startTty)
		fmt.Fprintf(conn, "POST /v1.45/exec/%s/start HTTP/1.1\r\nHost: tent\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", created.ID, len(start), start)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		var stdout, stderr bytes.Buffer
		if tc.startTty {
			io.Copy(&stdout, resp.Body)
		} else if err := streams.Demux(&stdout, &stderr, resp.Body); err != nil {
			t.Errorf("create tty %v, start tty %v: the stream does not demultiplex: %v", tc.createTty, tc.startTty, err)
		}
		conn.Close()
		out := strings.ReplaceAll(stdout.String(), "\r", "")
		onTerminal := strings.HasPrefix(out, "/dev/pts/")
		if resp.Header.Get("Content-Type") != tc.wantType || onTerminal != tc.createTty || !strings.HasSuffix(out, "hi\n") {
			t.Errorf("create tty %v, start tty %v: %s, output %q; want %s, a terminal %v", tc.createTty, tc.startTty,
				resp.Header.Get("Content-Type"), out, tc.wantType, tc.createTty)
		}
	}
}

// TestEngineAttachLogsOfStoppedContainer: attach with logs=1&stream=0
// answers the log, of a stopped container too (the Docker SDK's
// container.attach(logs=True, stream=False)); before, a 409.
func TestEngineAttachLogsOfStoppedContainer(t *testing.T) {
	e := startTent(t)
	e.must(t, "run", "--name", "done", "busybox", "sh", "-c", "echo out; echo err >&2")
	conn, err := net.Dial("unix", strings.TrimPrefix(e.host, "unix://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /v1.41/containers/done/attach?logs=1&stream=0&stdout=1&stderr=1 HTTP/1.1\r\nHost: tent\r\nContent-Length: 0\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if resp.StatusCode != 200 {
		t.Fatalf("attach logs of a stopped container: %s", resp.Status)
	}
	if err := streams.Demux(&stdout, &stderr, resp.Body); err != nil || stdout.String() != "out\n" || stderr.String() != "err\n" {
		t.Errorf("attached log: stdout %q, stderr %q (%v)", stdout.String(), stderr.String(), err)
	}
	// A streaming attach to a stopped container waits for its next start,
	// as dockerd's does: docker start -a relies on it.
	if out, errOut, code := e.runIn(nil, "start", "-a", "done"); code != 0 || out != "out\n" || errOut != "err\n" {
		t.Errorf("start -a of a stopped container: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

// TestEngineLoadAnswersAStream: POST /images/load answers a chunked JSON
// message stream, a bad archive's error inside it, as dockerd (the Docker
// SDK parses the stream; a 400 with a JSON body made it fail).
func TestEngineLoadAnswersAStream(t *testing.T) {
	e := startTent(t)
	for _, tc := range []struct {
		body, want string
	}{
		{"not a tar archive at all", `"errorDetail":{"message":`},
		{string(e.saveBusybox(t)), `"stream":"Loaded image: busybox:latest\n"`},
	} {
		resp, err := e.http().Post("http://tent/v1.41/images/load", "application/x-tar", strings.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.ContentLength != -1 || !strings.Contains(string(b), tc.want) {
			t.Errorf("load: %s, length %d, body %s; want 200, chunked, %s", resp.Status, resp.ContentLength, b, tc.want)
		}
		var m map[string]any
		if err := json.NewDecoder(strings.NewReader(string(b))).Decode(&m); err != nil {
			t.Errorf("the stream's first message does not decode: %v", err)
		}
	}
}

// saveBusybox is `docker save busybox` of the engine.
func (e *tentEngine) saveBusybox(t *testing.T) []byte {
	t.Helper()
	cmd := e.command("save", "busybox")
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestEnginePruneReportsSpace: container prune reports the bytes of the
// writable layers it removed (SpaceReclaimed; it said 0).
func TestEnginePruneReportsSpace(t *testing.T) {
	e := startTent(t)
	e.must(t, "run", "busybox", "dd", "if=/dev/zero", "of=/big", "bs=1024", "count=100")
	var report struct {
		ContainersDeleted []string
		SpaceReclaimed    uint64
	}
	if code := e.api(t, "POST", "/v1.41/containers/prune", "", &report); code != 200 {
		t.Fatalf("prune: %d", code)
	}
	if len(report.ContainersDeleted) != 1 || report.SpaceReclaimed < 100*1024 {
		t.Errorf("prune report %+v, want 1 container and at least 102400 bytes", report)
	}
}
