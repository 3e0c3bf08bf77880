package integration

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	cerrdefs "github.com/containerd/errdefs"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
)

// The SDK suite's volume, network and build groups (sdk_test.go walks them).

// sdkVolumes: create, list, inspect, use, remove in use, prune.
func sdkVolumes(t *testing.T, c *client.Client, img, sfx string) {
	ctx := context.Background()
	vol := must(c.VolumeCreate(ctx, client.VolumeCreateOptions{Name: "sdkvol" + sfx, Labels: map[string]string{"sdk": "1"}}))(t).Volume
	if vol.Name != "sdkvol"+sfx || vol.Driver != "local" || vol.Scope != "local" || vol.Mountpoint == "" || vol.Labels["sdk"] != "1" {
		t.Errorf("volume create: %+v", vol)
	}
	vl := must(c.VolumeList(ctx, client.VolumeListOptions{Filters: make(client.Filters).Add("label", "sdk=1")}))(t)
	if len(vl.Items) != 1 || vl.Items[0].Name != vol.Name {
		t.Errorf("volume list by label: %+v", vl.Items)
	}
	user := must(c.ContainerCreate(ctx, client.ContainerCreateOptions{Config: &container.Config{Image: img, Cmd: []string{"sh", "-c", "echo kept > /v/f"}},
		HostConfig: &container.HostConfig{Binds: []string{vol.Name + ":/v"}}}))(t)
	must(c.ContainerStart(ctx, user.ID, client.ContainerStartOptions{}))(t)
	<-c.ContainerWait(ctx, user.ID, client.ContainerWaitOptions{}).Result
	ci := must(c.ContainerInspect(ctx, user.ID, client.ContainerInspectOptions{}))(t).Container
	if len(ci.Mounts) != 1 || ci.Mounts[0].Type != "volume" || ci.Mounts[0].Name != vol.Name || ci.Mounts[0].Destination != "/v" || !ci.Mounts[0].RW {
		t.Errorf("mounts of a volume user: %+v", ci.Mounts)
	}
	if _, err := c.VolumeRemove(ctx, vol.Name, client.VolumeRemoveOptions{}); !cerrdefs.IsConflict(err) {
		t.Errorf("remove of a volume in use: %v, want conflict", err)
	}
	if vi := must(c.VolumeInspect(ctx, vol.Name, client.VolumeInspectOptions{}))(t).Volume; vi.Name != vol.Name {
		t.Errorf("volume inspect: %+v", vi)
	}
	if b, err := os.ReadFile(filepath.Join(vol.Mountpoint, "f")); err != nil || string(b) != "kept\n" {
		t.Errorf("volume's data at its Mountpoint: %q %v", b, err)
	}
	must(c.ContainerRemove(ctx, user.ID, client.ContainerRemoveOptions{}))(t)
	// Before API 1.42 a prune removes named volumes too.
	pr := must(c.VolumePrune(ctx, client.VolumePruneOptions{Filters: make(client.Filters).Add("label", "sdk=1")}))(t).Report
	if named := slices.Contains(pr.VolumesDeleted, vol.Name); named != (c.ClientVersion() < "1.42") {
		t.Errorf("volume prune at %s: deleted %v", c.ClientVersion(), pr.VolumesDeleted)
	}
	if _, err := c.VolumeInspect(ctx, vol.Name, client.VolumeInspectOptions{}); err == nil {
		must(c.VolumeRemove(ctx, vol.Name, client.VolumeRemoveOptions{}))(t)
	}
	if _, err := c.VolumeInspect(ctx, vol.Name, client.VolumeInspectOptions{}); !cerrdefs.IsNotFound(err) {
		t.Errorf("inspect of a removed volume: %v, want not found", err)
	}
}

