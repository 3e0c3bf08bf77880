package vmtask

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/tent-project/tent/internal/copier"
	"github.com/tent-project/tent/internal/monitor"
	"github.com/tent-project/tent/internal/streams"
	"github.com/tent-project/tent/internal/stringid"
	"github.com/tent-project/tent/internal/vm/wire"
)

// PutArchive extracts the tar r into the directory dir of the running
// guest (docker cp into a running VM): its agent runs the copier's
// helper (internal/copier's Main, linked into it) as an exec chrooted
// into the workload's root, the tar its stdin. The guest writes its own
// disk: the host never does while it runs.
func (t *Task) PutArchive(ctx context.Context, dir string, r io.Reader, o copier.PutOptions) error {
	if err := t.unpaused("copy into it"); err != nil {
		return err
	}
	id := "copy-" + stringid.New()
	conn, err := monitor.Exec(t.paths.Dir, monitor.ExecRequest{ID: id, Process: &specs.Process{Cwd: "/"}, Stdin: true,
		Ephemeral: true, Helper: append([]string{wire.HelperCopier}, copier.PutArgs(dir, o)...)})
	if err != nil {
		return err
	}
	defer conn.Close()
	go func() {
		io.Copy(conn, r) // a helper that fails stops reading: the copy ends
		conn.CloseWrite()
	}()
	out, stdout := io.Pipe()
	var stderr strings.Builder
	go func() { stdout.CloseWithError(streams.Demux(stdout, &stderr, conn)) }()
	reported, err := copier.Answer(bufio.NewReader(out))
	io.Copy(io.Discard, out)
	rec, werr := monitor.ExecWait(t.paths.Dir, id)
	switch {
	case err != nil:
		return errors.Join(err, werr)
	case reported != nil:
		return reported
	case werr != nil:
		return werr
	case rec.ExitCode != 0:
		return fmt.Errorf("copy: exit status %d: %s", rec.ExitCode, strings.TrimSpace(stderr.String()))
	}
	return nil
}
