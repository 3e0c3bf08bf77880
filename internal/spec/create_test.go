package spec

import (
	"errors"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/tent-project/tent/internal/errdefs"
)

func TestMergeConfig(t *testing.T) {
	img := &ocispec.Image{Config: ocispec.ImageConfig{Entrypoint: []string{"/entry"}, Cmd: []string{"serve"}, Env: []string{"A=image", "B=image"},
		ExposedPorts: map[string]struct{}{"80/tcp": {}, "bogus": {}}, WorkingDir: "/app", User: "app", Labels: map[string]string{"l": "image", "m": "image"},
		Volumes: map[string]struct{}{"/data": {}}}}
	m := MergeConfig(&container.Config{Env: []string{"A=user"}, Labels: map[string]string{"l": "user"}, Volumes: map[string]struct{}{"/more": {}}}, img)
	if strings.Join(m.Entrypoint, " ") != "/entry" || strings.Join(m.Cmd, " ") != "serve" || strings.Join(m.Env, ",") != "A=user,B=image" ||
		len(m.ExposedPorts) != 1 || m.WorkingDir != "/app" || m.User != "app" || m.Labels["l"] != "user" || m.Labels["m"] != "image" || len(m.Volumes) != 2 {
		t.Errorf("merged: %+v", m)
	}
	// A user's entrypoint drops the image's Cmd; an empty one clears the image's.
	if m := MergeConfig(&container.Config{Entrypoint: []string{"/other"}}, img); m.Cmd != nil {
		t.Errorf("the image's cmd under a user's entrypoint: %q", m.Cmd)
	}
	if m := MergeConfig(&container.Config{Entrypoint: []string{""}, Cmd: []string{"sh"}}, img); m.Entrypoint != nil || m.Cmd[0] != "sh" {
		t.Errorf("--entrypoint \"\": %q %q", m.Entrypoint, m.Cmd)
	}
}

func TestValidateHostConfig(t *testing.T) {
	swappiness := int64(101)
	for _, tc := range []struct {
		hc  container.HostConfig
		msg string
	}{
		{container.HostConfig{RestartPolicy: container.RestartPolicy{Name: "always"}, AutoRemove: true}, "cannot specify both --restart and --rm"},
		{container.HostConfig{Resources: container.Resources{Memory: 1 << 20}}, "Minimum memory limit allowed is 6MB"},
		{container.HostConfig{IpcMode: "container:"}, "invalid IPC mode"},
		{container.HostConfig{UTSMode: "container:x"}, "invalid UTS mode"},
		{container.HostConfig{Resources: container.Resources{MemorySwappiness: &swappiness}}, "valid memory swappiness range is 0-100"},
		{container.HostConfig{Resources: container.Resources{CPUCount: 2}}, "options of Windows containers"},
		{container.HostConfig{UsernsMode: "private"}, "invalid user namespace mode"},
	} {
		if err := ValidateHostConfig(&tc.hc); err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: %v", tc.msg, err)
		}
	}
	if err := ValidateHostConfig(&container.HostConfig{IpcMode: "shareable", PidMode: "host"}); err != nil {
		t.Errorf("a good config: %v", err)
	}
}

func TestHostConfigDefaults(t *testing.T) {
	hc := &container.HostConfig{Resources: container.Resources{Memory: 64 << 20}}
	HostConfigDefaults(hc, false, false)
	if hc.IpcMode != "private" || hc.CgroupnsMode != "private" || hc.MemorySwap != 128<<20 || hc.ShmSize != 64<<20 || len(hc.MaskedPaths) == 0 || *hc.OomKillDisable {
		t.Errorf("defaults: %+v", hc)
	}
	vm := &container.HostConfig{}
	HostConfigDefaults(vm, true, true)
	if vm.ShmSize != 0 || vm.MaskedPaths != nil || vm.CgroupnsMode != "private" {
		t.Errorf("a VM's defaults: shm %d masked %v cgroupns %s", vm.ShmSize, vm.MaskedPaths, vm.CgroupnsMode)
	}
	if err := ValidateVM(&container.Config{}, &container.HostConfig{CapAdd: []string{"NET_ADMIN"}}, ""); err == nil || !strings.Contains(err.Error(), "--cap-add") {
		t.Errorf("a VM with --cap-add: %v", err)
	}
	huge := &container.HostConfig{Resources: container.Resources{Memory: hostMemory()}}
	if err := ValidateVM(&container.Config{}, huge, ""); !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), "is more than this host's memory") {
		t.Errorf("a VM of all the host's memory: %v", err)
	}
	small := &container.HostConfig{Resources: container.Resources{Memory: 6 << 20}}
	if err := ValidateVM(&container.Config{}, small, runtime.GOARCH); err != nil {
		t.Errorf("a VM of docker's least memory, an image of the host's architecture: %v", err)
	}
	if err := ValidateVM(&container.Config{}, &container.HostConfig{}, "s390x"); !errors.Is(err, errdefs.ErrNotImplemented) || !strings.Contains(err.Error(), "the image is for s390x") {
		t.Errorf("an s390x image in a VM: %v", err)
	}
}

func TestApplyUpdate(t *testing.T) {
	hc := &container.HostConfig{Resources: container.Resources{Memory: 64 << 20, MemorySwap: 128 << 20, NanoCPUs: 1e9}}
	if err := ApplyUpdate(hc, container.UpdateConfig{Resources: container.Resources{CPUQuota: 50000}}); err == nil || !strings.Contains(err.Error(), "NanoCPUs has already been set") {
		t.Errorf("quota over cpus: %v", err)
	}
	if err := ApplyUpdate(hc, container.UpdateConfig{Resources: container.Resources{Memory: 256 << 20}}); !errdefs.IsConflict(err) {
		t.Errorf("memory above swap: %v", err)
	}
	if err := ApplyUpdate(hc, container.UpdateConfig{Resources: container.Resources{Memory: 256 << 20, MemorySwap: 512 << 20, CpusetCpus: "0"},
		RestartPolicy: container.RestartPolicy{Name: "always"}}); err != nil || hc.Memory != 256<<20 || hc.MemorySwap != 512<<20 || hc.CpusetCpus != "0" {
		t.Errorf("update: %v %+v", err, hc.Resources)
	}
	if err := ApplyUpdate(hc, container.UpdateConfig{Resources: container.Resources{Ulimits: []*container.Ulimit{{Name: "nofile"}}}}); err == nil {
		t.Error("an ulimit update was taken")
	}
	if w := DiscardUnsupported(&container.HostConfig{}); !slices.Equal(w, nil) {
		t.Errorf("nothing to discard: %q", w)
	}
}
