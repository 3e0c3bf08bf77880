package builder

import (
	"fmt"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

func TestPlans(t *testing.T) {
	var p plans
	bc := &buildContext{digest: strings.Repeat("a", 64), dockerfileName: "Dockerfile"}
	copyOf := func(srcs ...string) *copyRequest {
		return &copyRequest{src: instructions.SourcesAndDest{SourcePaths: srcs, DestPath: "/x/"}}
	}
	k := p.key(bc, copyOf("app/"))
	if k == "" || k == p.key(bc, copyOf("lib/")) {
		t.Fatalf("keys: %q", k)
	}
	if _, ok := p.get(k); ok {
		t.Fatal("a plan before any was put")
	}
	p.put(k, copyPlan{names: []string{"app"}, sums: []string{"app=1"}})
	if got, ok := p.get(k); !ok || got.sums[0] != "app=1" {
		t.Errorf("get: %+v %v", got, ok)
	}
	// Not remembered: a bare Dockerfile's, URLs, heredocs.
	add := &copyRequest{add: true, src: instructions.SourcesAndDest{SourcePaths: []string{"https://example.com/f"}}}
	here := &copyRequest{src: instructions.SourcesAndDest{SourceContents: []instructions.SourceContent{{Path: "f", Data: "x"}}}}
	if p.key(&buildContext{}, copyOf("app/")) != "" || p.key(bc, add) != "" || p.key(bc, here) != "" {
		t.Error("a plan that cannot hold was given a key")
	}
	// The oldest context's plans go past plansKept contexts.
	for i := range plansKept {
		other := &buildContext{digest: fmt.Sprintf("%064d", i)}
		p.put(p.key(other, copyOf("app/")), copyPlan{})
	}
	if _, ok := p.get(k); ok {
		t.Error("the oldest context's plan was kept past the limit")
	}
	if len(p.byKey) != plansKept || len(p.order) != plansKept {
		t.Errorf("%d plans of %d contexts kept", len(p.byKey), len(p.order))
	}
}
