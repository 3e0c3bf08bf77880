package cli

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"

	dockerconfig "github.com/docker/cli/cli/config"
	"github.com/docker/cli/cli/config/configfile"
	"github.com/docker/cli/cli/config/types"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// hubAddress is the key docker's config.json uses for Docker Hub.
const hubAddress = "https://index.docker.io/v1/"

// Credentials live where docker keeps them ($DOCKER_CONFIG or
// ~/.docker/config.json, credential helpers included), so that a `docker
// login` serves tent too and the other way round.
func loadConfig() (*configfile.ConfigFile, error) {
	return dockerconfig.Load(dockerconfig.Dir())
}

// registryKey is the config.json key for the registry of image ref.
func registryKey(ref string) string {
	return serverKey(splitRef(ref).domain)
}

// serverKey normalizes a registry address as docker's config does.
func serverKey(server string) string {
	if server == "" || server == "docker.io" || server == "index.docker.io" || strings.Contains(server, "index.docker.io/v1") {
		return hubAddress
	}
	if u, err := url.Parse(server); err == nil && u.Host != "" {
		return u.Host
	}
	return strings.TrimSuffix(server, "/")
}

// authHeader is X-Registry-Auth for the registry of ref (empty: none).
func authHeader(ref string) http.Header {
	h := http.Header{}
	cf, err := loadConfig()
	if err != nil {
		return h
	}
	ac, err := cf.GetAuthConfig(registryKey(ref))
	if err != nil || (ac.Username == "" && ac.IdentityToken == "" && ac.RegistryToken == "") {
		return h
	}
	b, _ := json.Marshal(ac)
	h.Set("X-Registry-Auth", base64.URLEncoding.EncodeToString(b))
	return h
}

func pullCmd(a *app) *cobra.Command {
	var platform string
	var quiet bool
	cmd := &cobra.Command{Use: "pull [OPTIONS] NAME[:TAG|@DIGEST]", Short: "Download an image from a registry", Args: cobra.ExactArgs(1)}
	cmd.RunE = a.runE(func(args []string) error {
		ref := splitRef(args[0])
		if ref.tag == "" && ref.digest == "" && !quiet {
			fmt.Println("Using default tag: latest")
		}
		ref = ref.withDefaultTag()
		// The API takes a digest, else a tag, as "tag".
		q := url.Values{"fromImage": {ref.name()}, "tag": {ref.tag}}
		if ref.digest != "" {
			q.Set("tag", ref.digest)
		}
		if platform != "" {
			q.Set("platform", platform)
		}
		if err := a.progress("/images/create", q, args[0], quiet); err != nil {
			return err
		}
		fmt.Println(ref) // as docker: the full reference pulled, quiet or not
		return nil
	})
	cmd.Flags().StringVar(&platform, "platform", "", "pull this platform of a multi-platform image (os[/arch[/variant]])")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "suppress verbose output")
	return cmd
}

func pushCmd(a *app) *cobra.Command {
	var quiet, allTags bool
	cmd := &cobra.Command{Use: "push [OPTIONS] NAME[:TAG]", Short: "Upload an image to a registry", Args: cobra.ExactArgs(1)}
	cmd.RunE = a.runE(func(args []string) error {
		ref := splitRef(args[0])
		q := url.Values{}
		switch {
		case ref.tag != "" && allTags:
			return statusError{code: 1, msg: "tag can't be used with --all-tags/-a"}
		case ref.tag != "":
			q.Set("tag", ref.tag)
		case !allTags:
			q.Set("tag", "latest")
		}
		return a.progress("/images/"+ref.name()+"/push", q, args[0], quiet)
	})
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "suppress verbose output")
	cmd.Flags().BoolVarP(&allTags, "all-tags", "a", false, "push all tags of the repository")
	return cmd
}

// progress sends a pull or push and shows its progress stream: a line per
// layer, redrawn in place on a terminal, plain lines otherwise.
func (a *app) progress(path string, q url.Values, ref string, quiet bool) error {
	resp, err := a.c.DoHeader(a.ctx, http.MethodPost, path, q, nil, authHeader(ref))
	if err != nil {
		return apiError(err, 1)
	}
	defer resp.Body.Close()
	out := io.Writer(os.Stdout)
	if quiet {
		out = io.Discard
	}
	return showProgress(resp.Body, out, term.IsTerminal(int(os.Stdout.Fd())) && !quiet)
}

type progressMessage struct {
	ID             string `json:"id"`
	Status         string `json:"status"`
	Progress       string `json:"progress"`
	ProgressDetail *struct {
		Current, Total int64
	} `json:"progressDetail"`
	Error string `json:"error"`
}

