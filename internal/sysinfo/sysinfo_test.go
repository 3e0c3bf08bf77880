package sysinfo

import (
	"os"
	"testing"
)

func TestInfo(t *testing.T) {
	dir := t.TempDir()
	info := Info(Engine{DataRoot: dir, Driver: "overlay2", Overlay: true, LogDriver: "local", LogDrivers: []string{"json-file", "local"}, Insecure: []string{"10.0.0.0/8", "reg.lan:5000"}})
	if info.KernelVersion == "" || info.Architecture == "" || info.NCPU < 1 || info.MemTotal <= 0 || info.OperatingSystem == "" || info.NFd == 0 {
		t.Errorf("host facts: kernel %q arch %q cpus %d mem %d os %q fds %d", info.KernelVersion, info.Architecture, info.NCPU, info.MemTotal, info.OperatingSystem, info.NFd)
	}
	if info.Driver != "overlay2" || len(info.DriverStatus) != 4 || info.DriverStatus[0][0] != "Backing Filesystem" || info.LoggingDriver != "local" || info.DockerRootDir != dir {
		t.Errorf("engine: %q %v %q", info.Driver, info.DriverStatus, info.LoggingDriver)
	}
	rc := info.RegistryConfig
	if len(rc.InsecureRegistryCIDRs) != 2 || rc.IndexConfigs["reg.lan:5000"] == nil || rc.IndexConfigs["docker.io"] == nil || !rc.IndexConfigs["docker.io"].Secure {
		t.Errorf("registries: %+v", rc)
	}
	if h, _ := os.Hostname(); info.Name != h || info.Swarm.LocalNodeState != "inactive" || len(info.Plugins.Log) != 2 {
		t.Errorf("name %q swarm %q plugins %v", info.Name, info.Swarm.LocalNodeState, info.Plugins)
	}
}
