package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/tent-project/tent/internal/distribution"
	"github.com/tent-project/tent/internal/errdefs"
	"github.com/tent-project/tent/internal/images"
	"github.com/tent-project/tent/internal/registry"
)

func (s *Server) imageList(w http.ResponseWriter, r *http.Request) {
	f, err := filters(r)
	if err != nil {
		writeError(w, err)
		return
	}
	// Before API 1.41, filter=NAME was a reference filter (removed then).
	if name := r.URL.Query().Get("filter"); name != "" && versionLess(apiVersion(r), "1.41") {
		f["reference"] = append(f["reference"], name)
	}
	list, err := s.d.ImageList(boolValue(r, "all"), f, sinceVersion(r, "shared-size", "1.42") == "1" || sinceVersion(r, "shared-size", "1.42") == "true")
	if err != nil {
		writeError(w, err)
		return
	}
	for i := range list {
		list[i].Containers = -1 // as dockerd: counted for system df only
	}
	writeVersionedList(w, r, list, virtualSize, untaggedNone)
}

// imageCreate imports a tarball (fromSrc=-, the body); pulling (fromImage)
// is the registry's work, not here yet.
func (s *Server) imageCreate(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if from := q.Get("fromImage"); from != "" {
		if tag := q.Get("tag"); tag != "" {
			if strings.HasPrefix(tag, "sha256:") {
				from += "@" + tag
			} else {
				from += ":" + tag
			}
		}
		s.progress(w, r, func(auth registry.Auth, p *distribution.Progress) error {
			return s.d.ImagePull(r.Context(), from, q.Get("platform"), auth, p)
		})
		return
	}
	src := q.Get("fromSrc")
	if src != "-" {
		writeError(w, fmt.Errorf("import from a URL is not supported; send the tarball in the request body (fromSrc=-): %w", errdefs.ErrNotImplemented))
		return
	}
	name := q.Get("repo")
	if tag := q.Get("tag"); name != "" && tag != "" {
		name += ":" + tag
	}
	img, err := s.d.ImageImport(r.Body, name, q["changes"], q.Get("message"), q.Get("platform"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": img.ID.String()})
}

// imageLoad answers as dockerd does: a JSON message stream (chunked),
// begun before the archive is read, with a bad archive's error inside
// it (the Docker SDKs parse the stream and nothing else).
func (s *Server) imageLoad(w http.ResponseWriter, r *http.Request) {
	if err := checkLoadPlatform(r); err != nil {
		writeError(w, err)
		return
	}
	// The archive is read while the answer has begun: without full
	// duplex, net/http may cut the request body once headers are flushed.
	http.NewResponseController(w).EnableFullDuplex()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	fw := newFlushWriter(w)
	if fw.f != nil {
		fw.f.Flush()
	}
	enc := json.NewEncoder(fw)
	list, err := s.d.ImageLoad(r.Body)
	if err != nil {
		msg := message(err)
		enc.Encode(distribution.Message{Error: msg, ErrorDetail: &distribution.ErrorDetail{Message: msg}})
		return
	}
	// As docker: the names the archive gave, else the ID.
	for _, img := range list {
		if len(img.Tags) == 0 {
			enc.Encode(map[string]string{"stream": "Loaded image ID: " + img.ID.String() + "\n"})
		}
		for _, n := range img.Tags {
			enc.Encode(map[string]string{"stream": "Loaded image: " + images.FamiliarName(n) + "\n"})
		}
	}
}

func (s *Server) imageSave(w http.ResponseWriter, r *http.Request) {
	s.save(w, r, r.URL.Query()["names"])
}

func (s *Server) save(w http.ResponseWriter, r *http.Request, names []string) {
	if len(names) == 0 {
		writeError(w, fmt.Errorf("no image names given: %w", errdefs.ErrInvalidArgument))
		return
	}
	if err := s.checkPlatforms(r, "1.48", names...); err != nil {
		writeError(w, err)
		return
	}
	// Check the names before the first byte, so that errors get a status.
	for _, n := range names {
		if _, err := s.d.ImageInspect(n); err != nil {
			writeError(w, err)
			return
		}
	}
	w.Header().Set("Content-Type", "application/x-tar")
	if err := s.d.ImageSave(w, names); err != nil {
		s.log.Error("image save", "err", err)
	}
}

func (s *Server) imagePrune(w http.ResponseWriter, r *http.Request) {
	pf, f, err := pruneFilter(r, "dangling", "until", "label", "label!")
	if err != nil {
		writeError(w, err)
		return
	}
	all := false
	if v := f["dangling"]; len(v) > 0 && (v[0] == "false" || v[0] == "0") {
		all = true
	}
	deleted, err := s.d.ImagePrune(all, pf)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"ImagesDeleted": deleted, "SpaceReclaimed": 0})
}

