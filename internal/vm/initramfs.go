package vm

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// cpioWriter writes a cpio archive in the "newc" format, the one the
// kernel unpacks as an initramfs.
type cpioWriter struct {
	w   *bufio.Writer
	ino int
}

func (c *cpioWriter) entry(name string, mode uint32, data []byte) error {
	c.ino++
	nlink := 1
	if mode&0o040000 != 0 {
		nlink = 2
	}
	hdr := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		c.ino, mode, 0, 0, nlink, 0, len(data), 0, 0, 0, 0, len(name)+1, 0)
	if _, err := c.w.WriteString(hdr + name + "\x00"); err != nil {
		return err
	}
	c.pad(len(hdr) + len(name) + 1)
	if _, err := c.w.Write(data); err != nil {
		return err
	}
	c.pad(len(data))
	return nil
}

func (c *cpioWriter) pad(n int) {
	if r := n % 4; r != 0 {
		c.w.Write(make([]byte, 4-r))
	}
}

// writeInitramfs writes the guest's initramfs to w: the agent as /init
// and the kernel modules of modDir (loaded in the order its file "order"
// gives) under /lib/modules.
func writeInitramfs(w io.Writer, agent, modDir string) error {
	c := &cpioWriter{w: bufio.NewWriter(w)}
	bin, err := os.ReadFile(agent)
	if err != nil {
		return err
	}
	for _, d := range []string{"dev", "proc", "sys", "root", "lib", "lib/modules"} {
		if err := c.entry(d, 0o040755, nil); err != nil {
			return err
		}
	}
	if err := c.entry("init", 0o100755, bin); err != nil {
		return err
	}
	var list []string
	if order, err := os.ReadFile(filepath.Join(modDir, "order")); err == nil {
		for _, m := range strings.Fields(string(order)) {
			b, err := os.ReadFile(filepath.Join(modDir, m))
			if err != nil {
				return err
			}
			if err := c.entry("lib/modules/"+m, 0o100644, b); err != nil {
				return err
			}
			list = append(list, "/lib/modules/"+m)
		}
	}
	if err := c.entry("modules", 0o100644, []byte(strings.Join(list, "\n")+"\n")); err != nil {
		return err
	}
	if err := c.entry("TRAILER!!!", 0, nil); err != nil {
		return err
	}
	return c.w.Flush()
}