// sdkNetworks: create with IPAM, inspect, connect, disconnect, remove.
func sdkNetworks(t *testing.T, c *client.Client, img, sfx string) {
	ctx := context.Background()
	netName := "sdknet" + sfx
	subnet := map[string]string{"-140": "10.231.40.0/24", "-145": "10.231.45.0/24", "-150": "10.231.50.0/24"}[sfx]
	nc := must(c.NetworkCreate(ctx, netName, client.NetworkCreateOptions{Driver: "bridge", Labels: map[string]string{"sdk": "1"},
		IPAM: &network.IPAM{Config: []network.IPAMConfig{{Subnet: mustPrefix(t, subnet)}}}}))(t)
	ni := must(c.NetworkInspect(ctx, netName, client.NetworkInspectOptions{}))(t).Network
	if ni.ID != nc.ID || ni.Driver != "bridge" || ni.Scope != "local" || len(ni.IPAM.Config) != 1 || ni.IPAM.Config[0].Subnet.String() != subnet || ni.IPAM.Config[0].Gateway.IsValid() { // as dockerd: no gateway shown that was not asked for
		t.Errorf("network inspect: %+v", ni)
	}
	if nl := must(c.NetworkList(ctx, client.NetworkListOptions{Filters: make(client.Filters).Add("label", "sdk=1")}))(t); len(nl.Items) != 1 || nl.Items[0].Name != netName {
		t.Errorf("network list by label: %+v", nl.Items)
	}
	if _, err := c.NetworkCreate(ctx, netName, client.NetworkCreateOptions{}); !cerrdefs.IsConflict(err) {
		t.Errorf("create of a network name in use: %v, want conflict", err)
	}
	ctr := must(c.ContainerCreate(ctx, client.ContainerCreateOptions{Config: &container.Config{Image: img, Cmd: []string{"sleep", "300"}}}))(t)
	must(c.ContainerStart(ctx, ctr.ID, client.ContainerStartOptions{}))(t)
	must(c.NetworkConnect(ctx, netName, client.NetworkConnectOptions{Container: ctr.ID, EndpointConfig: &network.EndpointSettings{Aliases: []string{"sdkalias"}}}))(t)
	ci := must(c.ContainerInspect(ctx, ctr.ID, client.ContainerInspectOptions{}))(t).Container
	ep := ci.NetworkSettings.Networks[netName]
	if ep == nil || !mustPrefix(t, subnet).Contains(ep.IPAddress) || ep.NetworkID != nc.ID || len(ep.MacAddress) != 6 || !slices.Contains(ep.Aliases, "sdkalias") {
		t.Fatalf("endpoint after connect: %+v", ep)
	}
	// Before 1.45 the short ID was one of the aliases; since, of DNSNames.
	if old := c.ClientVersion() < "1.45"; slices.Contains(ep.Aliases, ctr.ID[:12]) != old || !slices.Contains(ep.DNSNames, ctr.ID[:12]) {
		t.Errorf("endpoint at API %s: aliases %v, DNS names %v", c.ClientVersion(), ep.Aliases, ep.DNSNames)
	}
	if ni := must(c.NetworkInspect(ctx, netName, client.NetworkInspectOptions{}))(t).Network; len(ni.Containers) != 1 {
		t.Errorf("network inspect after connect: containers %+v", ni.Containers)
	}
	if _, err := c.NetworkRemove(ctx, netName, client.NetworkRemoveOptions{}); !cerrdefs.IsConflict(err) && !cerrdefs.IsPermissionDenied(err) {
		t.Errorf("remove of a network in use: %v, want forbidden", err)
	}
	must(c.NetworkDisconnect(ctx, netName, client.NetworkDisconnectOptions{Container: ctr.ID}))(t)
	if ci := must(c.ContainerInspect(ctx, ctr.ID, client.ContainerInspectOptions{}))(t).Container; ci.NetworkSettings.Networks[netName] != nil {
		t.Errorf("endpoint after disconnect: %+v", ci.NetworkSettings.Networks)
	}
	must(c.ContainerRemove(ctx, ctr.ID, client.ContainerRemoveOptions{Force: true}))(t)
	must(c.NetworkRemove(ctx, netName, client.NetworkRemoveOptions{}))(t)
	if _, err := c.NetworkInspect(ctx, netName, client.NetworkInspectOptions{}); !cerrdefs.IsNotFound(err) {
		t.Errorf("inspect of a removed network: %v, want not found", err)
	}
}

// sdkBuild: a build through the legacy protocol as the SDK sends it, its
// aux ID, and the cache prune.
func sdkBuild(t *testing.T, c *client.Client, img string) {
	ctx := context.Background()
	bctx := tarFiles(t, map[string]string{"Dockerfile": "FROM " + img + "\nCOPY f /f\nRUN cat /f > /g\n", "f": "built\n"})
	res := must(c.ImageBuild(ctx, bctx, client.ImageBuildOptions{Tags: []string{img + "-built"}, Remove: true}))(t)
	msgs := jsonMessages(t, res.Body)
	res.Body.Close()
	var id string
	for _, m := range msgs {
		if aux, ok := m["aux"].(map[string]any); ok {
			id, _ = aux["ID"].(string)
		}
	}
	if streamError(msgs) != "" || id == "" {
		t.Fatalf("build: %v", msgs)
	}
	if bi := must(c.ImageInspect(ctx, img+"-built"))(t); bi.ID != id {
		t.Errorf("built image %s, aux ID %s", bi.ID, id)
	}
	bad := must(c.ImageBuild(ctx, tarFiles(t, map[string]string{"Dockerfile": "FROM " + img + "\nRUN exit 7\n"}), client.ImageBuildOptions{}))(t)
	msgs = jsonMessages(t, bad.Body)
	bad.Body.Close()
	if s := streamError(msgs); !strings.Contains(s, "7") {
		t.Errorf("failing build: error %q", s)
	}
	must(c.ImageRemove(ctx, img+"-built", client.ImageRemoveOptions{}))(t)
	must(c.BuildCachePrune(ctx, client.BuildCachePruneOptions{All: true}))(t)
}
