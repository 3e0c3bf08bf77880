package builder

import (
	"encoding/json"
	"errors"
	"sync"
)

// plans remembers, for the last contexts built, what each COPY or ADD
// from the context found there: the names and digests its cache key is
// made of. A context is known by the digest of its tar, so a rebuild
// that sends the same tar (nothing changed) knows every COPY's key
// without unpacking the context or reading its files again; if its steps
// all come from the cache, the context is never unpacked. Sources that
// are not the context's own files (URLs, heredocs) are not remembered.
type plans struct {
	mu      sync.Mutex
	byKey   map[string]copyPlan
	order   []string // contexts, oldest first
	entries map[string][]string
}

// plansKept is how many contexts' plans are kept.
const plansKept = 16

// key is what identifies a COPY of context bc ("" if it cannot be
// remembered).
func (p *plans) key(bc *buildContext, r *copyRequest) string {
	if bc.digest == "" || len(r.src.SourceContents) > 0 {
		return ""
	}
	for _, n := range r.src.SourcePaths {
		if r.add && isURL(n) {
			return ""
		}
	}
	b, _ := json.Marshal([]any{r.add, r.src.SourcePaths, r.exclude, r.unpack, r.checksum, bc.dockerfileName})
	return bc.digest + "\x00" + string(b)
}

func (p *plans) get(key string) (copyPlan, bool) {
	if key == "" {
		return copyPlan{}, false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	c, ok := p.byKey[key]
	return c, ok
}

func (p *plans) put(key string, c copyPlan) {
	if key == "" {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.byKey == nil {
		p.byKey, p.entries = map[string]copyPlan{}, map[string][]string{}
	}
	ctx := key[:64] // the context's digest
	if _, known := p.entries[ctx]; !known {
		p.order = append(p.order, ctx)
		if len(p.order) > plansKept {
			for _, k := range p.entries[p.order[0]] {
				delete(p.byKey, k)
			}
			delete(p.entries, p.order[0])
			p.order = p.order[1:]
		}
	}
	if _, had := p.byKey[key]; !had {
		p.entries[ctx] = append(p.entries[ctx], key)
	}
	p.byKey[key] = c
}

// errNotCached ends a build without its context (BuildKnown) at the first
// step that must run or read the context's files.
var errNotCached = errors.New("the step is not in the build cache")

// knownContexts are the contexts of the last builds whose client named
// them by their files' metadata (Options.ContextStat), by that name and
// the Dockerfile's: a rebuild from the same files can do without them if
// its steps all come from the cache (their COPYs' keys are in plans).
type knownContexts struct {
	mu    sync.Mutex
	byKey map[string]knownContext
	order []string // oldest first
}

// knownContext is what a build needs of a context it does not have: its
// digest (plans are kept by it) and its Dockerfile.
type knownContext struct {
	digest         string
	dockerfile     []byte
	dockerfileName string
}

func knownKey(o *Options) string { return o.ContextStat + "\x00" + o.Dockerfile }

func (k *knownContexts) get(key string) (knownContext, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	c, ok := k.byKey[key]
	return c, ok
}

func (k *knownContexts) put(key string, c knownContext) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.byKey == nil {
		k.byKey = map[string]knownContext{}
	}
	if _, had := k.byKey[key]; !had {
		k.order = append(k.order, key)
		if len(k.order) > plansKept {
			delete(k.byKey, k.order[0])
			k.order = k.order[1:]
		}
	}
	k.byKey[key] = c
}
