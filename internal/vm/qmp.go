package vm

import (
	"encoding/json"
	"fmt"
	"net"
	"time"

	"golang.org/x/sys/unix"
)

// QMP is a session on QEMU's machine protocol: pause and continue, save
// and restore of a VM, and the making of templates.
type QMP struct {
	conn net.Conn
	dec  *json.Decoder
}

// DialQMP opens a session on the QMP socket name in dir.
func DialQMP(dir, name string) (*QMP, error) {
	if name == "" {
		return nil, fmt.Errorf("this VM has no QMP socket")
	}
	conn, err := DialIn(dir, name)
	if err != nil {
		return nil, fmt.Errorf("QMP: %w", err)
	}
	q := &QMP{conn: conn, dec: json.NewDecoder(conn)}
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	var greeting map[string]any
	if err := q.dec.Decode(&greeting); err != nil {
		conn.Close()
		return nil, fmt.Errorf("QMP: %w", err)
	}
	if err := q.Call("qmp_capabilities", nil, nil); err != nil {
		conn.Close()
		return nil, err
	}
	return q, nil
}

func (q *QMP) Close() error { return q.conn.Close() }

// Call runs cmd with args and decodes its return into out (if not nil).
func (q *QMP) Call(cmd string, args, out any) error {
	q.conn.SetDeadline(time.Now().Add(10 * time.Second))
	req := map[string]any{"execute": cmd}
	if args != nil {
		req["arguments"] = args
	}
	if err := json.NewEncoder(q.conn).Encode(req); err != nil {
		return fmt.Errorf("QMP %s: %w", cmd, err)
	}
	for { // events may come before the answer
		var resp struct {
			Return json.RawMessage `json:"return"`
			Error  *struct {
				Desc string `json:"desc"`
			} `json:"error"`
		}
		if err := q.dec.Decode(&resp); err != nil {
			return fmt.Errorf("QMP %s: %w", cmd, err)
		}
		if resp.Error != nil {
			return fmt.Errorf("QMP %s: %s", cmd, resp.Error.Desc)
		}
		if resp.Return != nil {
			if out != nil {
				return json.Unmarshal(resp.Return, out)
			}
			return nil
		}
	}
}

// Await asks cmd every few milliseconds until done says its answer is
// final, or timeout.
func (q *QMP) Await(cmd string, timeout time.Duration, done func(json.RawMessage) (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		var r json.RawMessage
		if err := q.Call(cmd, nil, &r); err != nil {
			return err
		}
		if ok, err := done(r); ok || err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("QMP %s: no answer within %s", cmd, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// DialIn connects to the unix socket name in dir through /proc/self/fd,
// so that deep directories do not exceed the 108 bytes a unix socket
// address may hold.
func DialIn(dir, name string) (net.Conn, error) {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	return net.Dial("unix", fmt.Sprintf("/proc/self/fd/%d/%s", fd, name))
}

// Migrated waits until a migration (a save) is done.
func (q *QMP) Migrated(timeout time.Duration) error {
	return q.Await("query-migrate", timeout, func(r json.RawMessage) (bool, error) {
		var st struct {
			Status    string `json:"status"`
			ErrorDesc string `json:"error-desc"`
		}
		json.Unmarshal(r, &st)
		switch st.Status {
		case "completed":
			return true, nil
		case "failed", "cancelled":
			return true, fmt.Errorf("saving the VM's state: %s %s", st.Status, st.ErrorDesc)
		}
		return false, nil
	})
}