func showProgress(r io.Reader, w io.Writer, tty bool) error {
	lines := map[string]int{} // layer id -> its line, counted from the top
	n := 0
	dec := json.NewDecoder(bufio.NewReader(r))
	for {
		var m progressMessage
		if err := dec.Decode(&m); err == io.EOF {
			return nil
		} else if err != nil {
			return statusError{code: 1, msg: "reading the daemon's answer: " + err.Error()}
		}
		if m.Error != "" {
			return statusError{code: 1, msg: m.Error}
		}
		if m.Status == "" {
			continue // a result object (aux), for API clients
		}
		text := m.Status
		if m.ID != "" {
			text = m.ID + ": " + m.Status
		}
		if m.ID == "" || !tty {
			if !tty && m.ProgressDetail != nil && m.ProgressDetail.Current > 0 {
				continue // no progress bars in a log
			}
			fmt.Fprintln(w, text)
			if m.ID == "" {
				n, lines = 0, map[string]int{}
			}
			continue
		}
		if m.Progress != "" {
			text += " " + m.Progress
		}
		i, ok := lines[m.ID]
		if !ok {
			lines[m.ID], n = n, n+1
			fmt.Fprintf(w, "%s\n", text)
			continue
		}
		up := n - i
		fmt.Fprintf(w, "\x1b[%dA\r\x1b[2K%s\r\x1b[%dB", up, text, up)
	}
}

func loginCmd(a *app) *cobra.Command {
	var user, password string
	var stdin bool
	cmd := &cobra.Command{Use: "login [OPTIONS] [SERVER]", Short: "Log in to a registry", Args: cobra.MaximumNArgs(1)}
	cmd.RunE = a.runE(func(args []string) error {
		server := hubAddress
		if len(args) == 1 {
			server = serverKey(args[0])
		}
		if stdin {
			if password != "" {
				return statusError{code: 1, msg: "--password and --password-stdin are mutually exclusive"}
			}
			b, err := io.ReadAll(os.Stdin)
			if err != nil {
				return statusError{code: 1, msg: err.Error()}
			}
			password = strings.TrimRight(string(b), "\r\n")
		}
		in := bufio.NewReader(os.Stdin)
		if user == "" {
			fmt.Print("Username: ")
			l, _ := in.ReadString('\n')
			user = strings.TrimSpace(l)
		}
		if password == "" && term.IsTerminal(int(os.Stdin.Fd())) {
			fmt.Print("Password: ")
			b, err := term.ReadPassword(int(os.Stdin.Fd()))
			fmt.Println()
			if err != nil {
				return statusError{code: 1, msg: err.Error()}
			}
			password = string(b)
		}
		if user == "" || password == "" {
			return statusError{code: 1, msg: "Error: username and password are required"}
		}
		ac := types.AuthConfig{Username: user, Password: password, ServerAddress: server}
		var res struct{ Status, IdentityToken string }
		if err := a.c.JSON(a.ctx, http.MethodPost, "/auth", nil, ac, &res); err != nil {
			return apiError(err, 1)
		}
		if res.IdentityToken != "" {
			ac.Password, ac.IdentityToken = "", res.IdentityToken
		}
		cf, err := loadConfig()
		if err != nil {
			return statusError{code: 1, msg: err.Error()}
		}
		if err := cf.GetCredentialsStore(server).Store(ac); err != nil {
			return statusError{code: 1, msg: "Error saving credentials: " + err.Error()}
		}
		fmt.Println("Login Succeeded")
		return nil
	})
	cmd.Flags().StringVarP(&user, "username", "u", "", "username")
	cmd.Flags().StringVarP(&password, "password", "p", "", "password")
	cmd.Flags().BoolVar(&stdin, "password-stdin", false, "take the password from stdin")
	return cmd
}

func logoutCmd() *cobra.Command {
	return &cobra.Command{Use: "logout [SERVER]", Short: "Log out from a registry", Args: cobra.MaximumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			server := hubAddress
			if len(args) == 1 {
				server = serverKey(args[0])
			}
			cf, err := loadConfig()
			if err != nil {
				return statusError{code: 1, msg: err.Error()}
			}
			if _, ok := cf.AuthConfigs[server]; !ok {
				fmt.Printf("Not logged in to %s\n", server)
				return nil
			}
			fmt.Printf("Removing login credentials for %s\n", server)
			if err := cf.GetCredentialsStore(server).Erase(server); err != nil {
				return statusError{code: 1, msg: err.Error()}
			}
			return nil
		}}
}
