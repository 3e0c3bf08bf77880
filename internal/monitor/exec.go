package monitor

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/tent-project/tent/internal/errdefs"
)

// Exec'd processes are the monitor's children, as the container's init
// is: they outlive the daemon, which reconnects to them (ExecWait,
// Execs) and finds their exit codes kept.

// ExecRequest starts a process in the container.
type ExecRequest struct {
	ID      string         `json:"id"`
	Process *specs.Process `json:"process"`
	// Stdin: the connection's input goes to the process.
	Stdin bool `json:"stdin,omitempty"`
	// Meta is kept with the exec's record, for the daemon.
	Meta json.RawMessage `json:"meta,omitempty"`
	// Ephemeral: no record on disk, and none in memory once ExecWait has
	// answered.
	Ephemeral bool `json:"ephemeral,omitempty"`
	// Helper (a VM's) runs the agent's helper with these arguments
	// (wire.Process.Helper) rather than Process's program.
	Helper []string `json:"helper,omitempty"`
}

// ExecRecord is what a monitor keeps of an exec: in memory, and in
// DIR/execs/ID.json for after the monitor has gone.
type ExecRecord struct {
	ID       string          `json:"id"`
	Pid      int             `json:"pid"`
	Running  bool            `json:"running"`
	ExitCode int             `json:"exitCode"`
	Meta     json.RawMessage `json:"meta,omitempty"`
}

const execsDir = "execs"

// ExecConn is the stream of an exec: the process's output (framed as in
// package streams unless it has a terminal) to read, its stdin to write.
type ExecConn struct {
	*net.UnixConn
	r   *bufio.Reader
	pid int
}

func (c *ExecConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// Pid is the exec'd process's host PID.
func (c *ExecConn) Pid() int { return c.pid }

// Exec starts req's process through the monitor in dir and returns its
// stream once it runs. Closing the stream leaves the process running.
func Exec(dir string, req ExecRequest) (*ExecConn, error) {
	conn, err := dial(dir, request{Exec: &req})
	if err != nil {
		return nil, err
	}
	br := bufio.NewReader(conn)
	line, err := br.ReadBytes('\n')
	var r ready
	if err == nil {
		err = json.Unmarshal(line, &r)
	}
	if err != nil {
		conn.Close()
		return nil, ErrGone
	}
	if r.Error != "" {
		conn.Close()
		return nil, errdefs.WithClass(errors.New(r.Error), r.Class)
	}
	return &ExecConn{UnixConn: conn.(*net.UnixConn), r: br, pid: r.Pid}, nil
}

// ExecWait blocks until exec id ends and returns its record; once the
// monitor is gone, its file answers.
func ExecWait(dir, id string) (ExecRecord, error) {
	conn, err := dial(dir, request{ExecWait: id})
	if err == nil {
		defer conn.Close()
		var rec ExecRecord
		if json.NewDecoder(conn).Decode(&rec) == nil {
			return rec, nil
		}
	}
	return readExecRecord(dir, id)
}

// ExecResize sets the size of exec id's terminal.
func ExecResize(dir, id string, height, width uint16) error {
	conn, err := dial(dir, request{ExecResize: &execResize{ID: id, Size: [2]uint16{height, width}}})
	if err != nil {
		return err
	}
	defer conn.Close()
	return readError(conn)
}

// Execs lists the execs of the container in dir: the monitor's, or once
// it is gone, those its files recorded.
func Execs(dir string) ([]ExecRecord, error) {
	if conn, err := dial(dir, request{Execs: true}); err == nil {
		defer conn.Close()
		var recs []ExecRecord
		if json.NewDecoder(conn).Decode(&recs) == nil {
			return recs, nil
		}
	}
	entries, err := os.ReadDir(filepath.Join(dir, execsDir))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	var recs []ExecRecord
	for _, e := range entries {
		if id, ok := strings.CutSuffix(e.Name(), ".json"); ok {
			if rec, err := readExecRecord(dir, id); err == nil {
				recs = append(recs, rec)
			}
		}
	}
	return recs, err
}

func readExecRecord(dir, id string) (ExecRecord, error) {
	var rec ExecRecord
	b, err := os.ReadFile(filepath.Join(dir, execsDir, id+".json"))
	if errors.Is(err, os.ErrNotExist) {
		return rec, fmt.Errorf("exec %s: %w", id, errdefs.ErrNotFound)
	}
	if err == nil {
		err = json.Unmarshal(b, &rec)
	}
	if err == nil && rec.Running {
		// Recorded as running by a monitor that is gone: the container
		// ended, and its processes with it.
		rec.Running, rec.ExitCode = false, 137
	}
	return rec, err
}

// readError reads a {"Error": ...} answer.
func readError(conn net.Conn) error {
	var resp struct{ Error string }
	if err := json.NewDecoder(conn).Decode(&resp); err != nil {
		return ErrGone
	}
	if resp.Error != "" {
		return errors.New(resp.Error)
	}
	return nil
}