// splitAction splits "name/with/slashes/json" into name and action.
func splitAction(rest string) (string, string) {
	i := strings.LastIndex(rest, "/")
	if i < 0 {
		return rest, ""
	}
	return rest[:i], rest[i+1:]
}

func (s *Server) imageGet(w http.ResponseWriter, r *http.Request) {
	if r.PathValue("rest") == "search" {
		writeError(w, fmt.Errorf("image search is not supported: tent knows no registry index to search (Docker Hub's); pull by name from a registry: %w", errdefs.ErrNotImplemented))
		return
	}
	name, action := splitAction(r.PathValue("rest"))
	if since, ok := map[string]string{"json": "1.49", "history": "1.48"}[action]; ok {
		if err := s.checkPlatforms(r, since, name); err != nil {
			writeError(w, err)
			return
		}
	}
	switch action {
	case "json":
		img, err := s.d.ImageInspect(name)
		if err != nil {
			writeError(w, err)
			return
		}
		writeVersioned(w, r, img, virtualSize, imageContainerConfig, imageConfigFields)
	case "history":
		h, err := s.d.ImageHistory(name)
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, h)
	case "get":
		s.save(w, r, []string{name})
	default:
		http.NotFound(w, r)
	}
}

func (s *Server) imagePost(w http.ResponseWriter, r *http.Request) {
	name, action := splitAction(r.PathValue("rest"))
	switch action {
	case "tag":
		repo, tag := r.URL.Query().Get("repo"), r.URL.Query().Get("tag")
		if repo == "" {
			writeError(w, fmt.Errorf("repository name must have at least one component: %w", errdefs.ErrInvalidArgument))
			return
		}
		if tag != "" {
			repo += ":" + tag
		}
		err := s.d.ImageTag(name, repo)
		if err != nil {
			writeError(w, err)
			return
		}
		w.WriteHeader(http.StatusCreated)
	case "push":
		if err := s.checkPlatforms(r, "1.46", name); err != nil {
			writeError(w, err)
			return
		}
		s.progress(w, r, func(auth registry.Auth, p *distribution.Progress) error {
			return s.d.ImagePush(r.Context(), name, r.URL.Query().Get("tag"), auth, p)
		})
	default:
		http.NotFound(w, r)
	}
}

func (s *Server) imageRemove(w http.ResponseWriter, r *http.Request) {
	// noprune keeps untagged parents: tent's images have none (their
	// layers are not images), so there is nothing to keep.
	if v := sinceVersion(r, "platforms", "1.50"); v != "" {
		writeError(w, fmt.Errorf("removing an image's platforms is not supported yet (an image of tent's is one platform): %w", errdefs.ErrNotImplemented))
		return
	}
	resp, err := s.d.ImageRemove(r.PathValue("rest"), boolValue(r, "force"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// progress runs a pull or push: its JSON progress stream starts with the
// first message, so an error before that is a plain API error.
func (s *Server) progress(w http.ResponseWriter, r *http.Request, run func(registry.Auth, *distribution.Progress) error) {
	auth, err := registry.DecodeAuthHeader(r.Header.Get("X-Registry-Auth"))
	if err != nil {
		writeError(w, err)
		return
	}
	fw := newFlushWriter(w)
	p := distribution.NewProgress(fw, func() {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
	})
	if err := run(auth, p); err != nil {
		if p.Started() {
			p.Fail(err)
			return
		}
		writeError(w, err)
	}
}

func (s *Server) auth(w http.ResponseWriter, r *http.Request) {
	var a registry.Auth
	if err := decode(r, &a, false); err != nil {
		writeError(w, err)
		return
	}
	if err := s.d.Login(r.Context(), a); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"Status": "Login Succeeded"})
}
