package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// composeApp is three services on the project's network: a database-like
// server, a web front end on a published port that asks the database,
// and a worker that reaches both by service name.
const composeApp = `version: "3.8"
services:
  db:
    image: busybox:latest
    command: ["sh", "-c", "while true; do echo db-ok | nc -l -p 5432; done"]
  web:
    image: busybox:latest
    ports: ["18095:80"]
    depends_on: [db]
    command: ["sh", "-c", "while true; do (echo web-ok; echo | nc -w2 db 5432) | nc -l -p 80; done"]
  worker:
    image: busybox:latest
    depends_on: [db, web]
    command: ["sh", "-c", "while true; do echo | nc -w2 db 5432; echo | nc -w2 web 80; sleep 1; done"]
volumes:
  scratch: {}
`

// composer runs docker-compose against the engine on the project
// (name) in dir: its combined output.
func (e *tentEngine) composer(dir, project string) func(args ...string) (string, error) {
	return func(args ...string) (string, error) {
		cmd := exec.Command("docker-compose", append([]string{"-p", project, "--no-ansi"}, args...)...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "DOCKER_HOST="+e.host)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
}

// TestComposeApp runs Debian's docker-compose (1.29) against the engine:
// up, ps, logs, exec, down -v.
func TestComposeApp(t *testing.T) {
	if _, err := exec.LookPath("docker-compose"); err != nil {
		t.Skip("docker-compose not installed (apt-get install docker-compose)")
	}
	e := startTent(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "docker-compose.yml"), []byte(composeApp), 0o644); err != nil {
		t.Fatal(err)
	}
	compose := e.composer(dir, "shop")
	if out, err := compose("up", "-d"); err != nil {
		t.Fatalf("up: %v\n%s", err, out)
	}
	t.Cleanup(func() { compose("down", "-v", "-t", "0") })
	out, err := compose("ps")
	if err != nil || strings.Count(out, " Up ") != 3 || !strings.Contains(out, "0.0.0.0:18095->80/tcp") {
		t.Fatalf("ps: %v\n%s", err, out)
	}
	eventually(t, "the web service through its published port", func() error {
		got, err := dial("127.0.0.1:18095")
		if err == nil && !strings.Contains(got, "web-ok") {
			err = errString("got " + got)
		}
		return err
	})
	eventually(t, "the worker reaching db and web by name", func() error {
		out, _ := compose("logs", "worker")
		if !strings.Contains(out, "db-ok") || !strings.Contains(out, "web-ok") {
			return errString("worker logs: " + out)
		}
		return nil
	})
	if out, err := compose("exec", "-T", "worker", "nslookup", "db"); err != nil || !strings.Contains(out, "Address: 1") {
		t.Fatalf("exec nslookup db: %v\n%s", err, out)
	}
	if out, err := compose("down", "-v", "-t", "0"); err != nil {
		t.Fatalf("down: %v\n%s", err, out)
	}
	if ps := e.must(t, "ps", "-aq"); ps != "" {
		t.Fatalf("containers left after down: %s", ps)
	}
	if ls := e.must(t, "network", "ls", "-q", "--filter", "name=shop"); ls != "" {
		t.Fatalf("networks left after down: %s", ls)
	}
}

type errString string

func (e errString) Error() string { return string(e) }
