package monitor

import (
	"encoding/json"
	"fmt"
	"net"
	"time"
)

// qmpConn is a session on QEMU's machine protocol (QMP): pause and
// continue, save and restore of a VM.
type qmpConn struct {
	conn net.Conn
	dec  *json.Decoder
}

// dialQMP opens a session on the QMP socket name in dir.
func dialQMP(dir, name string) (*qmpConn, error) {
	if name == "" {
		return nil, fmt.Errorf("this VM has no QMP socket")
	}
	conn, err := socketAt(dir, name, func(p string) (net.Conn, error) { return net.Dial("unix", p) })
	if err != nil {
		return nil, fmt.Errorf("QMP: %w", err)
	}
	q := &qmpConn{conn: conn, dec: json.NewDecoder(conn)}
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	var greeting map[string]any
	if err := q.dec.Decode(&greeting); err != nil {
		conn.Close()
		return nil, fmt.Errorf("QMP: %w", err)
	}
	if err := q.call("qmp_capabilities", nil, nil); err != nil {
		conn.Close()
		return nil, err
	}
	return q, nil
}

func (q *qmpConn) Close() error { return q.conn.Close() }

// call runs cmd with args and decodes its return into out (if not nil).
func (q *qmpConn) call(cmd string, args, out any) error {
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

// await asks cmd every few milliseconds until done says its answer is
// final, or timeout.
func (q *qmpConn) await(cmd string, timeout time.Duration, done func(json.RawMessage) (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		var r json.RawMessage
		if err := q.call(cmd, nil, &r); err != nil {
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
