package cli

import (
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestTTYProgress feeds a build's legacy stream to the live display with
// a clock of its own and checks what stays on the screen.
func TestTTYProgress(t *testing.T) {
	var out strings.Builder
	clock := time.Unix(1000, 0)
	now := func() time.Time { return clock }
	p := newTTYProgress(&out, 60, now)
	feed := func(s string, advance time.Duration) {
		p.Write(s)
		clock = clock.Add(advance)
		p.mu.Lock()
		p.draw(false, false)
		p.mu.Unlock()
	}
	feed("Step 1/3 : FROM busybox\n ---> 3f57d9401f8d\n", 0)
	feed("Step 2/3 : RUN echo hi\n ---> Using cache\n ---> 1a2b3c4d5e6f\n", 0)
	feed("Step 3/3 : RUN for i in 1 2 3 4 5 6 7 8; do echo line $i; done\n ---> Running in abcdef012345\n", time.Second)
	feed("line 1\nline 2\nline 3\nline 4\nline 5\nline 6\nline 7\nli", 500*time.Millisecond)
	running := out.String()
	if !strings.Contains(running, " => => # line 7") || strings.Contains(running, " => => # line 1\x1b") {
		t.Errorf("the running step's last lines:\n%q", running)
	}
	feed("ne 8\nRemoving intermediate container abcdef012345\n ---> 9e8d7c6b5a4f\nSuccessfully built 9e8d7c6b5a4f\nSuccessfully tagged app:latest\n", 0)
	out.Reset()
	p.Close(false)
	final := regexp.MustCompile("\x1b\\[[0-9]*[AK]").ReplaceAllString(out.String(), "")
	want := []string{
		"[+] Building 1.5s (3/3) FINISHED",
		" => [1/3] FROM busybox                                 0.0s",
		" => CACHED [2/3] RUN echo hi                           0.0s",
		" => [3/3] RUN for i in 1 2 3 4 5 6 7 8; do echo line   1.5s", // cut to fit 60 columns
		"Successfully built 9e8d7c6b5a4f",
		"Successfully tagged app:latest",
	}
	if got := strings.Split(strings.TrimRight(final, "\n"), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("final display:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// A failed step's output stays under the display.
	out.Reset()
	p = newTTYProgress(&out, 60, now)
	p.Write("Step 1/2 : FROM busybox\n ---> 3f57d9401f8d\nStep 2/2 : RUN exit 3\n ---> Running in abcdef012345\noops\n")
	p.Close(true)
	final = regexp.MustCompile("\x1b\\[[0-9]*[AK]").ReplaceAllString(out.String(), "")
	if !strings.HasSuffix(final, " => ERROR [2/2] RUN exit 3                             0.0s\noops\n") || strings.Contains(final, "FINISHED") {
		t.Errorf("a failed build:\n%s", final)
	}
}
